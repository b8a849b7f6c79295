"""One process at a time per run directory (an exclusive ``flock``)."""
from __future__ import annotations

import fcntl
import os
import socket
import threading
from pathlib import Path
from typing import Any

LOCK_FILE = "run.lock"


class RunLock:
    """One process at a time works on a run directory: an exclusive ``flock`` on
    ``<run_dir>/run.lock``, released when the work ends or the process dies (no stale locks).
    Re-entrant within a process. A second process gets :class:`RunDirBusy` at once."""

    _held: dict[str, list] = {}
    _guard = threading.Lock()

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.key = str(self.path.resolve())
        self._released = False
        with self._guard:
            held = self._held.get(self.key)
            if held is not None:
                held[1] += 1
                return
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise PermissionError(f"run_dir: cannot work in {Path(run_dir)} ({err.strerror or err}); a read-only "
                                      "run can be opened with open_run(), not added to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise RunDirBusy(f"run_dir: {Path(run_dir)} is in use by {owner}; wait for it to finish or use "
                                 "another run_dir (two runs on one folder would do all the work twice)") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
            self._held[self.key] = [fd, 1]

    def release(self) -> None:
        with self._guard:
            if self._released:
                return
            self._released = True
            held = self._held.get(self.key)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del self._held[self.key]
                os.close(held[0])  # closing the descriptor drops the flock

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


class RunDirBusy(RuntimeError):
    """Another process is working on the run directory."""
