"""``vx.export_table(run, "results.parquet" | "results.csv")``: the run's per-sample table."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..store import Run, open_run


def export_table(run: "Run | str | Path", path: str | Path, *, threshold: float | None = None) -> Path:
    """Write ``run.table`` (at ``threshold``, default the run's) to ``path``: ``.csv`` (list
    columns as JSON) or ``.parquet`` (needs pyarrow). Returns the path."""
    run = run if isinstance(run, Run) else open_run(run)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"path: give a .csv or .parquet file, got {str(path)!r}")
    table = run.table_for(threshold=threshold).reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        out = table.copy()
        for col in ("targets", "target_names"):
            out[col] = [json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for v in out[col]]
        out.to_csv(path, index=False)
        return path
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError("export: Parquet needs pyarrow (pip install pyarrow), or write a .csv file")
    out = table.astype({"correct": "boolean", "cached": "boolean"})
    out.to_parquet(path, index=False)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`export_table` back (list columns decoded)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    table = pd.read_csv(path)
    for col in ("targets", "target_names"):
        table[col] = [json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in table[col]]
    return table
