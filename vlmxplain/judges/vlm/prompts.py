"""Prompt templates for VLM judges: the paper's rubric, versioned and hashed.

A :class:`PromptTemplate` is a system text plus a user text with ``{placeholders}``. Its
:attr:`~PromptTemplate.version` is ``"<name>-<sha256[:12]>"`` over both texts and the answer
schema, so editing a template (or the schema) changes every cache key that uses it.

The default, :data:`PAPER_RUBRIC`, follows arXiv 2508.20227: describe what is visible, how much
of the predicted object is covered, whether the visible regions align with it, distractions,
why the model may be looking there; a justification; a 0–5 score with six anchored levels.

:data:`PROMPT_TEMPLATES` names it and three variants after the three prompts the authors' code
ships (autoXplain ``PROMPT_1``–``PROMPT_3``; same rubric, reworded here): ``paper-strict`` (the
prediction may be wrong, score low when the object is hard to see), ``paper-concise`` (a short
instruction) and ``paper-describe-first`` (describe before judging). Select one by name:
``judge_options={"template": "paper-strict"}``; each has its own version, so judgments under
several templates coexist in one run (``vx.reliability`` reports the spread across them).
"""
from __future__ import annotations

import functools
import hashlib
import json
import string

from pydantic import BaseModel, ConfigDict, field_validator

from ...core.records import JudgeResponse
from ...masks.judge_input import InputKind, JudgeInput

#: Placeholders a user template may use.
PLACEHOLDERS = ("predicted_name", "input_description", "confidence")

INPUT_DESCRIPTIONS: dict[str, str] = {
    "masked": (
        "The image is a masked CAM image: the classifier's input image multiplied by a soft mask "
        "derived from its class activation map. Regions the classifier attended to are visible; "
        "everything else is darkened towards black."
    ),
    "overlay": (
        "The image is the classifier's input image with its class activation map overlaid as a "
        "heat map: warm colours (red, yellow) mark the regions the classifier attended to most, "
        "cool colours (blue) the least."
    ),
    "both": (
        "The image has two panels side by side. Left: the masked CAM image (the input image "
        "multiplied by a soft mask from the class activation map; attended regions visible, the "
        "rest darkened). Right: the same input with the class activation map overlaid as a heat "
        "map (red/yellow = most attended)."
    ),
}

_SYSTEM = (
    "You evaluate visual explanations of image classifiers. You are shown what a classifier "
    "attended to when it made a prediction, and you judge whether that attention is on the "
    "predicted object. Answer only with a JSON object with the fields \"description\", "
    "\"justification\" and \"score\" (an integer from 0 to 5)."
)

_RUBRIC = """{input_description}

The classifier predicted: "{predicted_name}".

Assess the classifier's attention:
1. Describe what is visible in the attended region(s).
2. Say how much of the predicted object ("{predicted_name}") is covered by the attended region(s).
3. Say whether the visible regions align with the predicted object.
4. Note any distractions: background, other objects, or artefacts that are attended to.
5. Suggest why the classifier may be looking there.

Then give a justification for your score, and score the attention from 0 to 5:
0 - scattered or irrelevant: the attended regions show nothing of the predicted object.
1 - poor: only a small or peripheral fragment of the object; mostly background or other things.
2 - partial: some parts of the object are visible but key identifying parts are missing, or distractions dominate.
3 - moderate: the main part of the object is visible and recognisable, with incomplete coverage or notable distractions.
4 - good: the object is mostly covered and clearly recognisable, with only minor distractions.
5 - fully accurate: the attended region covers the predicted object accurately, with no distractions.

Reply with JSON only: {{"description": "...", "justification": "...", "score": <0-5>}}"""


_STRICT = """{input_description}

The classifier predicted: "{predicted_name}". Be sceptical: the classifier can be weak and this
prediction may be wrong, in which case its attention need not show a "{predicted_name}" at all.
Treat the visible region as the only evidence the classifier offers for "{predicted_name}" and
ask whether it holds up. If the visible region is not clearly related to a "{predicted_name}", or
the object is hard to make out, give a low score.

In the description, say what the visible region shows; whether the "{predicted_name}" is shown
fully, partly or not at all; whether the visible parts line up with it; what background or other
objects are visible; and what (shape, colour, texture, context) may have drawn the attention.

Justify the score, then score the attention from 0 to 5:
0 - the attention is scattered or unrelated to anything meaningful.
1 - the attention is on something other than the predicted object.
2 - a small overlap with the object; the attention is mostly elsewhere.
3 - part of the object is attended, together with unrelated regions.
4 - mostly on the object, with minor background distractions.
5 - precisely on the object, with nothing else attended.

Reply with JSON only: {{"description": "...", "justification": "...", "score": <0-5>}}"""

_CONCISE = """{input_description}

The classifier says this is a "{predicted_name}". How well does the visible (attended) region
support that prediction?

Describe the visible region: is the "{predicted_name}" visible fully, partly or not at all, do the
visible parts match its shape and position, what else is included, and why might the classifier
look there. Justify your score briefly. Score from 0 to 5: 0 off target; 1 on the wrong object;
2 barely on the object; 3 partly on the object, much else; 4 mostly on the object; 5 entirely on
the object, nothing else.

Reply with JSON only: {{"description": "...", "justification": "...", "score": <0-5>}}"""

_DESCRIBE_FIRST = """{input_description}

Start by describing what you see in the visible region(s), before thinking about any label.
Only then compare your description with the classifier's prediction, "{predicted_name}": which
parts of a "{predicted_name}" can be seen, how much of it is visible (fully, partly, not at all),
whether the visible regions correspond to the actual object, what distracts from it, and why the
classifier may have attended there.

Justify the score from what you observed, then score the attention from 0 to 5:
0 - the attention misses the object entirely.
1 - the attention is entirely on the wrong region.
2 - minimal overlap with the actual object.
3 - mixed: some of the object, some irrelevant regions.
4 - mostly correct, with small errors.
5 - the object is fully covered, with no distractions.

Reply with JSON only: {{"description": "...", "justification": "...", "score": <0-5>}}"""


@functools.lru_cache(maxsize=2)
def _schema_json(strict: bool) -> str:
    schema = JudgeResponse.model_json_schema()
    if strict:
        schema = {**schema, "additionalProperties": False, "required": sorted(schema["properties"])}
    return json.dumps(schema)


def judge_response_schema(strict: bool = False) -> dict:
    """JSON schema of the answer (:class:`JudgeResponse`); ``strict`` adds
    ``additionalProperties: false`` and all-required, as OpenAI-style ``json_schema`` expects."""
    return json.loads(_schema_json(strict))


class PromptTemplate(BaseModel):
    """A versioned judge prompt. ``user`` may use the placeholders in :data:`PLACEHOLDERS`.

    Literal braces are written ``{{`` and ``}}`` (``str.format`` rules).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    system: str = _SYSTEM
    user: str

    @field_validator("user")
    @classmethod
    def _check_placeholders(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("prompt template is empty")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise ValueError(f"prompt template is not a valid format string ({exc}); "
                             "write literal braces as {{ and }}") from None
        unknown = {f.split(".")[0].split("[")[0] for f in fields} - set(PLACEHOLDERS)
        if unknown or "" in fields:
            bad = ", ".join(sorted(repr(f) for f in (unknown or {""})))
            raise ValueError(f"prompt template uses unknown placeholder(s) {bad}; allowed: {', '.join(PLACEHOLDERS)}")
        return text

    @property
    def version(self) -> str:
        """``"<name>-<hash>"``; the hash covers system text, user text and the answer schema."""
        blob = json.dumps(
            {"system": self.system, "user": self.user, "schema": judge_response_schema()}, sort_keys=True
        ).encode("utf-8")
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:12]}"

    def render(self, item: JudgeInput, input_kind: InputKind = "masked") -> str:
        """The user text for one item."""
        return self.user.format(
            predicted_name=item.predicted_name,
            input_description=INPUT_DESCRIPTIONS[input_kind],
            confidence=f"{item.confidence:.2f}",
        )


#: The paper's rubric (default template).
PAPER_RUBRIC = PromptTemplate(name="paper-rubric-v1", user=_RUBRIC)

#: Named templates: the default rubric and the variants of the authors' three prompts.
PROMPT_TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (
    PAPER_RUBRIC,
    PromptTemplate(name="paper-strict", user=_STRICT),
    PromptTemplate(name="paper-concise", user=_CONCISE),
    PromptTemplate(name="paper-describe-first", user=_DESCRIBE_FIRST),
)}


def _looks_like_a_name(text: str) -> bool:
    return len(text) <= 64 and not any(c.isspace() or c in "{}" for c in text)


def get_template(template: PromptTemplate | str | None) -> PromptTemplate:
    """``None`` → :data:`PAPER_RUBRIC`; the name of a template in :data:`PROMPT_TEMPLATES` → that
    template; any other string → a custom user template (default system text). A single word that
    names no template is refused (a misspelt name would silently become the whole prompt)."""
    if template is None:
        return PAPER_RUBRIC
    if isinstance(template, PromptTemplate):
        return template
    if isinstance(template, str):
        if template.strip() in PROMPT_TEMPLATES:
            return PROMPT_TEMPLATES[template.strip()]
        if _looks_like_a_name(template.strip()):
            import difflib

            near = difflib.get_close_matches(template.strip(), list(PROMPT_TEMPLATES), n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"not a named prompt template{hint}; named: {', '.join(PROMPT_TEMPLATES)} (a custom "
                             "template is the prompt text itself)")
        return PromptTemplate(user=template)
    raise TypeError(f"prompt template must be a PromptTemplate, a str or None, got {type(template).__name__}")
