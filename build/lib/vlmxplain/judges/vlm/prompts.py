"""Prompt templates for VLM judges: the paper's rubric, versioned and hashed.

A :class:`PromptTemplate` is a system text plus a user text with ``{placeholders}``. Its
:attr:`~PromptTemplate.version` is ``"<name>-<sha256[:12]>"`` over both texts and the answer
schema, so editing a template (or the schema) changes every cache key that uses it.

The default, :data:`PAPER_RUBRIC`, follows arXiv 2508.20227: describe what is visible, how much
of the predicted object is covered, whether the visible regions align with it, distractions,
why the model may be looking there; a justification; a 0–5 score with six anchored levels.
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


def get_template(template: PromptTemplate | str | None) -> PromptTemplate:
    """``None`` → :data:`PAPER_RUBRIC`; a string → a custom user template (default system text)."""
    if template is None:
        return PAPER_RUBRIC
    if isinstance(template, PromptTemplate):
        return template
    if isinstance(template, str):
        return PromptTemplate(user=template)
    raise TypeError(f"prompt template must be a PromptTemplate, a str or None, got {type(template).__name__}")
