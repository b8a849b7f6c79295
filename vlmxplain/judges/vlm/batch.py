"""Provider batch APIs: ``openai-batch:<model>`` (OpenAI Files + Batches) and ``gemini-batch:<model>``
(google-genai batch jobs). Half the price of a synchronous request, answered within a day.

A :class:`BatchJudge` is a small strategy beside the synchronous backends, not a fork of them: it
wraps the synchronous judge of the same model (:class:`~.openai_backend.OpenAIJudge` /
:class:`~.gemini_backend.GeminiJudge`), so a batch request carries exactly the prompt template,
image encoding, response schema and options of a synchronous one, has the same cache-key
ingredients, and its answer is validated by the same reply parsing (:mod:`.parsing`). Only the
transport differs, and that is a :class:`BatchAPI`: submit a job, find it again by its nonce,
poll it, read its results.

Keeping a run's jobs (what was submitted, adopted after a kill, ingested) is the pipeline's work
(:mod:`vlmxplain.pipeline.batch`, with the jobs table of the run store); used on its own,
:meth:`BatchJudge.judge_many` submits one job and waits for it.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.checks import describe_option_errors
from ...core.records import JudgeSettings, Judgment
from ...core.specs import JudgeSpec
from ...masks.judge_input import JudgeInput
from ..base import Judge, Request
from .core import CallError, Reply, VLMJudge
from .limits import SpendCap

#: Provider-neutral job states (the provider's own word is kept beside it).
IN_FLIGHT, COMPLETED, EXPIRED, FAILED, CANCELLED = "in_flight", "completed", "expired", "failed", "cancelled"
TERMINAL = (COMPLETED, EXPIRED, FAILED, CANCELLED)


class BatchOptions(BaseModel):
    """Options of a batch judge, beside the synchronous judge's (:class:`~.options.VLMOptions`)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    max_requests_per_job: int = Field(500, ge=1, le=50_000, description="requests per provider job")
    max_bytes_per_job: int = Field(0, ge=0, description="bytes of requests per job (0: the provider's limit)")
    poll_interval: float = Field(30.0, gt=0, le=3600, description="seconds between polls when waiting")
    completion_window: str = Field("24h", description="OpenAI: the job's completion window")
    gemini_input: Literal["auto", "inline", "file"] = Field(
        "auto", description="Gemini: a job's requests inline (20 MB per job) or as an uploaded JSONL file (2 GB); "
        "auto: inline when the job fits")
    max_wait: float | None = Field(None, gt=0, description="judge_many: seconds to wait for a job (None: until done)")
    adopt_grace: float = Field(120.0, ge=0, description="seconds an unconfirmed submission may still appear at the "
                               "provider before its samples are asked again")


class SubmitError(Exception):
    """Submitting a job failed. ``created_maybe``: the provider may have created it anyway (the
    reply was lost), so it must be looked up by its nonce before anything is submitted again."""

    def __init__(self, reason: str, *, created_maybe: bool, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.created_maybe, self.fatal = reason, created_maybe, fatal


@dataclass
class JobStatus:
    """A job as the provider reports it: ``state`` is one of the neutral states above."""

    state: str
    provider_state: str
    error: str = ""
    raw: Any = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


#: One result of a job: (custom_id or None when the line is unreadable, a reply or a failure reason).
Result = tuple["str | None", "Reply | str"]


def request_line(custom_id: str, request: Request) -> str:
    """The provider-neutral JSONL line of one prepared request (what a job will carry)."""
    image, prompt, _estimate = request.payload  # the image bytes sent, under the key "png" (any format)
    return json.dumps({"custom_id": custom_id, "png": base64.b64encode(image).decode("ascii"), "prompt": prompt})


def read_lines(path: Path) -> Iterator[tuple[str, bytes, str]]:
    """``(custom_id, image bytes, prompt)`` of each neutral line of ``path``."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                yield obj["custom_id"], base64.b64decode(obj["png"]), obj["prompt"]


class BatchAPI(ABC):
    """One provider's batch transport, over the synchronous judge's client and request builders."""

    #: default ``max_bytes_per_job`` (the provider's documented limit, with a margin)
    max_bytes: int = 0

    def __init__(self, judge: VLMJudge, options: BatchOptions) -> None:
        self.judge, self.options = judge, options

    @property
    def client(self) -> Any:
        return self.judge._client

    def display_name(self, nonce: str) -> str:
        return f"vlmxplain-{nonce}"

    @abstractmethod
    def submit(self, nonce: str, path: Path) -> str:
        """Create a job from the neutral lines in ``path``, tagged with ``nonce``; its provider id."""

    @abstractmethod
    def find(self, nonce: str) -> str | None:
        """The provider id of the job tagged with ``nonce``, if the provider has one."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """Poll one job (raises :class:`CallError`)."""

    @abstractmethod
    def results(self, status: JobStatus) -> Iterator[Result]:
        """Every result of a finished job (partial for an expired one)."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask the provider to cancel a job."""

    def release(self, status: JobStatus) -> None:
        """Free what a finished job no longer needs at the provider (its uploaded input), once its
        results are read; best effort."""


class BatchJudge(Judge):
    """A VLM judge answered through a provider batch API (``openai-batch:``, ``gemini-batch:``).

    ``id`` is the batch spec; ``prompt_version`` and every request are the synchronous judge's.
    Options: those of the synchronous judge plus :class:`BatchOptions`.
    """

    is_vlm = True
    is_batch = True

    def __init__(self, spec: JudgeSpec | str, sync_class: type[VLMJudge], api_class: type[BatchAPI], *,
                 api_key: str | None = None, **options: Any) -> None:
        spec = JudgeSpec.parse(spec)
        if not spec.is_batch:
            raise ValueError(f"judge: {spec} is not a batch judge spec")
        names = set(BatchOptions.model_fields)
        try:
            self.batch_options = BatchOptions(**{k: v for k, v in options.items() if k in names})
        except ValidationError as exc:
            raise ValueError(f"judge {str(spec)!r}: invalid option(s): {describe_option_errors(exc, BatchOptions)}"
                             ) from None
        self.spec, self.id, self.model = spec, str(spec), spec.model
        if options.get("hedge"):
            raise ValueError(f"judge {self.id!r}: hedge applies to synchronous judges (a provider batch job has no "
                             "stragglers to send twice); drop the option")
        self.sync = sync_class(JudgeSpec(spec.api_provider, spec.model), api_key=api_key,
                               **{k: v for k, v in options.items() if k not in names})
        self.sync.id = self.id  # judgments, cache keys and messages name the batch judge
        self.prompt_version = self.sync.prompt_version
        self.provider, self.options, self.price = self.sync.provider, self.sync.options, self.sync.price
        self.api = api_class(self.sync, self.batch_options)
        self.stream_batch = self.batch_options.max_requests_per_job  # judge_requests on its own: one job per chunk
        if not self.batch_options.max_bytes_per_job:
            self.batch_options = self.batch_options.model_copy(update={"max_bytes_per_job": self.api.max_bytes})

    # -- what is asked: the synchronous judge's requests ------------------------------------
    def prepare(self, item: JudgeInput) -> Request:
        return self.sync.prepare(item)

    def view_bytes(self, item: JudgeInput) -> bytes:
        return self.sync.view_bytes(item)

    def settings(self) -> JudgeSettings:
        base = self.sync.settings()
        options = dict(base.options, provider=self.spec.provider, **self.batch_options.model_dump())
        return base.model_copy(update={"judge": self.id, "options": options})

    # -- what it costs: the synchronous judge's accounting at the batch price ------------------
    def cap_spend(self, limit_usd: float, *, batch: bool = True) -> None:
        """The synchronous judge's cap, at the batch price."""
        self.sync.cap_spend(limit_usd, batch=True)

    @property
    def spend_cap(self) -> SpendCap | None:
        return self.sync.spend_cap

    # -- what is answered: the synchronous judge's reply parsing ---------------------------
    def interpret(self, outcome: "Reply | str") -> Judgment:
        """A job's result as a judgment: a reply is validated exactly like a synchronous one; a
        string is the reason the request failed."""
        if isinstance(outcome, Reply):
            return self.sync._interpret(outcome, 0.0)
        return self.sync._failure(outcome)

    def failure(self, reason: str) -> Judgment:
        return self.sync._failure(reason)

    def unsent(self, reason: str) -> Judgment:
        return self.sync._unsent(reason)

    def redact(self, text: Any) -> str:
        return self.sync._redact(text)

    # -- used on its own: jobs waited for ---------------------------------------------------
    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        """Submit ``items`` as jobs of at most ``max_requests_per_job``, wait for them
        (``poll_interval``, at most ``max_wait`` s) and yield one judgment per item. Nothing is
        recorded: :func:`vlmxplain.explain` keeps jobs in the run store and returns at once instead."""
        import tempfile

        size = self.batch_options.max_requests_per_job
        jobs: dict[str, dict[str, int]] = {}  # job id -> custom_id -> index
        with tempfile.TemporaryDirectory(prefix="vlmx-batch-") as tmp:
            for start in range(0, len(items), size):
                nonce = uuid.uuid4().hex
                ids = {f"{nonce[:16]}-{k:06d}": k for k in range(start, min(start + size, len(items)))}
                path = Path(tmp) / f"{nonce}.jsonl"
                path.write_text("".join(request_line(cid, self.prepare(items[k])) + "\n" for cid, k in ids.items()),
                                encoding="utf-8")
                try:
                    jobs[self.api.submit(nonce, path)] = ids
                except SubmitError as err:
                    for k in ids.values():
                        yield k, (self.failure if err.created_maybe else self.unsent)(f"batch job not submitted: "
                                                                                      f"{err.reason}")
        begin = time.monotonic()
        while jobs:
            for job_id in list(jobs):
                try:
                    status = self.api.status(job_id)
                except CallError:
                    continue
                if status.done:
                    yield from self._results(job_id, status, jobs.pop(job_id))
            if jobs and self.batch_options.max_wait is not None and time.monotonic() - begin > self.batch_options.max_wait:
                for job_id, ids in jobs.items():
                    for k in ids.values():
                        yield k, self.unsent(f"batch job {job_id} not done after {self.batch_options.max_wait:g} s "
                                             "(not collected)")
                return
            if jobs:
                time.sleep(self.batch_options.poll_interval)

    def _results(self, job_id: str, status: JobStatus, ids: dict[str, int]) -> Iterator[tuple[int, Judgment]]:
        seen: set[int] = set()
        for cid, outcome in self.api.results(status):
            k = ids.get(cid or "")
            if k is not None and k not in seen:
                seen.add(k)
                yield k, self.interpret(outcome)
        self.api.release(status)
        for k in ids.values():
            if k not in seen:
                yield k, self.failure(f"batch job {job_id} {status.provider_state} without a result for this request")

    def close(self) -> None:
        self.sync.close()

    def __repr__(self) -> str:
        return (f"BatchJudge(id={self.id!r}, prompt_version={self.prompt_version!r}, "
                f"max_requests_per_job={self.batch_options.max_requests_per_job}, key={self.sync._key!r})")
