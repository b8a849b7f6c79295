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
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..judges import make_judge
from ..judges.base import Stopped
from ..judges.vlm.batch import BatchJudge, SubmitError, request_line
from ..judges.vlm.core import CallError
from ..judges.vlm.options import VLMOptions
from ..judges.vlm.prompts import PAPER_RUBRIC
from ..store import JudgmentCache, Run, RunStore, open_run
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
            job_id = job.job_id or _adopt(jobs, judge, job.nonce, p)
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


def _adopt(jobs: BatchJobs, judge: BatchJudge, nonce: str, p: BatchProgress) -> str | None:
    """A recorded intent without a job id: the job the provider holds under its nonce, or none."""
    job_id = judge.api.find(nonce)
    if job_id is None:
        jobs.abandon(nonce, "the job was never created at the provider (the process stopped before); asked again")
        p.abandoned += 1
        return None
    jobs.set_submitted(nonce, job_id, adopted=True)
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
        store.put_judgment(entry.sample_id, judgment, alpha=job.alpha, beta=job.beta, cache_key=entry.cache_key,
                           cached=False)
        if cache is not None:
            cache.put(entry.cache_key, judgment)
        jobs.mark(cid, "judged" if judgment.ok else "failed", judgment.error)
        entries[cid] = type(entry)(entry.custom_id, entry.sample_id, entry.cache_key, "done")
        if judgment.ok:
            p.judged += 1
        else:
            p.failed += 1
    missing = [e for e in entries.values() if e.state == "in_flight"]
    if status.state == "completed":
        reason = f"batch job {job.job_id} completed without a readable result for this request"
        for entry in missing:
            store.put_judgment(entry.sample_id, judge.failure(reason), alpha=job.alpha, beta=job.beta,
                               cache_key=entry.cache_key, cached=False)
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
        self.entries: list[tuple[str, str, str]] = []
        self.bytes = 0

    def add(self, request: Any) -> None:
        cid = f"{self.nonce[:16]}-{len(self.entries):06d}"
        line = request_line(cid, request) + "\n"
        self.file.write(line)
        self.bytes += len(line)
        self.entries.append((cid, request.sample_id, request.key))

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
        opts = self.judge.batch_options
        chunk: _Chunk | None = None
        try:
            while (request := self.get(inp)) is not END:
                hit = self._cache_get(request.key)
                if hit is not None:
                    self.write("judgment", request.sample_id, hit, request.key, True)
                    continue
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
        finally:
            if chunk is not None:  # stopped: nothing of it was submitted
                chunk.close().path.unlink(missing_ok=True)

    def _apply(self, msg: tuple) -> None:
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


# -- sync: the pipeline entry point for an opened run ----------------------------------------------

def judge_from_record(run: Run, judge_options: dict | None = None) -> BatchJudge:
    """The run's current batch judge, rebuilt from its recorded settings (the key from the
    environment); ``judge_options`` override recorded options."""
    settings = run.view.judge
    recorded = dict(settings.options)
    options = {k: recorded[k] for k in VLMOptions.model_fields if k in recorded and k != "template"}
    options.update({k: recorded[k] for k in ("max_requests_per_job", "max_bytes_per_job", "poll_interval",
                                             "completion_window", "max_wait") if k in recorded})
    if recorded.get("template", PAPER_RUBRIC.name) != PAPER_RUBRIC.name and "template" not in (judge_options or {}):
        raise ValueError(f"judge: {run.run_dir} was judged with the prompt template {recorded['template']!r}; pass "
                         "judge_options={'template': ...} to sync it")
    options.update(judge_options or {})
    judge = make_judge(settings.judge, **options)
    if not is_batch(judge):
        judge.close()
        raise ValueError(f"judge: the run's judge {settings.judge!r} is not a batch judge (openai-batch:, gemini-batch:)")
    if judge.prompt_version != settings.prompt_version:
        judge.close()
        raise ValueError(f"judge: these options ask another question than the run's ({judge.prompt_version!r} vs "
                         f"{settings.prompt_version!r}); pass the run's judge_options")
    return judge


def submit_from_store(run: Run, judge: BatchJudge, ids: list[str], alpha: float, beta: float,
                      cache: JudgmentCache | None, progress: BatchProgress) -> BatchStream:
    """Submit ``ids`` from their stored CAMs and previews (no dataset, no classifier)."""
    import queue

    from tqdm.auto import tqdm

    from .stages import ExplainSummary

    summary = ExplainSummary(total=len(ids))
    with tqdm(total=len(ids), disable=True) as bar:
        stream = BatchStream(run.store, judge, cache, alpha, beta, summary, bar, depth=32, progress=progress)
        todo, requests = queue.Queue(maxsize=32), queue.Queue(maxsize=32)
        encoders = [max(1, min(4, os.cpu_count() or 1))]  # as explain's encode stage

        def source() -> None:
            for sid in ids:
                stream.put(todo, sid)
            for _ in range(encoders[0]):
                stream.put(todo, END)

        def work(sid: str):
            with stream.store_lock:
                return run.judge_input(sid, alpha, beta)

        stream.spawn("source", source)
        for k in range(encoders[0]):
            stream.spawn(f"encode-{k}", stream.encode, todo, requests, work, encoders)
        stream.spawn("judge", stream.judging, requests)
        stream.write_all()
    return stream


def sync(run: Run | str | Path, *, wait: bool = False, poll_interval: float | None = None,
         timeout: float | None = None, judge_options: dict | None = None,
         cache: JudgmentCache | str | Path | bool = True, verbose: bool = True) -> Run:
    """Collect a batch run: poll its jobs, ingest finished results, submit again the samples of
    expired, failed or cancelled jobs (and any sample with a CAM that was never submitted); with
    ``wait``, repeat every ``poll_interval`` s (default: the judge's) until nothing is in flight
    or ``timeout`` s have passed. Returns the run; ``run.last_summary`` is the
    :class:`BatchProgress`. The key comes from the environment, as for ``explain``."""
    run = run if isinstance(run, Run) else open_run(run)
    view, store = run.view, run.store
    judge = judge_from_record(run, judge_options)
    interval = judge.batch_options.poll_interval if poll_interval is None else float(poll_interval)
    start = time.monotonic()
    lock = store.lock()
    total = BatchProgress()
    try:
        with lock, open_cache(cache) as judgment_cache:
            clear_spool(store.run_dir)
            while True:
                p = collect(store, judge, judgment_cache)
                done = store.judged_ids(judge.id, judge.prompt_version, view.alpha, view.beta)
                busy = BatchJobs(store).in_flight_ids(judge.id, judge.prompt_version, view.alpha, view.beta)
                ids = sorted(store.cam_ids() - done - busy - store.skipped_ids())
                if ids:
                    stream = submit_from_store(run, judge, ids, view.alpha, view.beta, judgment_cache, p)
                    if stream.stopped is not None:
                        p.problems.append(f"stopped: {stream.stopped}")
                _accumulate(total, p)
                if not wait or p.in_flight == 0 or (timeout is not None and time.monotonic() - start >= timeout):
                    break
                time.sleep(interval)
    finally:
        judge.close()
    run.last_summary = total
    if verbose:
        print(f"vlmxplain: {total}")
    return run


def _accumulate(total: BatchProgress, p: BatchProgress) -> None:
    """Counts over every poll of one :func:`sync`; in-flight figures are the latest poll's."""
    for name in ("submitted", "jobs_submitted", "judged", "failed", "resubmit", "adopted", "abandoned", "unreadable"):
        setattr(total, name, getattr(total, name) + getattr(p, name))
    total.in_flight, total.jobs_in_flight = p.in_flight, p.jobs_in_flight
    total.problems = [*total.problems, *p.problems][-20:]
