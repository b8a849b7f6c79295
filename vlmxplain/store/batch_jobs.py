"""Provider batch jobs of a run (``openai-batch:``/``gemini-batch:`` judges), beside its judgments.

``batch_jobs`` has one row per submission: its local nonce (written *before* the job is created,
and sent with it as metadata / display name), the provider's job id once known, the judge, prompt
version, alpha and beta it answers, its state and times. ``batch_requests`` maps each request's
``custom_id`` to its sample, answer index (``repeat``, repeated sampling) and cache key, with the
request's own state:

- job states: ``intent`` (nonce recorded, creation not confirmed) → ``submitted`` (the provider has
  it) → ``completed`` / ``expired`` / ``failed`` / ``cancelled`` once its results are ingested;
  ``abandoned``: the provider never created it (its samples are pending again);
- request states: ``in_flight`` → ``judged`` / ``failed`` (answered: a judgment is stored) or
  ``resubmit`` (the job ended without an answer: the sample is pending again) / ``dropped``.

A sample is *in flight* while one of its requests is ``in_flight`` in an ``intent`` or
``submitted`` job: it is never submitted again then.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from .migrate import ensure_tables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    nonce TEXT PRIMARY KEY, provider TEXT NOT NULL, job_id TEXT, judge_id TEXT NOT NULL,
    prompt_version TEXT NOT NULL, alpha REAL NOT NULL, beta REAL NOT NULL, state TEXT NOT NULL,
    provider_state TEXT, n_requests INTEGER NOT NULL, error TEXT, adopted INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, submitted REAL, updated REAL, finished REAL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    custom_id TEXT PRIMARY KEY, nonce TEXT NOT NULL, sample_id TEXT NOT NULL, repeat INTEGER NOT NULL DEFAULT 0,
    cache_key TEXT NOT NULL, state TEXT NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS batch_requests_nonce ON batch_requests(nonce);
CREATE INDEX IF NOT EXISTS batch_requests_sample ON batch_requests(sample_id, state)
"""
OPEN = ("intent", "submitted")


@dataclass(frozen=True)
class BatchJob:
    nonce: str
    provider: str
    job_id: str | None
    judge_id: str
    prompt_version: str
    alpha: float
    beta: float
    state: str
    n_requests: int
    created: float


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str
    sample_id: str
    repeat: int
    cache_key: str
    state: str


class BatchJobs:
    """The batch-job tables of a :class:`~vlmxplain.store.RunStore` (added on first use)."""

    def __init__(self, store, *, create: bool = True) -> None:
        self.store = store
        c = store._conn
        if not create or getattr(store, "readonly", False):  # never written: without the tables it has no jobs
            self.exists = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'batch_jobs'").fetchone() is not None
        else:
            self.exists = ensure_tables(c, _SCHEMA, "batch_jobs")

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.store._conn.execute(sql, params).fetchall() if self.exists else []

    # -- writes (each one transaction) ------------------------------------------------------
    def add_intent(self, nonce: str, provider: str, judge_id: str, prompt_version: str, alpha: float, beta: float,
                   requests: Iterable[tuple[str, str, int, str]]) -> None:
        """Record a submission before the job is created: its nonce and ``(custom_id, sample_id,
        repeat, cache_key)`` of every request it carries."""
        rows = list(requests)
        with self.store._tx() as c:
            c.execute("INSERT INTO batch_jobs(nonce, provider, judge_id, prompt_version, alpha, beta, state, n_requests, "
                      "created) VALUES (?,?,?,?,?,?,?,?,?)",
                      (nonce, provider, judge_id, prompt_version, float(alpha), float(beta), "intent", len(rows),
                       time.time()))
            c.executemany("INSERT INTO batch_requests(custom_id, nonce, sample_id, repeat, cache_key, state) "
                          "VALUES (?,?,?,?,?,?)", [(cid, nonce, sid, int(k), key, "in_flight") for cid, sid, k, key in rows])

    def set_submitted(self, nonce: str, job_id: str, *, adopted: bool = False) -> None:
        now = time.time()
        with self.store._tx() as c:
            c.execute("UPDATE batch_jobs SET job_id = ?, state = 'submitted', adopted = ?, submitted = ?, updated = ? "
                      "WHERE nonce = ?", (job_id, int(adopted), now, now, nonce))

    def abandon(self, nonce: str, reason: str) -> None:
        """The provider never created the job: its samples are pending again."""
        with self.store._tx() as c:
            c.execute("UPDATE batch_jobs SET state = 'abandoned', error = ?, finished = ? WHERE nonce = ?",
                      (reason, time.time(), nonce))
            c.execute("UPDATE batch_requests SET state = 'dropped', error = ? WHERE nonce = ? AND state = 'in_flight'",
                      (reason, nonce))

    def set_polled(self, nonce: str, provider_state: str, error: str = "") -> None:
        with self.store._tx() as c:
            c.execute("UPDATE batch_jobs SET provider_state = ?, error = COALESCE(NULLIF(?, ''), error), updated = ? "
                      "WHERE nonce = ?", (provider_state, error, time.time(), nonce))

    def mark(self, custom_id: str, state: str, error: str | None = None) -> None:
        with self.store._tx() as c:
            c.execute("UPDATE batch_requests SET state = ?, error = ? WHERE custom_id = ?", (state, error, custom_id))

    def finish(self, nonce: str, state: str, unanswered: str, reason: str) -> None:
        """The job's results are ingested: requests still in flight become ``unanswered``
        (``resubmit`` or ``failed``) with ``reason``; the job gets its final ``state``."""
        now = time.time()
        with self.store._tx() as c:
            c.execute("UPDATE batch_requests SET state = ?, error = ? WHERE nonce = ? AND state = 'in_flight'",
                      (unanswered, reason, nonce))
            c.execute("UPDATE batch_jobs SET state = ?, finished = ?, updated = ? WHERE nonce = ?",
                      (state, now, now, nonce))

    # -- reads --------------------------------------------------------------------------------
    def open_jobs(self) -> list[BatchJob]:
        """Jobs not yet ingested (``intent`` or ``submitted``), oldest first."""
        rows = self._rows("SELECT nonce, provider, job_id, judge_id, prompt_version, alpha, beta, state, n_requests, "
                          "created FROM batch_jobs WHERE state IN ('intent', 'submitted') ORDER BY created")
        return [BatchJob(*r) for r in rows]

    def requests(self, nonce: str) -> dict[str, BatchRequest]:
        rows = self._rows("SELECT custom_id, sample_id, repeat, cache_key, state FROM batch_requests WHERE nonce = ?",
                          (nonce,))
        return {r[0]: BatchRequest(*r) for r in rows}

    def in_flight_repeats(self, judge_id: str, prompt_version: str, alpha: float,
                          beta: float) -> dict[str, set[int]]:
        """Per sample, the answers (repeat indices) of this judge/alpha/beta carried by a job not
        yet ingested: never submitted again."""
        rows = self._rows(
            "SELECT r.sample_id, r.repeat FROM batch_requests r JOIN batch_jobs j ON j.nonce = r.nonce WHERE r.state = "
            "'in_flight' AND j.state IN ('intent', 'submitted') AND j.judge_id = ? AND j.prompt_version = ? "
            "AND j.alpha = ? AND j.beta = ?", (judge_id, prompt_version, float(alpha), float(beta)))
        out: dict[str, set[int]] = {}
        for sid, k in rows:
            out.setdefault(sid, set()).add(int(k))
        return out

    def in_flight_count(self, judge_id: str) -> int:
        """Requests of this judge (any prompt version, alpha or beta) in jobs not yet ingested."""
        rows = self._rows("SELECT COUNT(*) FROM batch_requests r JOIN batch_jobs j ON j.nonce = r.nonce WHERE "
                          "r.state = 'in_flight' AND j.state IN ('intent', 'submitted') AND j.judge_id = ?", (judge_id,))
        return int(rows[0][0]) if rows else 0

    def repeats(self, judge_id: str, prompt_version: str) -> int:
        """How many answers per sample this judge's jobs asked for (1 without jobs)."""
        rows = self._rows("SELECT MAX(r.repeat) FROM batch_requests r JOIN batch_jobs j ON j.nonce = r.nonce "
                          "WHERE j.judge_id = ? AND j.prompt_version = ?", (judge_id, prompt_version))
        return 1 if not rows or rows[0][0] is None else int(rows[0][0]) + 1

    def table(self) -> pd.DataFrame:
        """One row per job, with its requests counted by state."""
        cols = ["nonce", "provider", "job_id", "judge_id", "alpha", "beta", "state", "provider_state", "n_requests",
                "adopted", "error", "created", "submitted", "finished"]
        if not self.exists:
            return pd.DataFrame(columns=cols + ["in_flight", "judged", "failed", "resubmit"])
        jobs = pd.read_sql_query(f"SELECT {', '.join(cols)} FROM batch_jobs ORDER BY created", self.store._conn)
        counts = pd.read_sql_query("SELECT nonce, state, COUNT(*) AS n FROM batch_requests GROUP BY nonce, state",
                                   self.store._conn).pivot_table(index="nonce", columns="state", values="n",
                                                                 fill_value=0)
        for state in ("in_flight", "judged", "failed", "resubmit"):
            jobs[state] = jobs["nonce"].map(counts[state] if state in counts else {}).fillna(0).astype(int)
        jobs["adopted"] = jobs["adopted"].astype(bool)
        return jobs

    def submissions(self, sample_id: str) -> int:
        """How many jobs carried ``sample_id`` (abandoned intents excluded: they never reached the provider)."""
        rows = self._rows("SELECT COUNT(*) FROM batch_requests WHERE sample_id = ? AND state != 'dropped'", (sample_id,))
        return int(rows[0][0]) if rows else 0
