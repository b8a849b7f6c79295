"""Provider batch jobs in a run: submit, adopt after a kill, poll, ingest, resubmit.

With a batch judge (``openai-batch:<model>``, ``gemini-batch:<model>``) ``explain`` computes CAMs
as usual and, instead of asking each question, :class:`BatchStream` spools the prepared requests
into jobs of at most ``max_requests_per_job`` and submits each — then returns at once. Calling
``explain`` again, or :func:`sync`, polls the run's jobs, commits every finished answer like a
synchronous judgment (into the cross-run judgment cache too), records per-request failures with
their reasons, and submits again the samples of expired, failed or cancelled jobs.

Nothing is ever submitted twice while an earlier submission is finished or in flight, whatever
moment a process dies at: a job's *intent* (a fresh nonce and the samples it carries) is committed
before the job is created and the nonce travels with the job (metadata / display name); a resumed
run whose intent has no job id lists the provider's jobs and adopts the one with its nonce,
or — if the provider never got it — drops the intent and asks those samples again.
:func:`~vlmxplain.pipeline.sync.sync` collects an opened run without the dataset.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..judges.base import Stopped
from ..judges.vlm.batch import BatchJudge, SubmitError, request_line
from ..judges.vlm.core import CallError
from ..store import JudgmentCache, RunStore
from ..store.batch_jobs import BatchJobs
from .stages import END, Stream

SPOOL_DIR = "batch-spool"  # in the run directory: requests of a job being submitted (deleted after)


def is_batch(judge: Any) -> bool:
    return bool(getattr(judge, "is_batch", False))


@dataclass
class BatchProgress:
    """Where a run's batch jobs stand after a poll: requests ``submitted`` by this call, still
    ``in_flight``, ``judged`` / ``failed`` (ingested), ``resubmit`` (their job ended without an
    answer: asked again), jobs ``adopted`` after a kill, and per-job problems."""

    submitted: int = 0
    jobs_submitted: int = 0
    in_flight: int = 0
    jobs_in_flight: int = 0
    judged: int = 0
    failed: int = 0
    resubmit: int = 0
    adopted: int = 0
    abandoned: int = 0
    unreadable: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"batch: {self.submitted} requests submitted in {self.jobs_submitted} jobs; {self.in_flight} in flight "
                f"in {self.jobs_in_flight} jobs; {self.judged} judged and {self.failed} failed collected")
        if self.resubmit:
            text += f"; {self.resubmit} to ask again (their job ended without an answer)"
        if self.adopted or self.abandoned:
            text += f"; {self.adopted} jobs adopted, {self.abandoned} never created"
        if self.unreadable:
            text += f"; {self.unreadable} unreadable result lines"
        if self.in_flight:
            text += ". Collect them with vx.sync(run) (wait=True to wait) or call explain() again"
        return text + "".join(f"\n  {p}" for p in self.problems)


@contextlib.contextmanager
def open_cache(cache: JudgmentCache | str | Path | bool) -> Iterator[JudgmentCache | None]:
    """The judgment cache as ``explain`` opens it (``False``: none)."""
    if cache is False or isinstance(cache, JudgmentCache):
        yield cache or None
        return
    opened = JudgmentCache(None if cache is True else cache)
    try:
        yield opened
    finally:
        opened.close()


# -- polling and ingesting ----------------------------------------------------------------------

def collect(store: RunStore, judge: BatchJudge, cache: JudgmentCache | None,
            progress: BatchProgress | None = None) -> BatchProgress:
    """Poll every open job of ``judge`` once; ingest the finished ones (each answer committed as a
    judgment and cached; every request of a completed job ends judged or failed with a reason;
    those of an expired, failed or cancelled job become pending again)."""
    jobs, p = BatchJobs(store), progress or BatchProgress()
    for job in jobs.open_jobs():
        if (job.judge_id, job.prompt_version, job.provider) != (judge.id, judge.prompt_version, judge.spec.provider):
            continue
        try:
            job_id = job.job_id or _adopt(jobs, judge, job, p)
            if job_id is None:
                continue
            status = judge.api.status(job_id)
        except CallError as err:
            p.problems.append(f"job {job.job_id or job.nonce}: not polled: {judge.redact(err.reason())}")
            p.in_flight += job.n_requests
            p.jobs_in_flight += 1
            continue
        jobs.set_polled(job.nonce, status.provider_state, judge.redact(status.error))
        if not status.done:
            p.in_flight += job.n_requests
            p.jobs_in_flight += 1
            continue
        try:
            _ingest(store, jobs, judge, cache, job, status, p)
        except CallError as err:
            p.problems.append(f"job {job_id}: results not read: {judge.redact(err.reason())}")
            p.in_flight += job.n_requests
            p.jobs_in_flight += 1
    return p


def _adopt(jobs: BatchJobs, judge: BatchJudge, job: Any, p: BatchProgress) -> str | None:
    """A recorded intent without a job id: the job the provider holds under its nonce, or none.
    An intent younger than ``adopt_grace`` s that the provider does not list yet stays in flight
    (a creation request of a process that just died may still be on its way)."""
    job_id = judge.api.find(job.nonce)
    if job_id is None:
        if time.time() - job.created < judge.batch_options.adopt_grace:
            p.in_flight += job.n_requests
            p.jobs_in_flight += 1
            p.problems.append(f"job {job.nonce}: not listed by the provider yet; asked again after "
                              f"{judge.batch_options.adopt_grace:g} s if it never appears")
            return None
        jobs.abandon(job.nonce, "the job was never created at the provider (the process stopped before); asked again")
        p.abandoned += 1
        return None
    jobs.set_submitted(job.nonce, job_id, adopted=True)
    p.adopted += 1
    return job_id


def _ingest(store: RunStore, jobs: BatchJobs, judge: BatchJudge, cache: JudgmentCache | None, job: Any,
            status: Any, p: BatchProgress) -> None:
    entries = jobs.requests(job.nonce)
    for cid, outcome in judge.api.results(status):
        entry = entries.get(cid or "")
        if entry is None:
            p.unreadable += cid is None
            continue
        if entry.state != "in_flight":  # a duplicate line, or already ingested before a kill
            continue
        judgment = judge.interpret(outcome)
        with store.transaction():  # the answer and its request's state together: a kill never ingests it twice
            store.put_judgment(entry.sample_id, judgment, alpha=job.alpha, beta=job.beta, cache_key=entry.cache_key,
                               cached=False, repeat=entry.repeat)
            jobs.mark(cid, "judged" if judgment.ok else "failed", judgment.error)
        if cache is not None:
            cache.put(entry.cache_key, judgment)
        entries[cid] = type(entry)(entry.custom_id, entry.sample_id, entry.repeat, entry.cache_key, "done")
        if judgment.ok:
            p.judged += 1
        else:
            p.failed += 1
    judge.api.release(status)  # every result read is committed
    missing = [e for e in entries.values() if e.state == "in_flight"]
    if status.state == "completed":
        reason = f"batch job {job.job_id} completed without a readable result for this request"
        for entry in missing:
            store.put_judgment(entry.sample_id, judge.failure(reason), alpha=job.alpha, beta=job.beta,
                               cache_key=entry.cache_key, cached=False, repeat=entry.repeat)
        jobs.finish(job.nonce, status.state, "failed", reason)
        p.failed += len(missing)
    else:
        why = f": {judge.redact(status.error)}" if status.error else ""
        jobs.finish(job.nonce, status.state, "resubmit", f"batch job {job.job_id} {status.provider_state}{why}")
        p.resubmit += len(missing)
        if missing:
            p.problems.append(f"job {job.job_id} {status.provider_state}{why}: {len(missing)} requests asked again")


# -- submitting -------------------------------------------------------------------------------------

class _Chunk:
    """The requests of one job being spooled to disk (memory stays flat)."""

    def __init__(self, spool: Path) -> None:
        self.nonce = uuid.uuid4().hex
        spool.mkdir(parents=True, exist_ok=True)
        self.path = spool / f"{self.nonce}.jsonl"
        self.file = open(self.path, "w", encoding="utf-8")
        self.entries: list[tuple[str, str, int, str]] = []
        self.bytes = 0

    def add(self, request: Any) -> None:
        cid = f"{self.nonce[:16]}-{len(self.entries):06d}"
        line = request_line(cid, request) + "\n"
        self.file.write(line)
        self.bytes += len(line)
        self.entries.append((cid, request.sample_id, request.repeat, request.key))

    def close(self) -> "_Chunk":
        self.file.close()
        return self


class BatchStream(Stream):
    """The streaming run with a batch judge: its judge stage spools requests into jobs and the
    writer submits each job (after committing its intent, and after every CAM and preview of its
    samples: the writer commits in arrival order)."""

    judge: BatchJudge

    def __init__(self, *args: Any, progress: BatchProgress, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs = BatchJobs(self.store)
        self.progress = progress
        self.spool = self.store.run_dir / SPOOL_DIR

    def judging(self, inp) -> None:
        opts, cap = self.judge.batch_options, self.judge.spend_cap
        chunk: _Chunk | None = None
        over_cap: Stopped | None = None
        earlier: int | None = None  # requests of earlier calls still in flight (charged to the cap)
        try:
            while (request := self.get(inp)) is not END:
                hit = self._cache_get(request.key)
                if hit is not None:
                    self.write("judgment", request.sample_id, hit, request.key, True, request.repeat)
                    continue
                if cap is not None:
                    if earlier is None:  # their payloads are gone: each counted at this request's estimate
                        earlier = self.jobs.in_flight_count(self.judge.id)
                        cap.charge(earlier * cap.estimate(request))
                    if not cap.reserve(request, settled_later=False):  # its job answers after this call
                        over_cap = cap.stopped(request)
                        self._unsent(request, over_cap)
                        break
                if chunk is not None and chunk.bytes and chunk.bytes + len(request.payload[0]) * 4 // 3 > opts.max_bytes_per_job:
                    self.write("submit", chunk.close())
                    chunk = None
                chunk = chunk or _Chunk(self.spool)
                chunk.add(request)
                self.count("sent")
                if len(chunk.entries) >= opts.max_requests_per_job:
                    self.write("submit", chunk.close())
                    chunk = None
            if chunk is not None:
                self.write("submit", chunk.close())
                chunk = None
            if over_cap is not None:  # after the jobs that fit are submitted (the writer keeps the order)
                self.write("halt", over_cap)
                while (request := self.get(inp)) is not END:
                    self._unsent(request, over_cap)
        finally:
            if chunk is not None:  # stopped: nothing of it was submitted
                chunk.close().path.unlink(missing_ok=True)

    def _unsent(self, request: Any, stopped: Stopped) -> None:
        self.write("judgment", request.sample_id, self.judge.unsent(stopped.unsent_reason), request.key, False,
                   request.repeat)

    def _apply(self, msg: tuple) -> None:
        if msg[0] == "halt":  # the spending cap: nothing more is prepared
            self.stopped = msg[1]
            self.halt.set()
            return
        if msg[0] != "submit":
            return super()._apply(msg)
        chunk: _Chunk = msg[1]
        try:
            if not self.halt.is_set():
                self._submit(chunk)
        finally:
            chunk.path.unlink(missing_ok=True)

    def _submit(self, chunk: _Chunk) -> None:
        j, p = self.judge, self.progress
        self.jobs.add_intent(chunk.nonce, j.spec.provider, j.id, j.prompt_version, self.alpha, self.beta, chunk.entries)
        try:
            job_id = j.api.submit(chunk.nonce, chunk.path)
        except SubmitError as err:
            n = len(chunk.entries)
            if err.created_maybe:  # looked up by its nonce at the next poll: adopted, or asked again
                p.in_flight += n
                p.jobs_in_flight += 1
                p.problems.append(f"job {chunk.nonce}: creation not confirmed ({err.reason}); checked at the next sync")
            else:
                self.jobs.abandon(chunk.nonce, f"not submitted: {err.reason}")
                p.problems.append(f"{n} requests not submitted: {err.reason}")
            if err.fatal:
                self.stopped = Stopped(err.reason, "check the API key, the model name and the URL")
                self.halt.set()
            return
        self.jobs.set_submitted(chunk.nonce, job_id)
        p.submitted += len(chunk.entries)
        p.jobs_submitted += 1
        p.in_flight += len(chunk.entries)
        p.jobs_in_flight += 1
        self.summary.submitted += len(chunk.entries)


def clear_spool(run_dir: Path) -> None:
    """Spooled requests of a process that died before submitting them (their intents decide)."""
    spool = Path(run_dir) / SPOOL_DIR
    if spool.is_dir():
        for path in spool.glob("*.jsonl"):
            path.unlink(missing_ok=True)
