"""The run store: one SQLite file per run directory.

Every result is committed the moment it exists (WAL mode, one short transaction each), so a
run killed at any moment resumes where it stopped and loses nothing. Raw CAMs are stored at
the target layer's resolution as float16; masks for any alpha/beta are derived from them.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from ..core.records import JudgeSettings, Judgment, RunConfig, RunView
from .lock import LOCK_FILE, RunDirBusy, RunLock
from .migrate import migrate
from .schema import APPLICATION_ID, SCHEMA_VERSION, TABLES, TABLES_SQL
from .sqlite import RunStoreError, _check_header, _identity, _use_wal, connect

__all__ = ["LOCK_FILE", "RUN_FILE", "SCHEMA_VERSION", "RunDirBusy", "RunLock", "RunStore", "RunStoreError", "connect"]

RUN_FILE = "run.sqlite"


def _writable(path: Path) -> bool:
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


class RunStore:
    """All results of one run directory, in ``<run_dir>/run.sqlite``.

    Opening checks that an existing file is an intact vlmxplain run store of a known schema
    version (never modifying one that is not); a store in a read-only place opens read-only.
    Every write checks that the file is still the one opened (deleted or replaced → error).
    """

    def __init__(self, run_dir: str | os.PathLike, *, create: bool = True, readonly: bool | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RUN_FILE
        if str(run_dir).strip() == "":
            raise ValueError("run_dir: give a folder for the run (an empty path would write into the current one)")
        existing = self.path.is_file() and self.path.stat().st_size > 0
        if not existing and not create:
            what = "an empty file" if self.path.is_file() else f"missing {RUN_FILE}"
            raise FileNotFoundError(f"run_dir: no run at {run_dir} ({what})")
        if self.path.exists() and not self.path.is_file():
            raise RunStoreError(f"run_dir: {self.path} is not a file")
        if existing:
            _check_header(self.path)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.readonly = existing and (not _writable(self.path) if readonly is None else bool(readonly))
        if readonly and not existing:
            raise FileNotFoundError(f"run_dir: no run at {run_dir} to open read-only")
        self._conn = connect(self.path, readonly=self.readonly, wal=False)
        self._identity = _identity(self.path)
        try:
            version = self._check_existing() if existing else None  # before anything is written
            if self.readonly:
                if version is not None and version < SCHEMA_VERSION:
                    raise RunStoreError(f"run_dir: {self.path} has schema version {version}; open it once where "
                                        "it can be written to upgrade it")
                return
            _use_wal(self._conn)
            if version is None:
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.executescript(TABLES_SQL)
            if version is None:
                self.set_config(schema_version=SCHEMA_VERSION)
            elif version < SCHEMA_VERSION:
                migrate(self._conn, self.path, version)
            self._identity = _identity(self.path)
        except BaseException:
            self._conn.close()
            raise

    def _check_existing(self) -> int:
        """Schema version of an existing store, after checking it is an intact vlmxplain run store."""
        c = self._conn
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        version = None
        if "config" in tables:
            row = c.execute("SELECT value FROM config WHERE key = 'schema_version'").fetchone()
            version = None if row is None else json.loads(row[0])
        if (app_id not in (0, APPLICATION_ID)) or version is None:
            listed = ", ".join(sorted(tables)[:8]) or "none"
            raise RunStoreError(f"run_dir: {self.path} is not a vlmxplain run store (tables: {listed}); it was not "
                                "modified; use another run_dir")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RunStoreError(f"run_dir: {self.path} has schema version {version!r}, newer than this vlmxplain "
                                f"reads ({SCHEMA_VERSION}); upgrade vlmxplain")
        missing = (TABLES - ({"judges"} if version < 2 else set())) - tables
        check = c.execute("PRAGMA quick_check").fetchone()[0]
        if missing or check != "ok":
            why = f"missing tables {', '.join(sorted(missing))}" if missing else f"integrity check: {check}"
            raise RunStoreError(f"run_dir: {self.path} is damaged ({why}); it was not modified. Restore it from "
                                "a copy or start a new run_dir")
        return version

    @classmethod
    def open_existing(cls, run_dir: str | os.PathLike, readonly: bool | None = None) -> "RunStore":
        """An existing run (never creates one); ``readonly`` None: when its files cannot be written."""
        return cls(run_dir, create=False, readonly=readonly)

    def lock(self) -> "RunLock":
        """Hold the run directory for this process's work (see :class:`RunLock`)."""
        return RunLock(self.run_dir)

    def close(self) -> None:
        self._conn.close()

    def _check_still_there(self) -> None:
        if _identity(self.path) != self._identity:
            raise RunStoreError(f"run_dir: {self.path} was deleted or replaced while the run was writing to it; "
                                "stopping (nothing more could be saved). Rerun to start again")

    _tx_depth = 0

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._tx_depth:  # inside transaction(): committed with it
            yield self._conn
            return
        if self.readonly:
            raise PermissionError(f"run_dir: {self.path} is read-only (opened for reading); copy the run folder "
                                  "somewhere writable to add to it")
        self._check_still_there()
        self._conn.execute("BEGIN IMMEDIATE")
        self._tx_depth += 1
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        finally:
            self._tx_depth -= 1
        self._conn.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """The writes made inside it (by this store's methods) commit together, or not at all."""
        return self._tx()

    # ------------------------------------------------------------------ config
    def set_config(self, **values: Any) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO config(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def get_config(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def init_run(self, config: RunConfig, view: RunView) -> None:
        """Record what defines the run and its current view, in one transaction: a directory
        that holds another run (other classifier, CAM method or dataset) is refused, never mixed."""
        with self._tx() as c:
            row = c.execute("SELECT value FROM config WHERE key = 'run'").fetchone()
            if row is not None:
                conflicts = RunConfig.model_validate(json.loads(row[0])).conflicts(config)
                if conflicts:
                    raise ValueError(
                        f"run_dir: {self.run_dir} holds another run ({'; '.join(conflicts)}); use a new run_dir "
                        "(CAMs of one run must come from one classifier, method and dataset)")
            else:
                c.execute("INSERT INTO config(key, value) VALUES ('run', ?)", (config.model_dump_json(),))
            self._write_view(c, view)

    def set_view(self, view: RunView) -> None:
        """Make ``view`` (judge, alpha, beta, threshold) the run's current one."""
        with self._tx() as c:
            self._write_view(c, view)

    @staticmethod
    def _write_view(c: sqlite3.Connection, view: RunView) -> None:
        c.execute("INSERT INTO config(key, value) VALUES ('view', ?) ON CONFLICT(key) DO UPDATE SET value = "
                  "excluded.value", (view.model_dump_json(),))
        c.execute("INSERT OR REPLACE INTO judges(judge_id, prompt_version, settings) VALUES (?, ?, ?)",
                  (view.judge.judge, view.judge.prompt_version, view.judge.model_dump_json()))

    def record_judge(self, settings: JudgeSettings) -> None:
        """Remember how a judge was configured (every judge that judged this run has a row)."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO judges(judge_id, prompt_version, settings) VALUES (?, ?, ?)",
                      (settings.judge, settings.prompt_version, settings.model_dump_json()))

    @property
    def run_config(self) -> RunConfig | None:
        """What defines the run (None before the first ``explain`` wrote it)."""
        raw = self.get_config("run")
        return None if raw is None else RunConfig.model_validate(raw)

    @property
    def view(self) -> RunView | None:
        raw = self.get_config("view")
        return None if raw is None else RunView.model_validate(raw)

    def judge_settings(self) -> list[JudgeSettings]:
        """Every judge configuration recorded in this run."""
        return [JudgeSettings.model_validate_json(r[0])
                for r in self._conn.execute("SELECT settings FROM judges ORDER BY judge_id, prompt_version")]

    # ------------------------------------------------------------------ samples
    def add_samples(self, rows: Iterable[dict]) -> None:
        """Register samples (idx, id, path, label, targets, meta); existing ids are kept as they are."""
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO samples(idx, id, path, label, targets, meta) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r["idx"], r["id"], r.get("path"), r.get("label", ""), json.dumps(list(r.get("targets", ()))),
                     json.dumps(r.get("meta", {}), default=str))
                    for r in rows
                ],
            )

    def get_sample(self, sample_id: str) -> dict | None:
        row = self._conn.execute(
            "SELECT idx, id, path, label, targets, meta FROM samples WHERE id = ?", (sample_id,)
        ).fetchone()
        if row is None:
            return None
        return {"idx": row[0], "id": row[1], "path": row[2], "label": row[3], "targets": json.loads(row[4]),
                "meta": json.loads(row[5])}

    def sample_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def sample_ids(self) -> list[str]:
        """The run's sample ids in the dataset's order."""
        return [r[0] for r in self._conn.execute("SELECT id FROM samples ORDER BY idx")]

    def samples(self) -> pd.DataFrame:
        df = pd.read_sql_query("SELECT idx, id, path, label, targets, meta FROM samples ORDER BY idx", self._conn)
        df["targets"] = df["targets"].map(json.loads)
        df["meta"] = df["meta"].map(json.loads)
        return df

    # ------------------------------------------------------------------ skipped
    def add_skipped(self, sample_id: str, path: str | None, reason: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO skipped(sample_id, path, reason, created) VALUES (?, ?, ?, ?)",
                (sample_id, path, reason, time.time()),
            )

    def skipped(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT sample_id AS id, path, reason FROM skipped ORDER BY created", self._conn)

    def skipped_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT sample_id FROM skipped")}

    # ------------------------------------------------------------------ CAMs
    def put_cams(self, rows: Iterable[dict]) -> None:
        """Store raw CAMs (one transaction for the batch): keys as in :meth:`get_cam`."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO cams(sample_id, method, prediction, confidence, target, top_classes, "
                "top_probs, width, height, map_h, map_w, map, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r["id"], r["method"], int(r["prediction"]), float(r["confidence"]), int(r["target"]),
                        json.dumps([int(x) for x in r["top_classes"]]),
                        json.dumps([round(float(x), 6) for x in r["top_probs"]]),
                        int(r["image_size"][0]), int(r["image_size"][1]), int(r["map"].shape[0]),
                        int(r["map"].shape[1]), np.asarray(r["map"], dtype=np.float16).tobytes(), now,
                    )
                    for r in rows
                ],
            )

    def cam_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT sample_id FROM cams")}

    def get_cam(self, sample_id: str) -> dict | None:
        row = self._conn.execute(
            "SELECT sample_id, method, prediction, confidence, target, top_classes, top_probs, width, height, "
            "map_h, map_w, map FROM cams WHERE sample_id = ?",
            (sample_id,),
        ).fetchone()
        if row is None:
            return None
        raw = np.frombuffer(row[11], dtype=np.float16).reshape(row[9], row[10]).astype(np.float32)
        return {
            "id": row[0], "method": row[1], "prediction": row[2], "confidence": row[3], "target": row[4],
            "top_classes": json.loads(row[5]), "top_probs": json.loads(row[6]), "image_size": (row[7], row[8]),
            "map": raw,
        }

    def cams(self) -> pd.DataFrame:
        """Predictions (without the maps)."""
        df = pd.read_sql_query(
            "SELECT sample_id AS id, method, prediction, confidence, target, top_classes, top_probs, width, height "
            "FROM cams",
            self._conn,
        )
        for col in ("top_classes", "top_probs"):
            df[col] = df[col].map(json.loads)
        return df

    # ------------------------------------------------------------------ previews
    def put_preview(self, sample_id: str, image_png: bytes, object_mask: np.ndarray | None = None) -> None:
        """The working copy of a sample's image (what judges see) and its object mask, if any."""
        packed = shape = None
        if object_mask is not None:
            mask = np.asarray(object_mask, dtype=bool)
            packed, shape = np.packbits(mask).tobytes(), mask.shape
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO previews(sample_id, image, object_mask, mask_h, mask_w) VALUES (?,?,?,?,?)",
                (sample_id, image_png, packed, shape[0] if shape else None, shape[1] if shape else None),
            )

    def get_preview(self, sample_id: str) -> tuple[bytes, np.ndarray | None] | None:
        row = self._conn.execute(
            "SELECT image, object_mask, mask_h, mask_w FROM previews WHERE sample_id = ?", (sample_id,)
        ).fetchone()
        if row is None:
            return None
        mask = None
        if row[1] is not None:
            h, w = row[2], row[3]
            mask = np.unpackbits(np.frombuffer(row[1], np.uint8), count=h * w).reshape(h, w).astype(bool)
        return row[0], mask

    # ------------------------------------------------------------------ judgments
    def put_judgment(
        self, sample_id: str, judgment: Judgment, *, alpha: float, beta: float, cache_key: str, cached: bool,
        repeat: int = 0,
    ) -> None:
        """Store one answer; ``repeat`` k numbers the k-th answer to the same question (repeated sampling).
        An answer asked again (``retry_failed``) keeps what the one it replaces was billed: its tokens
        and requests are added, so usage and cost still count every paid request."""
        j = judgment
        with self._tx() as c:
            if not cached:
                billed = c.execute(
                    "SELECT input_tokens, output_tokens, requests FROM judgments WHERE sample_id=? AND judge_id=? "
                    "AND prompt_version=? AND alpha=? AND beta=? AND repeat=? AND cached=0 AND status IN ('ok', 'failed') "
                    "AND (COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)) > 0",
                    (sample_id, j.judge_id, j.prompt_version, float(alpha), float(beta), int(repeat))).fetchone()
                if billed is not None:
                    j = j.model_copy(update={"input_tokens": j.input_tokens + int(billed[0] or 0),
                                             "output_tokens": j.output_tokens + int(billed[1] or 0),
                                             "requests": j.requests + int(billed[2] or 1)})
            c.execute(
                "INSERT OR REPLACE INTO judgments(sample_id, judge_id, prompt_version, alpha, beta, cache_key, "
                "status, score, description, justification, error, raw, parse_path, input_tokens, output_tokens, "
                "latency_s, cached, created, truncated, repeat, requests) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    sample_id, j.judge_id, j.prompt_version, float(alpha), float(beta), cache_key, j.status, j.score,
                    j.description, j.justification, j.error, j.raw, j.parse_path, j.input_tokens, j.output_tokens,
                    j.latency_s, int(cached), time.time(), int(j.truncated), int(repeat), int(j.requests),
                ),
            )

    def judged_ids(self, judge_id: str, prompt_version: str, alpha: float, beta: float, *,
                   include_failed: bool = True, repeats: int = 1) -> set[str]:
        """Samples whose answers ``0 .. repeats-1`` are all finished."""
        done = self.judged_repeats(judge_id, prompt_version, alpha, beta, include_failed=include_failed)
        return {sid for sid, ks in done.items() if all(k in ks for k in range(repeats))}

    def judged_repeats(self, judge_id: str, prompt_version: str, alpha: float, beta: float, *,
                       include_failed: bool = True) -> dict[str, set[int]]:
        """Per sample, the repeat indices whose answer is finished."""
        sql = "SELECT sample_id, repeat FROM judgments WHERE judge_id=? AND prompt_version=? AND alpha=? AND beta=?"
        # a question that was never sent (run stopped, fatal reply) or refused (bad key) is not finished
        sql += " AND status = 'ok'" if not include_failed else " AND status NOT IN ('not_sent', 'rejected')"
        done: dict[str, set[int]] = {}
        for sid, k in self._conn.execute(sql, (judge_id, prompt_version, float(alpha), float(beta))):
            done.setdefault(sid, set()).add(int(k))
        return done

    def paid_tokens(self, judge_id: str) -> tuple[int, int]:
        """(input, output) tokens the judge's answers in this run were billed for, at every alpha,
        beta, prompt version and repeat (cache hits cost nothing)."""
        row = self._conn.execute("SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) "
                                 "FROM judgments WHERE judge_id=? AND cached=0", (judge_id,)).fetchone()
        return int(row[0]), int(row[1])

    def judgments(self, judge_id: str | None = None, prompt_version: str | None = None,
                  alpha: float | None = None, beta: float | None = None, repeat: int | None = None) -> pd.DataFrame:
        """Judgments, optionally filtered; one row per (sample, judge, prompt version, alpha, beta, repeat)."""
        clauses, params = [], []
        for col, val in (("judge_id", judge_id), ("prompt_version", prompt_version), ("alpha", alpha), ("beta", beta),
                         ("repeat", repeat)):
            if val is not None:
                clauses.append(f"{col} = ?")
                params.append(float(val) if col in ("alpha", "beta") else int(val) if col == "repeat" else val)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        df = pd.read_sql_query(f"SELECT * FROM judgments{where} ORDER BY created", self._conn, params=params)
        return df.rename(columns={"sample_id": "id", "status": "judge_status", "judge_id": "judge"})

    # ------------------------------------------------------------------ annotations
    def put_annotation(self, sample_id: str, annotator: str, score: float | None, accept: bool | None = None,
                       note: str | None = None) -> None:
        """Save (or update) one human answer; committed at once. ``None`` keeps a stored value."""
        if not annotator or not str(annotator).strip():
            raise ValueError("annotator: give a non-empty name")
        if score is not None and not 0 <= float(score) <= 5:
            raise ValueError(f"score: must be in 0..5, got {score!r}")
        with self._tx() as c:
            c.execute(
                "INSERT INTO annotations(sample_id, annotator, score, accept, note, created) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(sample_id, annotator) DO UPDATE SET score=COALESCE(excluded.score, score), "
                "accept=COALESCE(excluded.accept, accept), note=COALESCE(?, note), created=excluded.created",
                (sample_id, str(annotator).strip(), score, None if accept is None else int(bool(accept)), note or "",
                 time.time(), note),
            )

    def annotations(self, annotator: str | None = None) -> pd.DataFrame:
        sql = "SELECT sample_id, annotator, score, accept, note, created FROM annotations"
        params: tuple = ()
        if annotator is not None:
            sql += " WHERE annotator = ?"
            params = (annotator,)
        df = pd.read_sql_query(sql + " ORDER BY created", self._conn, params=params)
        df["accept"] = df["accept"].map(lambda v: None if pd.isna(v) else bool(v)).astype(object)
        return df
