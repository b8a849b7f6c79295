"""SQLite connections for the stores: every error names its file; read-only and WAL modes."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote


class RunStoreError(ValueError):
    """A run store that cannot be used as it is (foreign, damaged, newer, deleted); names its file."""


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _with_path(err: sqlite3.Error, path: Path) -> sqlite3.Error:
    """The same kind of error, its message prefixed with the database file it concerns."""
    if str(path) in str(err):
        return err
    new = type(err)(f"{path}: {err}")
    new.__cause__ = err
    return new


class _PathCursor(sqlite3.Cursor):
    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(*args)
        except sqlite3.Error as err:
            raise _with_path(err, self.connection.path) from err  # type: ignore[attr-defined]

    def executemany(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(*args)
        except sqlite3.Error as err:
            raise _with_path(err, self.connection.path) from err  # type: ignore[attr-defined]


class _PathConnection(sqlite3.Connection):
    """A connection whose every error names its database file (pandas queries included)."""

    path: Path

    def cursor(self, factory: Any = _PathCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(*args)

    def executescript(self, script: str) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executescript(script)
        except sqlite3.Error as err:
            raise _with_path(err, self.path) from err


def connect(path: Path, *, readonly: bool = False, wal: bool = True) -> sqlite3.Connection:
    """Open a SQLite file (``wal``: switch it to WAL mode; ``readonly``: nothing is ever written)."""
    path = Path(path)
    try:
        if readonly:
            # immutable unless a write-ahead log holds results not yet in the main file (killed run)
            wal = path.with_name(path.name + "-wal")
            flags = "mode=ro" if wal.is_file() and wal.stat().st_size > 0 else "mode=ro&immutable=1"
            uri = f"file:{quote(str(path.resolve()))}?{flags}"
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False,
                                   factory=_PathConnection)
        else:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False,
                                   factory=_PathConnection)
    except sqlite3.Error as err:
        raise _with_path(err, path) from err
    conn.path = path  # type: ignore[attr-defined]
    if wal and not readonly:
        _use_wal(conn)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise RunStoreError(f"run_dir: cannot read {path}: {err.strerror or err}") from err
    if head != _SQLITE_MAGIC:
        raise RunStoreError(f"run_dir: {path} is not a SQLite file (damaged, or not a vlmxplain run store); it was "
                            "not modified")
