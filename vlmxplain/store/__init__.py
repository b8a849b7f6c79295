"""Persistence: the run store (one SQLite file per run directory), the cross-run judgment cache,
and :class:`Run`, the read model over a run directory."""
from .cache import JudgmentCache
from .run import Run, open_run
from .run_store import RUN_FILE, SCHEMA_VERSION, RunDirBusy, RunLock, RunStore, RunStoreError

__all__ = ["RUN_FILE", "SCHEMA_VERSION", "JudgmentCache", "Run", "RunDirBusy", "RunLock", "RunStore", "RunStoreError",
           "open_run"]
