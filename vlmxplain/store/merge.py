"""merge_runs(): join the stores of several runs (typically the shards of one run) into one.

Every source must be a run of the same classifier (fingerprint), CAM method and options, and
dataset as the target; anything else is refused before a row is written. Merging is idempotent:
rows already in the target are kept, so merging the same shard twice, or again after a shard
resumed, changes nothing but what is new. A judgment in the target that is unfinished (never
sent, refused) or failed gives way to an answer from a source; a finished one is never replaced.
Each source is copied in one transaction, its provider batch jobs with it (a record of what was
submitted); a source whose batch jobs are still open is refused: sync it first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .batch_jobs import BatchJobs
from .run import Run
from .run_store import RUN_FILE, RunStore

# Columns are named explicitly: the copy never depends on column order.
_COPIES = {
    "samples": "idx, id, path, label, targets, meta",
    "cams": "sample_id, method, prediction, confidence, target, top_classes, top_probs, width, height, map_h, map_w, "
            "map, created",
    "previews": "sample_id, image, object_mask, mask_h, mask_w",
    "skipped": "sample_id, path, reason, created",
    "annotations": "sample_id, annotator, score, accept, note, created",
    "judges": "judge_id, prompt_version, settings",
}
_JUDGMENT_COLUMNS = ("sample_id, judge_id, prompt_version, alpha, beta, repeat, cache_key, status, score, description, "
                     "justification, error, raw, parse_path, input_tokens, output_tokens, latency_s, cached, created, "
                     "truncated, requests")
_BATCH_COPIES = {
    "batch_jobs": "nonce, provider, job_id, judge_id, prompt_version, alpha, beta, state, provider_state, n_requests, "
                  "error, adopted, created, submitted, updated, finished",
    "batch_requests": "custom_id, nonce, sample_id, repeat, cache_key, state, error",
}
_RANK = "CASE {t}.status WHEN 'ok' THEN 3 WHEN 'failed' THEN 2 WHEN 'rejected' THEN 1 ELSE 0 END"


def merge_runs(sources: Iterable[str | os.PathLike], into: str | os.PathLike) -> Run:
    """Merge the run stores in ``sources`` (run directories) into the run at ``into`` (created if
    needed, from the first source's configuration without its shard) and return it."""
    dirs = [Path(s) for s in sources]
    if not dirs:
        raise ValueError("sources: give at least one run directory")
    target_dir = Path(into)
    if any(d.resolve() == target_dir.resolve() for d in dirs):
        raise ValueError(f"into: {target_dir} is also a source")
    stores = [RunStore.open_existing(d) for d in dirs]
    try:
        configs = [s.run_config for s in stores]
        for d, cfg in zip(dirs, configs):
            if cfg is None:
                raise ValueError(f"sources: {d} holds no set-up run (explain() never got going there)")
        base = configs[0].model_copy(update={"shard": None})
        problems = [f"{d}: {'; '.join(p)}" for d, cfg in zip(dirs, configs) if (p := base.compatible(cfg))]
        view = stores[0].view
        if view is None:
            raise ValueError(f"sources: {dirs[0]} has no current view")
        # an existing target is checked too; a new one is created only once nothing is refused
        target = RunStore(target_dir) if (target_dir / RUN_FILE).is_file() else None
        if target is not None and target.run_config is not None:
            if p := base.compatible(target.run_config):
                problems.append(f"{target_dir} (target): {'; '.join(p)}")
        for d, store in zip(dirs, stores):
            if n_open := len(BatchJobs(store, create=False).open_jobs()):  # a source is never written
                problems.append(f"{d}: {n_open} provider batch job(s) still open (in flight or not yet confirmed): "
                                f"collect them first with vx.sync({str(d)!r}, wait=True) (or cancel=True)")
        if problems:
            if target is not None:
                target.close()
            raise ValueError("merge_runs: these runs cannot be merged (one classifier, CAM method and dataset per "
                             "run, no batch job open):\n  " + "\n  ".join(problems))
        target = target or RunStore(target_dir)
        if target.run_config is None:
            target.init_run(base, view)
        for d in dirs:
            _copy(target, d / RUN_FILE)
    finally:
        for s in stores:
            s.close()
    return Run(target_dir, store=target)


def _copy(target: RunStore, source: Path) -> None:
    conn = target._conn
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    try:
        clash = conn.execute("SELECT s.idx, s.id, m.id FROM src.samples s JOIN main.samples m ON s.idx = m.idx "
                             "AND s.id != m.id LIMIT 1").fetchone()
        if clash is not None:
            raise ValueError(f"merge_runs: {source.parent} numbers its samples differently from the target (index "
                             f"{clash[0]} is {clash[1]!r} there, {clash[2]!r} here): not shards of one dataset")
        has_jobs = conn.execute("SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = 'batch_jobs'").fetchone()
        if has_jobs:
            BatchJobs(target)  # the target's batch tables, created on first use
        with target._tx() as c:
            for table, cols in {**_COPIES, **(_BATCH_COPIES if has_jobs else {})}.items():
                c.execute(f"INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM src.{table}")
            update = ", ".join(f"{col} = excluded.{col}" for col in _JUDGMENT_COLUMNS.split(", ")[7:])
            c.execute(
                f"INSERT INTO main.judgments ({_JUDGMENT_COLUMNS}) SELECT {_JUDGMENT_COLUMNS} FROM src.judgments "
                "WHERE true ON CONFLICT(sample_id, judge_id, prompt_version, alpha, beta, repeat) DO UPDATE SET "
                f"cache_key = excluded.cache_key, {update} "
                f"WHERE {_RANK.format(t='excluded')} > {_RANK.format(t='judgments')}"
            )
    finally:
        conn.execute("DETACH DATABASE src")
