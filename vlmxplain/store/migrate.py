"""Upgrade a run store written by an older vlmxplain in place (results are never dropped)."""
from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Iterator

from ..core.defaults import DEFAULT_THRESHOLD
from ..core.records import ClassifierInfo, DatasetInfo, JudgeSettings, RunConfig, RunView

_V1_KEYS = ("classifier", "classifier_fingerprint", "class_names", "target_layer", "cam", "dataset", "n_samples",
            "alpha", "beta", "judge", "prompt_version", "judge_is_vlm", "threshold", "vlmxplain_version")


@contextlib.contextmanager
def _transaction(c: sqlite3.Connection) -> Iterator[None]:
    """One migration step, all or nothing (the connection runs in autocommit mode)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")


def migrate(c: sqlite3.Connection, path: Path, version: int) -> None:
    """Upgrade schema ``version`` to the current one, one step at a time, each in one transaction."""
    if version == 1:
        _v1_to_v2(c, path)
        version = 2
    if version == 2:  # judgments.truncated: 0 for every existing judgment (none was cut)
        _add_judgments_column(c, "truncated", 0, version=3)
        version = 3
    if version == 3:
        _v3_to_v4(c)
        version = 4
    if version == 4:  # judgments.requests: 1 for every existing judgment (hedging came with 5)
        _add_judgments_column(c, "requests", 1, version=5)
        version = 5
    if version != 5:
        raise ValueError(f"run_dir: {path}: unknown run store schema version {version!r}")


_V4_JUDGMENTS = """
CREATE TABLE judgments_v4 (
    sample_id TEXT NOT NULL, judge_id TEXT NOT NULL, prompt_version TEXT NOT NULL,
    alpha REAL NOT NULL, beta REAL NOT NULL, cache_key TEXT NOT NULL, status TEXT NOT NULL,
    score REAL, description TEXT, justification TEXT, error TEXT, raw TEXT, parse_path TEXT,
    input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, cached INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, truncated INTEGER NOT NULL DEFAULT 0, repeat INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sample_id, judge_id, prompt_version, alpha, beta, repeat)
)"""
_V3_COLUMNS = ("sample_id, judge_id, prompt_version, alpha, beta, cache_key, status, score, description, justification, "
               "error, raw, parse_path, input_tokens, output_tokens, latency_s, cached, created, truncated")


def _v3_to_v4(c: sqlite3.Connection) -> None:
    """Schema 3 → 4: the repeat index joins the judgments' key (repeated sampling). SQLite cannot
    change a primary key in place, so the table is rebuilt; every existing judgment becomes repeat 0."""
    with _transaction(c):
        c.execute("DROP TABLE IF EXISTS judgments_v4")
        c.execute(_V4_JUDGMENTS)
        c.execute(f"INSERT INTO judgments_v4 ({_V3_COLUMNS}, repeat) SELECT {_V3_COLUMNS}, 0 FROM judgments")
        c.execute("DROP TABLE judgments")
        c.execute("ALTER TABLE judgments_v4 RENAME TO judgments")
        c.execute("INSERT OR REPLACE INTO config(key, value) VALUES ('schema_version', ?)", (json.dumps(4),))


def _add_judgments_column(c: sqlite3.Connection, column: str, default: int, *, version: int) -> None:
    """One step that adds an integer column to the judgments (``default`` for every existing row)."""
    with _transaction(c):
        cols = {r[1] for r in c.execute("PRAGMA table_info(judgments)")}
        if column not in cols:
            c.execute(f"ALTER TABLE judgments ADD COLUMN {column} INTEGER NOT NULL DEFAULT {int(default)}")
        c.execute("INSERT OR REPLACE INTO config(key, value) VALUES ('schema_version', ?)", (json.dumps(version),))


def _v1_to_v2(c: sqlite3.Connection, path: Path) -> None:
    """Schema 1 → 2 in one transaction: the loose key/value configuration becomes the typed run
    record, and never-sent judgments (an error message prefix in 1) get the ``not_sent`` status."""
    rows = dict(c.execute("SELECT key, value FROM config").fetchall())
    old = {k: json.loads(rows[k]) if k in rows else None for k in _V1_KEYS}
    with _transaction(c):
        if old["classifier_fingerprint"] is not None:
            config = RunConfig(
                classifier=ClassifierInfo(name=old["classifier"], fingerprint=old["classifier_fingerprint"],
                                          target_layer=old["target_layer"] or "", class_names=old["class_names"] or []),
                dataset=DatasetInfo(name=old["dataset"], n_samples=int(old["n_samples"] or 0)),
                cam=old["cam"], versions={"vlmxplain": str(old["vlmxplain_version"])},
            )
            view = RunView(judge=JudgeSettings(judge=old["judge"], prompt_version=old["prompt_version"],
                                               is_vlm=bool(old["judge_is_vlm"])),
                           alpha=old["alpha"], beta=old["beta"], threshold=old["threshold"] or DEFAULT_THRESHOLD)
            c.execute("INSERT OR REPLACE INTO config(key, value) VALUES ('run', ?)", (config.model_dump_json(),))
            c.execute("INSERT OR REPLACE INTO config(key, value) VALUES ('view', ?)", (view.model_dump_json(),))
        c.executemany("DELETE FROM config WHERE key = ?", [(k,) for k in _V1_KEYS])
        c.execute("UPDATE judgments SET status = 'not_sent' WHERE status = 'failed' AND error LIKE 'not sent:%'")
        c.execute("INSERT OR REPLACE INTO config(key, value) VALUES ('schema_version', ?)", (json.dumps(2),))


def ensure_tables(c: sqlite3.Connection, schema: str, table: str) -> bool:
    """Add optional tables (``CREATE TABLE IF NOT EXISTS`` statements in ``schema``) to a run store
    in one transaction, unless ``table`` already exists; the schema version does not change (a
    store without them reads as before). Returns whether ``table`` exists afterwards."""
    def exists() -> bool:
        return c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None

    if not exists():
        with _transaction(c):
            for statement in filter(str.strip, schema.split(";")):
                c.execute(statement)
    return exists()
