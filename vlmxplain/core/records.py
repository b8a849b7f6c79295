"""Typed records: a judge's answer, a judgment, and the run record.

* :class:`JudgeResponse` — the structured answer a VLM judge is asked for (the paper's fields).
* :class:`Judgment` — one judge's verdict on one sample; its :attr:`~Judgment.status` says
  whether it is ``ok``, ``failed`` (with a reason), ``not_sent`` (never asked: a stopped run,
  an earlier fatal reply) or ``rejected`` (refused by the provider for a bad key, model or URL:
  not an answer), the last two of which a resumed run asks again, or ``no_attention`` (the CAM
  has no contrast — all zero or constant — so no judge was asked).
* :class:`RunConfig` — everything that defines a run, written once into the run store and read
  back typed; :class:`RunView` is the run's current judge / alpha / beta / threshold.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .checks import Alpha, Beta, Threshold
from .text import RAW_LIMIT, TEXT_LIMIT, cap_text, clean_text

JudgmentStatus = Literal["ok", "failed", "not_sent", "rejected", "no_attention"]
ParsePath = Literal["structured", "tolerant", "offline", "none"]


class JudgeResponse(BaseModel):
    """The structured answer a VLM judge is asked for (the paper's three fields)."""

    description: str = Field(description="What the visible (unmasked) region of the image shows.")
    justification: str = Field(
        description="Why this score: coverage of the predicted object, alignment, distractions, "
        "and why the model may be looking there."
    )
    score: int = Field(ge=0, le=5, description="Attention quality, 0 (scattered/irrelevant) to 5 (fully accurate).")


class Judgment(BaseModel):
    """One judge's verdict on one masked CAM image, successful or not.

    A failed judgment keeps the reason and the raw text; it is never dropped or guessed.
    """

    judge_id: str
    prompt_version: str
    status: JudgmentStatus = "ok"
    score: float | None = Field(default=None, ge=0, le=5)
    description: str = ""
    justification: str = ""
    error: str | None = None
    raw: str = ""
    parse_path: ParsePath = "none"
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    #: Requests the provider bills for this answer: 2 when a straggler was sent twice and both went
    #: on the wire (``hedge=True``; the tokens count both). Retries after an error are not billed. In
    #: a run store, an answer asked again (``retry_failed``) adds the billed requests and tokens of
    #: the failed one it replaces.
    requests: int = Field(default=1, ge=1)
    #: True when a text field was longer than :data:`~vlmxplain.core.text.TEXT_LIMIT` and was cut.
    truncated: bool = False

    @field_validator("description", "justification", "error", "raw", mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        """Judge text is untrusted: no control, bidi or zero-width characters, no ANSI escapes."""
        return value if value is None else clean_text(value)

    @model_validator(mode="after")
    def _capped(self) -> "Judgment":
        for name, limit in (("description", TEXT_LIMIT), ("justification", TEXT_LIMIT), ("error", TEXT_LIMIT),
                            ("raw", RAW_LIMIT)):
            value = getattr(self, name)
            if value:
                text, cut = cap_text(value, limit)
                if cut:
                    setattr(self, name, text)
                    self.truncated = True
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def answered(self) -> bool:
        """True when the judge answered (ok or failed); not for unsent or rejected questions."""
        return self.status in ("ok", "failed")

    @property
    def sent(self) -> bool:
        """False when the question never reached the judge (it is asked again on resume)."""
        return self.status != "not_sent"

    @classmethod
    def failure(cls, judge_id: str, prompt_version: str, error: str, raw: str = "", **extra: Any) -> "Judgment":
        return cls(judge_id=judge_id, prompt_version=prompt_version, status="failed", error=error, raw=raw, **extra)

    @classmethod
    def no_attention(cls, judge_id: str, prompt_version: str) -> "Judgment":
        """The map shows no attention (all zero or constant): recorded without asking the judge."""
        return cls(judge_id=judge_id, prompt_version=prompt_version, status="no_attention",
                   error="the CAM has no contrast (all zero or constant): nothing to judge")

    @classmethod
    def unsent(cls, judge_id: str, prompt_version: str, reason: str) -> "Judgment":
        """A question that was never sent (``reason`` says why)."""
        return cls(judge_id=judge_id, prompt_version=prompt_version, status="not_sent", error=reason)


class JudgeSettings(BaseModel):
    """How a judge was configured (JSON-safe; never a key or a credential)."""

    model_config = ConfigDict(extra="forbid")

    judge: str  # the spec string: the judge id
    prompt_version: str
    is_vlm: bool = False
    input_kind: str | None = None  # what a VLM judge is shown: masked | overlay | both
    options: dict[str, Any] = Field(default_factory=dict)


class ClassifierInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    fingerprint: str
    target_layer: str
    class_names: list[str]
    spec: str | None = None


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    n_samples: int
    classes: list[str] | None = None
    spec: str | None = None


class RunView(BaseModel):
    """The run's current view: which judge, alpha, beta and threshold ``run.table`` shows."""

    model_config = ConfigDict(extra="forbid")

    judge: JudgeSettings
    alpha: Alpha
    beta: Beta
    threshold: Threshold


class RunConfig(BaseModel):
    """What defines a run (fixed once written): the classifier, the dataset and the CAM method.

    Two ``explain`` calls on one run directory must agree on it; the current view
    (:class:`RunView`) may change.
    """

    model_config = ConfigDict(extra="forbid")

    classifier: ClassifierInfo
    dataset: DatasetInfo
    cam: str
    cam_options: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    shard: tuple[int, int] | None = None  # (k, n): the store holds the k-th of n disjoint shards

    def compatible(self, other: "RunConfig") -> list[str]:
        """What differs between two runs whose results may be merged into one (shards may differ)."""
        out = self.conflicts(other.model_copy(update={"shard": self.shard}))
        if self.cam_options != other.cam_options:
            out.append(f"cam_options {self.cam_options!r} vs {other.cam_options!r}")
        return out

    def conflicts(self, other: "RunConfig") -> list[str]:
        """What differs from ``other`` in the fields two runs of one directory must share."""
        out = []
        if self.classifier.fingerprint != other.classifier.fingerprint:
            out.append(f"classifier {self.classifier.name} ({self.classifier.fingerprint}) vs "
                       f"{other.classifier.name} ({other.classifier.fingerprint})")
        if self.cam != other.cam:
            out.append(f"cam {self.cam!r} vs {other.cam!r}")
        if self.dataset.name != other.dataset.name:
            out.append(f"dataset {self.dataset.name!r} vs {other.dataset.name!r}")
        if self.shard != other.shard:
            out.append(f"shard {self.shard} vs {other.shard}")
        return out
