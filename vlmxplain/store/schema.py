"""The run store's schema: its tables, its version (what :mod:`.migrate` upgrades from) and the
``PRAGMA application_id`` that marks a SQLite file as a vlmxplain run store."""
from __future__ import annotations

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "TABLES", "TABLES_SQL"]

#: 2: typed run record (``run`` / ``view`` config rows, ``judges`` table), ``not_sent`` status.
#: 3: ``judgments.truncated`` (a text field was cut to the size cap).
#: 4: ``judgments.repeat`` in the key (repeated sampling: answer k of n; 0 for a single answer).
#: 5: ``judgments.requests`` (requests billed for the answer: 2 for a straggler sent twice).
SCHEMA_VERSION = 5

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (
    judge_id TEXT NOT NULL, prompt_version TEXT NOT NULL, settings TEXT NOT NULL,
    PRIMARY KEY (judge_id, prompt_version)
);
CREATE TABLE IF NOT EXISTS samples (
    idx INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, path TEXT, label TEXT NOT NULL DEFAULT '',
    targets TEXT NOT NULL DEFAULT '[]', meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS cams (
    sample_id TEXT PRIMARY KEY, method TEXT NOT NULL, prediction INTEGER NOT NULL, confidence REAL NOT NULL,
    target INTEGER NOT NULL, top_classes TEXT NOT NULL, top_probs TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, map_h INTEGER NOT NULL, map_w INTEGER NOT NULL,
    map BLOB NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS judgments (
    sample_id TEXT NOT NULL, judge_id TEXT NOT NULL, prompt_version TEXT NOT NULL,
    alpha REAL NOT NULL, beta REAL NOT NULL, cache_key TEXT NOT NULL, status TEXT NOT NULL,
    score REAL, description TEXT, justification TEXT, error TEXT, raw TEXT, parse_path TEXT,
    input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, cached INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, truncated INTEGER NOT NULL DEFAULT 0, repeat INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (sample_id, judge_id, prompt_version, alpha, beta, repeat)
);
CREATE TABLE IF NOT EXISTS previews (
    sample_id TEXT PRIMARY KEY, image BLOB NOT NULL, object_mask BLOB, mask_h INTEGER, mask_w INTEGER
);
CREATE TABLE IF NOT EXISTS skipped (sample_id TEXT PRIMARY KEY, path TEXT, reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS annotations (
    sample_id TEXT NOT NULL, annotator TEXT NOT NULL, score REAL, accept INTEGER, note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, PRIMARY KEY (sample_id, annotator)
);
"""

#: ``PRAGMA application_id`` of a vlmxplain run store ("vlxR"); 0 in stores of vlmxplain < 0.3.
APPLICATION_ID = 0x766C7852
#: The tables every current store has (``judges`` since schema 2).
TABLES = {"config", "judges", "samples", "cams", "judgments", "previews", "skipped", "annotations"}
