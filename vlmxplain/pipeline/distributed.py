"""Run ``explain()`` across machines on Dask distributed or Ray: one task per shard, merged into one run.

Each task runs ``explain(..., shard=(k, n))`` on a worker into its own store under
``<run_dir>/shards/`` (a filesystem every worker and the caller can reach), then
:func:`~vlmxplain.store.merge_runs` joins the shards into ``run_dir``. A task that dies is simply
run again by engine (Dask, or Ray with ``max_retries``): its shard store resumes where it stopped, like any
run. Needs the ``dask`` extra (``pip install "vlmxplain[dask]"``) or the ``ray`` extra.

On a GPU cluster, start one worker per GPU (e.g. ``dask-cuda``'s ``LocalCUDACluster`` or
``dask worker --nworkers 1`` per GPU with ``CUDA_VISIBLE_DEVICES`` set) and pass ``device="cuda"``;
on Ray, ``explain_on_ray(..., num_gpus=1)`` reserves one GPU per shard task.
"""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any

from ..core.checks import check_usd
from ..datasets import Dataset, open_dataset
from ..models import Classifier, resolve_classifier
from ..store import Run, merge_runs
from .explain import check_shard, explain


def shard_dir(run_dir: str | os.PathLike, k: int, n: int) -> Path:
    """Where shard ``k`` of ``n`` of the run at ``run_dir`` is computed."""
    return Path(run_dir) / "shards" / f"shard-{k:04d}-of-{n:04d}"


def explain_shard(classifier: Classifier | str, data: Dataset | str, shard: tuple[int, int], run_dir: str,
                  options: dict[str, Any]) -> dict[str, Any]:
    """One shard, on whichever machine runs it. Spec strings are resolved there (the worker builds
    the classifier and opens the dataset itself); objects arrive pickled. Returns the summary."""
    clf = resolve_classifier(classifier, data if isinstance(data, str) else None, progress=False) \
        if isinstance(classifier, str) else classifier
    dataset = open_dataset(data) if isinstance(data, str) else data
    run = explain(clf, dataset, shard=shard, run_dir=run_dir, progress=False, verbose=False, **options)
    summary = dataclasses.asdict(run.last_summary)
    run.store.close()
    return summary | {"shard": list(shard), "run_dir": run_dir, "host": socket.gethostname(), "pid": os.getpid()}


def _shard_dirs(shards: int, run_dir: str | os.PathLike, options: dict[str, Any], engine: str) -> list[Path]:
    """Check the arguments every engine shares (before any task starts); the shards' directories."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards: expected an integer >= 1, got {shards!r}")
    for bad in ("shard", "run_dir", "progress", "verbose"):
        if bad in options:
            raise ValueError(f"{bad}: set by {engine}, not an option")
    return [shard_dir(run_dir, k, shards) for k in range(shards)]


def _shard_options(options: dict[str, Any], shards: int) -> dict[str, Any]:
    """What each shard's ``explain`` gets: ``max_cost`` is the whole run's, split evenly between the
    shards (each shard's store keeps its own spend)."""
    if options.get("max_cost") is None:
        return options
    return {**options, "max_cost": check_usd("max_cost", options["max_cost"]) / shards}


def _merged(dirs: list[Path], run_dir: str | os.PathLike, summaries: list[dict[str, Any]]) -> Run:
    run = merge_runs(dirs, into=run_dir)
    run.shard_summaries = summaries
    return run


def explain_on_dask(classifier: Classifier | str, data: Dataset | str, *, shards: int, run_dir: str | os.PathLike,
                    client: Any = None, **options: Any) -> Run:
    """``explain()`` in ``shards`` Dask tasks, merged into ``run_dir``; returns the merged run, with
    each shard's summary in ``run.shard_summaries``. ``client``: a ``distributed.Client`` (default:
    the current one). ``options`` go to :func:`~vlmxplain.explain` (``judge``, ``cam``, ``device``…;
    ``max_cost`` is the whole run's: each shard may spend ``max_cost / shards``)."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ImportError('explain_on_dask needs Dask distributed: pip install "vlmxplain[dask]"') from None
    dirs, options = _shard_dirs(shards, run_dir, options, "explain_on_dask"), _shard_options(options, shards)
    client = client or distributed.get_client()
    futures = [client.submit(explain_shard, classifier, data, check_shard((k, shards)), str(d), options, pure=False,
                             key=f"vlmxplain-shard-{k}-of-{shards}-{os.fspath(run_dir)}")
               for k, d in enumerate(dirs)]
    return _merged(dirs, run_dir, client.gather(futures))


def explain_on_ray(classifier: Classifier | str, data: Dataset | str, *, shards: int, run_dir: str | os.PathLike,
                   num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 3, **options: Any) -> Run:
    """``explain()`` in ``shards`` Ray tasks on the connected cluster (``ray.init(...)`` first, or a
    local one is started), merged into ``run_dir``; each shard's summary in ``run.shard_summaries``.
    ``num_cpus``/``num_gpus``: resources each task reserves (``num_gpus=1``: one GPU per shard);
    ``max_retries``: reruns of a task whose worker died (it resumes its shard)."""
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ImportError('explain_on_ray needs Ray: pip install "vlmxplain[ray]"') from None
    dirs, options = _shard_dirs(shards, run_dir, options, "explain_on_ray"), _shard_options(options, shards)
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(explain_shard)
    refs = [task.remote(classifier, data, check_shard((k, shards)), str(d), options) for k, d in enumerate(dirs)]
    return _merged(dirs, run_dir, ray.get(refs))
