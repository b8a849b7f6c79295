"""The content-addressed judgment cache shared across runs (one SQLite file).

The cache only saves money: when it fails (disk full, damaged or unwritable file) the run goes
on without it, with one warning; the run store is what must not lose anything.
"""
from __future__ import annotations

import os
import sqlite3
import time
import warnings
from pathlib import Path

from ..core.defaults import judgment_cache_path
from ..core.records import Judgment
from .run_store import connect


class JudgmentCache:
    """Content-addressed judgments shared across runs: key = sha256(judge id, prompt version,
    bytes the judge sees). Only successful judgments are cached (failures are retried).
    ``error`` says why the cache was turned off (None while it works)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else judgment_cache_path()
        self.error: str | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(self.path)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, judge_id TEXT NOT NULL, "
                "judgment TEXT NOT NULL, created REAL NOT NULL)"
            )
        except (OSError, sqlite3.Error) as err:
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        self.error = f"{self.path}: {err}" if str(self.path) not in str(err) else str(err)
        warnings.warn(f"vlmxplain: judgment cache turned off for this run ({self.error}); results still go to the "
                      "run store", RuntimeWarning, stacklevel=3)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None

    def get(self, key: str) -> Judgment | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute("SELECT judgment FROM cache WHERE key = ?", (key,)).fetchone()
            return None if row is None else Judgment.model_validate_json(row[0])
        except (OSError, sqlite3.Error, ValueError) as err:
            self._fail(err)
            return None

    def put(self, key: str, judgment: Judgment) -> None:
        if not judgment.ok or self._conn is None:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO cache(key, judge_id, judgment, created) VALUES (?, ?, ?, ?)",
                (key, judgment.judge_id, judgment.model_dump_json(), time.time()),
            )
        except (OSError, sqlite3.Error) as err:
            self._fail(err)

    def __len__(self) -> int:
        return 0 if self._conn is None else self._conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
