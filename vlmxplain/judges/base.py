"""The judge contract: the :class:`Judge` interface every backend implements. A judge is shown a
:class:`~vlmxplain.masks.JudgeInput` and returns a :class:`~vlmxplain.core.records.Judgment`.

A judgment is keyed by content: ``sha256(judge id, prompt version, bytes the judge sees)``.
The same question is therefore never asked twice, across runs (see :mod:`vlmxplain.store`).

Streaming (what ``explain`` uses): :meth:`Judge.prepare` turns an input into a :class:`Request`
— its cache key and what is sent, encoded once — and :meth:`Judge.judge_requests` judges a
stream of requests, reporting each judgment through a callback as it completes.
"""
from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..core.records import JudgeSettings, Judgment
from ..masks.images import pixel_bytes
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


@dataclass
class Request:
    """One question prepared for a judge: its cache key and what is sent, computed once.

    ``item`` is kept for judges that look at the input itself (offline judges); a VLM judge
    keeps only ``payload`` (the encoded image and the prompt) and drops the heavy input.
    """

    sample_id: str
    key: str
    item: JudgeInput | None = None
    payload: Any = None
    tag: Any = None  # the caller's handle (an index, a queue entry)
    repeat: int = 0  # the k-th answer to the same question (repeated sampling)
    hedged: bool = False  # sent twice: a straggler's duplicate (VLM judges with ``hedge=True``)

    def for_repeat(self, repeat: int) -> "Request":
        """The same question asked again as answer ``repeat`` (its own cache key, see :func:`repeat_key`)."""
        return replace(self, repeat=int(repeat), key=repeat_key(self.key, repeat))


def repeat_key(key: str, repeat: int) -> str:
    """The cache key of answer ``repeat`` to the question keyed ``key``: ``key`` itself for repeat 0
    (so every key of a single judgment stays valid), a key derived from it for repeat > 0."""
    return key if repeat == 0 or not key else content_key(key, f"repeat={int(repeat)}")


@dataclass
class Stopped:
    """Why a judge stopped sending: ``reason`` (the first fatal reply, or the spending cap) and
    ``hint`` (what to fix); ``unsent`` is what the questions never sent record as their reason."""

    reason: str
    hint: str = ""
    unsent: str = ""

    @property
    def unsent_reason(self) -> str:
        return self.unsent or f"an earlier request failed with {self.reason}"

    def __str__(self) -> str:
        return f"{self.reason}; {self.hint}" if self.hint else self.reason


Emit = Callable[[Request, Judgment], None]


class Judge(ABC):
    """A judge scores the attention shown by a masked CAM image, 0–5.

    Subclasses set :attr:`id` (the judge spec, e.g. ``"openai:gpt-4o-mini"``) and
    :attr:`prompt_version`, and implement :meth:`judge_many`. :meth:`view_bytes` says which
    bytes the judge sees; they form the content-addressed cache key.
    """

    id: str
    prompt_version: str = "v1"
    is_vlm: bool = False
    #: how many requests :meth:`judge_requests` hands to :meth:`judge_many` at a time
    stream_batch: int = 16

    @property
    def concurrency(self) -> int:
        """Requests this judge keeps in flight (1 for judges that compute their answer)."""
        return 1

    #: the spending cap :meth:`cap_spend` set (VLM judges)
    spend_cap: Any = None

    def cap_spend(self, limit_usd: float, *, batch: bool = False) -> None:
        """Send nothing past ``limit_usd`` of spend (VLM judges; ``explain(..., max_cost=...)``)."""
        raise ValueError(f"max_cost: judge {self.id!r} makes no paid requests (max_cost is for VLM judges)")

    def view_bytes(self, item: JudgeInput) -> bytes:
        """The bytes of what this judge is shown (default: the masked image's raw pixels)."""
        return pixel_bytes(item.masked)

    def cache_key(self, item: JudgeInput) -> str:
        return self.prepare(item).key

    def prepare(self, item: JudgeInput) -> Request:
        """The request for ``item`` (its cache key; ``item`` kept for :meth:`judge_many`)."""
        return Request(item.sample_id, content_key(self.id, self.prompt_version, self.view_bytes(item)), item=item)

    @abstractmethod
    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        """Judge ``items``; yield ``(index into items, Judgment)`` as each one completes.

        Must yield exactly one judgment per item (failed ones included) and never raise for a
        single bad item.
        """

    def judge_requests(self, requests: Iterable[Request], emit: Emit, stop: threading.Event) -> Stopped | None:
        """Judge a stream of requests, calling ``emit(request, judgment)`` once per request as
        each completes (possibly from another thread). Returns why it stopped early, if it did.

        Default: :meth:`judge_many` on consecutive groups of :attr:`stream_batch` requests
        (offline judges batch their forward passes)."""
        group: list[Request] = []
        for request in requests:
            group.append(request)
            if len(group) >= self.stream_batch:
                self._judge_group(group, emit, stop)
                group = []
        if group:
            self._judge_group(group, emit, stop)
        return None

    def _judge_group(self, group: list[Request], emit: Emit, stop: threading.Event) -> None:
        if stop.is_set():
            return
        for k, judgment in self.judge_many([r.item for r in group]):  # type: ignore[misc]
            emit(group[k], judgment)

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
