"""Host memory of CPU runs: glibc's malloc told to keep the blocks a forward pass frees.

A CNN forward pass on the CPU allocates and frees tensors of tens of megabytes per batch
(EfficientNet-Lite0 at batch 16: 77 MB for one expanded activation). With glibc's defaults, blocks
above the adaptive mmap threshold (at most 32 MiB, and any block a thread's own 64 MiB heap cannot
hold) are mapped fresh and unmapped on free, and the heap is trimmed back whenever its free top
exceeds the trim threshold, so every batch pays its page faults again: measured on the 2-core
development machine, 1.6 million minor faults and ~60 % of ``compute_cams``' time in the kernel for
256 photos. :func:`keep_freed_memory` raises both thresholds to 1 GiB and keeps every thread on the
main heap (``M_ARENA_MAX`` = 1), so freed blocks are reused: ``compute_cams`` 1.7x faster, a streaming
``explain`` with an offline judge 1.3x (``benchmarks/bench_host_memory.py``).
:func:`release_freed_memory` gives the free memory back to the system (``malloc_trim``) when a run
ends, so a notebook does not keep a run's peak.

glibc fixes its number of heaps when a second thread first allocates, so ``M_ARENA_MAX`` set from
Python only counts in a process that vlmxplain enters before it has threads (a script, the CLI's
kernels); a Jupyter kernel has them already, and gets it from the environment it starts in
(``MALLOC_ARENA_MAX=1 jupyter lab``; :func:`child_environment` adds it for the kernels the CLI starts).

Only glibc (Linux) is tuned; elsewhere all of this is a no-op. An option whose ``MALLOC_*``
variable the environment sets keeps the environment's value; nothing is changed with
``VLMX_MALLOC=default``, with glibc malloc tunables in ``GLIBC_TUNABLES``, or when another allocator
is preloaded (jemalloc, tcmalloc, mimalloc).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
import threading
from functools import lru_cache
from typing import Iterator, Mapping

ENV = "VLMX_MALLOC"
#: the mmap and trim thresholds while tuned: blocks below it come from (and return to) the heap
KEEP_BYTES = 1 << 30
#: mallopt options set, each unless the environment sets glibc's own variable for it
_OPTIONS = ((-3, KEEP_BYTES, "MALLOC_MMAP_THRESHOLD_"), (-1, KEEP_BYTES, "MALLOC_TRIM_THRESHOLD_"),
            (-8, 1, "MALLOC_ARENA_MAX"))
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_tuned: bool | None = None  # None: not decided yet in this process


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - glibc reported but not loadable
        return None


def why_not_tuned(env: Mapping[str, str] | None = None) -> str | None:
    """Why :func:`keep_freed_memory` leaves malloc alone in a process with environment ``env``
    (default: this one's); ``None`` when it tunes it."""
    env = os.environ if env is None else env
    if env.get(ENV, "").strip().lower() == "default":
        return f"{ENV}=default"
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return "the environment sets glibc.malloc tunables"
    other = [name for name in _OTHER_ALLOCATORS if name in env.get("LD_PRELOAD", "")]
    if other:
        return f"{other[0]} is preloaded"
    if _glibc() is None:
        return "the C library is not glibc"
    return None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for CPU tensor work, once per process (see the module docstring); an
    option whose ``MALLOC_*`` variable the environment sets keeps the environment's value. Call it
    before the threads that compute start. Returns whether malloc is tuned."""
    global _tuned
    with _lock:
        if _tuned is None:
            libc = None if why_not_tuned() else _glibc()
            _tuned = libc is not None and all(libc.mallopt(option, value) == 1
                                              for option, value, env in _OPTIONS if env not in os.environ)
        return _tuned


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a Python process that will run vlmxplain, such as a
    notebook kernel: with ``MALLOC_ARENA_MAX=1`` unless the environment sets it or malloc is left
    alone. glibc fixes its number of heaps when a second thread first allocates, and a kernel has
    its threads before vlmxplain is imported, so only the environment can keep them on one heap."""
    out = dict(os.environ if env is None else env)
    if why_not_tuned(out) is None:
        out.setdefault("MALLOC_ARENA_MAX", "1")
    return out


def keep_freed_memory_on(device: object) -> bool:
    """:func:`keep_freed_memory` when ``device`` (a torch device or its name) is the CPU."""
    return str(device).split(":")[0] == "cpu" and keep_freed_memory()


def release_freed_memory() -> None:
    """Return the free heap memory to the system (glibc's ``malloc_trim``): a run's peak is not
    kept once it ends. A no-op without glibc or with ``VLMX_MALLOC=default``."""
    if why_not_tuned() is None:
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)


@contextlib.contextmanager
def releasing_freed_memory() -> Iterator[None]:
    """A block after which :func:`release_freed_memory` runs, however it ends."""
    try:
        yield
    finally:
        release_freed_memory()
