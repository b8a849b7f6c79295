"""Faithfulness and localisation metrics stored beside the judgments, one row per
(sample, metric, variant), committed as computed (so :func:`vlmxplain.metrics.evaluate` resumes).

``variant`` holds the settings a value depends on (``"blur_noise"``, ``"black,steps=10"``, ``""``
for metrics without a baseline). In ``run.table`` a metric appears as a column named after it for
its default variant (``""`` or ``"blur_noise"``) and as ``metric@variant`` otherwise.
"""
from __future__ import annotations

import json
import time
from typing import Iterable

import pandas as pd

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    sample_id TEXT NOT NULL, metric TEXT NOT NULL, variant TEXT NOT NULL, status TEXT NOT NULL, value REAL,
    detail TEXT NOT NULL DEFAULT '{}', classifier TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (sample_id, metric, variant)
);
"""
DEFAULT_VARIANTS = ("", "blur_noise")


def column_name(metric: str, variant: str) -> str:
    """The ``run.table`` column of a stored metric."""
    return metric if variant in DEFAULT_VARIANTS else f"{metric}@{variant}"


class MetricsTable:
    """The ``metrics`` table of a :class:`~vlmxplain.store.RunStore` (created on first use)."""

    def __init__(self, store) -> None:
        self.store = store
        if not getattr(store, "readonly", False):
            store._conn.executescript(_SCHEMA)
        # a read-only store is never written: without the table it has no metrics
        self.exists = store._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics'").fetchone() is not None

    def put(self, rows: Iterable[dict]) -> None:
        """Store rows with keys sample_id, metric, variant, status, value, classifier and an
        optional ``detail`` dict (one transaction)."""
        now = time.time()
        with self.store._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO metrics(sample_id, metric, variant, status, value, detail, classifier, created) "
                "VALUES (?,?,?,?,?,?,?,?)",
                [(r["sample_id"], r["metric"], r["variant"], r["status"],
                  None if r.get("value") is None or pd.isna(r["value"]) else float(r["value"]),
                  json.dumps(r.get("detail") or {}), r["classifier"], now) for r in rows],
            )

    def done_ids(self, metric: str, variant: str) -> set[str]:
        if not self.exists:
            return set()
        sql = "SELECT sample_id FROM metrics WHERE metric = ? AND variant = ?"
        return {r[0] for r in self.store._conn.execute(sql, (metric, variant))}

    def frame(self) -> pd.DataFrame:
        """Every stored value (long form): id, metric, variant, status, value, detail, classifier."""
        if not self.exists:
            return pd.DataFrame(columns=["id", "metric", "variant", "status", "value", "detail", "classifier"])
        df = pd.read_sql_query("SELECT sample_id AS id, metric, variant, status, value, detail, classifier "
                               "FROM metrics ORDER BY sample_id, metric, variant", self.store._conn)
        df["detail"] = df["detail"].map(json.loads)
        return df

    def wide(self) -> pd.DataFrame:
        """One row per sample id, one column per (metric, variant) (see :func:`column_name`)."""
        if not self.exists:
            return pd.DataFrame(index=pd.Index([], name="id"))
        df = pd.read_sql_query("SELECT sample_id AS id, metric, variant, value FROM metrics", self.store._conn)
        if df.empty:
            return pd.DataFrame(index=pd.Index([], name="id"))
        df["column"] = [column_name(m, v) for m, v in zip(df["metric"], df["variant"])]
        return df.pivot(index="id", columns="column", values="value").rename_axis(None, axis=1)


def with_metrics(table: pd.DataFrame, store) -> pd.DataFrame:
    """``table`` (indexed by sample id) with the stored metrics as extra columns."""
    wide = MetricsTable(store).wide()
    if wide.empty:
        return table
    return table.join(wide, how="left")
