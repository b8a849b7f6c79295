"""sync(): collect a batch-judged run (``openai-batch:``/``gemini-batch:``) from its run directory.

``Run`` lives in the store layer and cannot call a judge, so collecting is here: ``vx.sync(run)``
polls the run's provider jobs, ingests finished results and submits again what an expired,
failed or cancelled job left unanswered — :func:`~vlmxplain.pipeline.rejudge.rejudge` with the
run's own batch judge, rebuilt from its record (the key from the environment).
"""
from __future__ import annotations

import time
from pathlib import Path

from ..judges import make_judge
from ..judges.vlm.batch import BatchJudge, BatchOptions
from ..judges.vlm.options import VLMOptions
from ..judges.vlm.prompts import PAPER_RUBRIC, PROMPT_TEMPLATES
from ..store import JudgmentCache, Run, open_run
from ..judges.vlm.core import CallError
from ..store.batch_jobs import BatchJobs
from .batch import BatchProgress, collect, is_batch, open_cache
from .rejudge import rejudge

_BATCH_OPTIONS = tuple(BatchOptions.model_fields)


def judge_from_record(run: Run, judge_options: dict | None = None) -> BatchJudge:
    """The run's current batch judge, rebuilt from its recorded settings (the key from the
    environment); ``judge_options`` override recorded options."""
    settings = run.view.judge
    recorded = dict(settings.options)
    options = {k: recorded[k] for k in VLMOptions.model_fields if k in recorded and k != "template"}
    options.update({k: recorded[k] for k in _BATCH_OPTIONS if k in recorded})
    name = recorded.get("template", PAPER_RUBRIC.name)
    if name in PROMPT_TEMPLATES:  # a named template; a custom one is checked by its prompt version below
        options["template"] = name
    elif "template" not in (judge_options or {}):
        raise ValueError(f"judge: {run.run_dir} was judged with the custom prompt template {name!r}; pass "
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


def sync(run: Run | str | Path, *, wait: bool = False, poll_interval: float | None = None,
         timeout: float | None = None, judge_options: dict | None = None,
         cache: JudgmentCache | str | Path | bool = True, repeats: int | None = None, cancel: bool = False,
         max_cost: float | None = None, verbose: bool = True) -> Run:
    """Collect a batch run: poll its jobs, ingest finished results, submit again the samples of
    expired, failed or cancelled jobs (and any sample with a CAM never submitted); with ``wait``,
    repeat every ``poll_interval`` s (default: the judge's) until nothing is in flight or
    ``timeout`` s have passed. Returns the run; ``run.last_summary`` is the
    :class:`~vlmxplain.pipeline.batch.BatchProgress` of the whole call.

    ``repeats``: answers per sample (default: as many as the run's jobs asked for).
    ``cancel=True`` asks the provider to cancel the run's open jobs instead and collects what they
    answered; nothing is submitted (their other samples stay pending for a later call).
    ``max_cost``: the spending cap of what it submits (see ``explain``; default: the cap of the
    run's last ``explain``/``rejudge``/``sync`` call, so collecting a capped run never spends past it)."""
    run = run if isinstance(run, Run) else open_run(run)
    view = run.view
    max_cost = run.store.get_config("max_cost") if max_cost is None else max_cost
    start, total = time.monotonic(), BatchProgress()
    lock = run.store.lock()  # one process per run directory, for the whole call
    with lock, open_cache(cache) as judgment_cache:
        if cancel:
            total = _cancel(run, judge_from_record(run, judge_options), judgment_cache)
        while not cancel:
            judge = judge_from_record(run, judge_options)  # rejudge closes it
            interval = judge.batch_options.poll_interval if poll_interval is None else float(poll_interval)
            n = repeats or BatchJobs(run.store).repeats(judge.id, judge.prompt_version)
            rejudge(run, judge=judge, alpha=view.alpha, beta=view.beta, repeats=n, progress=False, make_current=False,
                    cache=judgment_cache if judgment_cache is not None else False, max_cost=max_cost)
            p = run.last_summary.batch
            _accumulate(total, p)
            if not wait or p.in_flight == 0 or (timeout is not None and time.monotonic() - start >= timeout):
                break
            time.sleep(interval)
    run.last_summary = total
    if verbose:
        print(f"vlmxplain: {total}")
    return run


def _cancel(run: Run, judge: BatchJudge, cache: JudgmentCache | None) -> BatchProgress:
    p = BatchProgress()
    try:
        for job in BatchJobs(run.store).open_jobs():
            if job.job_id and (job.judge_id, job.prompt_version) == (judge.id, judge.prompt_version):
                try:
                    judge.api.cancel(job.job_id)
                except CallError as err:
                    p.problems.append(f"job {job.job_id}: not cancelled: {judge.redact(err.reason())}")
        return collect(run.store, judge, cache, p)
    finally:
        judge.close()


def _accumulate(total: BatchProgress, p: BatchProgress) -> None:
    """Counts over every poll of one :func:`sync`; in-flight figures are the latest poll's."""
    for name in ("submitted", "jobs_submitted", "judged", "failed", "resubmit", "adopted", "abandoned", "unreadable"):
        setattr(total, name, getattr(total, name) + getattr(p, name))
    total.in_flight, total.jobs_in_flight = p.in_flight, p.jobs_in_flight
    total.problems = [*total.problems, *p.problems][-20:]
