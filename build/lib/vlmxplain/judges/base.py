"""The judge contract: the :class:`Judge` interface every backend implements. A judge is shown a
:class:`~vlmxplain.masks.JudgeInput` and returns a :class:`~vlmxplain.core.records.Judgment`.

A judgment is keyed by content: ``sha256(judge id, prompt version, bytes the judge sees)``.
The same question is therefore never asked twice, across runs (see :mod:`vlmxplain.store`).
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Iterable, Iterator, Sequence

from ..core.records import JudgeSettings, Judgment
from ..masks.images import png_bytes
from ..masks.judge_input import JudgeInput


class NeedsClassifier(ValueError):
    """The judge re-runs the classifier, and none was given."""


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

    def settings(self) -> JudgeSettings:
        """How this judge is configured, for the run record (never a key)."""
        return JudgeSettings(judge=self.id, prompt_version=self.prompt_version, is_vlm=self.is_vlm)

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
