"""The content-addressed judgment cache shared across runs (one SQLite file)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.defaults import judgment_cache_path
from ..core.records import Judgment
from .run_store import connect


class JudgmentCache:
    """Content-addressed judgments shared across runs: key = sha256(judge id, prompt version,
    bytes the judge sees). Only successful judgments are cached (failures are retried)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else judgment_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(self.path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, judge_id TEXT NOT NULL, "
            "judgment TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get(self, key: str) -> Judgment | None:
        row = self._conn.execute("SELECT judgment FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else Judgment.model_validate_json(row[0])

    def put(self, key: str, judgment: Judgment) -> None:
        if not judgment.ok:
            return
        self._conn.execute(
            "INSERT OR REPLACE INTO cache(key, judge_id, judgment, created) VALUES (?, ?, ?, ?)",
            (key, judgment.judge_id, judgment.model_dump_json(), time.time()),
        )

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
