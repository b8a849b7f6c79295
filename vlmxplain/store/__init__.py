"""Persistence: the run store (one SQLite file per run directory), the cross-run judgment cache,
:class:`Run`, the read model over a run directory, and :func:`merge_runs` (shards into one run)."""
from .cache import JudgmentCache
from .merge import merge_runs
from .run import Run, open_run
from .run_store import RUN_FILE, SCHEMA_VERSION, RunDirBusy, RunLock, RunStore, RunStoreError

__all__ = ["RUN_FILE", "SCHEMA_VERSION", "JudgmentCache", "Run", "RunDirBusy", "RunLock", "RunStore", "RunStoreError",
           "merge_runs", "open_run"]
