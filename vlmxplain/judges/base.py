"""The judge contract: what a judge sees (:class:`JudgeInput`), what it returns
(:class:`Judgment`), and the :class:`Judge` interface every backend implements.

A judgment is keyed by content: ``sha256(judge id, prompt version, bytes the judge sees)``.
The same question is therefore never asked twice, across runs (see :mod:`vlmxplain.store`).
"""
from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

JudgmentStatus = Literal["ok", "failed"]
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(cls, judge_id: str, prompt_version: str, error: str, raw: str = "", **extra) -> "Judgment":
        return cls(judge_id=judge_id, prompt_version=prompt_version, status="failed", error=error, raw=raw, **extra)


@dataclass
class JudgeInput:
    """Everything a judge may look at for one sample.

    ``saliency`` is the min-max normalised CAM at image resolution (float32, H×W, in [0, 1]);
    ``mask`` the sigmoid mask derived from it with the run's alpha/beta; ``masked`` is
    image × mask (what the paper's judge sees) and ``overlay`` the classic heat-map overlay.
    """

    sample_id: str
    image: Image.Image
    masked: Image.Image
    overlay: Image.Image
    saliency: np.ndarray
    mask: np.ndarray
    predicted_class: int
    predicted_name: str
    confidence: float
    label_name: str = ""
    object_mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG encoding (used for cache keys and for what is sent to a VLM)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def content_key(*parts: str | bytes) -> str:
    """sha256 over length-prefixed parts (unambiguous concatenation)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class Judge(ABC):
    """A judge scores the attention shown by a masked CAM image, 0–5.

    Subclasses set :attr:`id` (the judge spec, e.g. ``"openai:gpt-4o-mini"``) and
    :attr:`prompt_version`, and implement :meth:`judge_many`. :meth:`view_bytes` says which
    bytes the judge sees; they form the content-addressed cache key.
    """

    id: str
    prompt_version: str = "v1"
    is_vlm: bool = False

    def view_bytes(self, item: JudgeInput) -> bytes:
        """The bytes of what this judge is shown (default: the masked image as PNG)."""
        return png_bytes(item.masked)

    def cache_key(self, item: JudgeInput) -> str:
        return content_key(self.id, self.prompt_version, self.view_bytes(item))

    @abstractmethod
    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        """Judge ``items``; yield ``(index into items, Judgment)`` as each one completes.

        Must yield exactly one judgment per item (failed ones included) and never raise for a
        single bad item.
        """

    def judge(self, item: JudgeInput) -> Judgment:
        """Judge a single item."""
        return next(iter(self.judge_many([item])))[1]

    def close(self) -> None:  # pragma: no cover - default no-op
        """Release clients/threads."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, prompt_version={self.prompt_version!r})"


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
