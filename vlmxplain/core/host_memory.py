"""Host memory of long runs: glibc's malloc told to keep the blocks a forward pass frees, and
Python's collector kept off the objects that existed before the run.

A CNN forward pass on the CPU allocates and frees tensors of tens of megabytes per batch
(EfficientNet-Lite0 at batch 16: 77 MB for one expanded activation). With glibc's defaults, blocks
above the adaptive mmap threshold (at most 32 MiB, and any block a thread's own 64 MiB heap cannot
hold) are mapped fresh and unmapped on free, and the heap is trimmed back whenever its free top
exceeds the trim threshold, so every batch pays its page faults again: measured on the 2-core
development machine, 1.6 million minor faults and ~60 % of ``compute_cams``' time in the kernel for
256 photos. :func:`keep_freed_memory` raises both thresholds to 1 GiB and keeps every thread on the
main heap (``M_ARENA_MAX`` = 1), so freed blocks are reused: ``compute_cams`` 1.7-2.4x faster, a streaming
``explain`` with an offline judge 1.3-1.8x (``benchmarks/bench_host_memory.py``).
:func:`release_freed_memory` gives the free memory back to the system (``malloc_trim``) when a run
ends, so a notebook does not keep a run's peak.

Every thread that allocates gets a heap of its own (up to 8 per core), and the heaps a process has
stay. Tuned, one heap serves every thread; a process that already has several when vlmxplain enters
it (a Jupyter kernel's threads allocated first) is left alone: there its stage threads land on
small side heaps that cannot hold a batch's blocks, and raised thresholds only cost (the offline
``explain`` measured 0.91x of glibc's default). Such a process gets the tuning from the environment
it starts in (``MALLOC_ARENA_MAX=1 jupyter lab``; :func:`child_environment` adds it for the kernels
the CLI starts), and :func:`why_not_tuned` says so.

Only glibc (Linux) is tuned; elsewhere all of this is a no-op. An option whose ``MALLOC_*``
variable the environment sets keeps the environment's value; nothing is changed with
``VLMX_MALLOC=default``, with glibc malloc tunables in ``GLIBC_TUNABLES``, or when another allocator
is preloaded (jemalloc, tcmalloc, mimalloc).

On any platform and device, Python's cyclic collector is kept off the objects that exist when a
run starts (:func:`frozen_existing_objects`): a full collection walks every object of the process
(torch, the SDKs, a notebook's variables) with the GIL held, stalling every stage thread: one took
0.48 s in a 320-image VLM run of 11 s, its judge's slots emptying meanwhile.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import platform
import re
import tempfile
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

log = logging.getLogger("vlmxplain.host_memory")
_lock = threading.Lock()
_tuned: bool | None = None  # None: not decided yet in this process


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - glibc reported but not loadable
        return None
    libc.fdopen.restype = ctypes.c_void_p  # a FILE*, for malloc_info
    return libc


def malloc_heaps() -> int | None:
    """How many heaps (arenas) glibc's malloc has in this process, from ``malloc_info``; ``None``
    without glibc."""
    libc = _glibc()
    if libc is None:
        return None
    with tempfile.TemporaryFile() as report:
        stream = libc.fdopen(os.dup(report.fileno()), b"w")
        if not stream:  # pragma: no cover - out of descriptors
            return None
        written = libc.malloc_info(0, ctypes.c_void_p(stream)) == 0
        libc.fclose(ctypes.c_void_p(stream))
        report.seek(0)
        return len(re.findall(rb"<heap nr=", report.read())) if written else None


def why_not_tuned(env: Mapping[str, str] | None = None) -> str | None:
    """Why :func:`keep_freed_memory` leaves malloc alone in a process with environment ``env``
    (default: this process, whose heaps are counted too); ``None`` when it tunes it."""
    reason = _left_alone(os.environ if env is None else env)
    heaps = malloc_heaps() if reason is None and env is None else None
    if heaps is not None and heaps > 1:
        return (f"malloc has {heaps} heaps already (threads allocated before vlmxplain): start the "
                f"process with MALLOC_ARENA_MAX=1 to have it tuned")
    return reason


def _left_alone(env: Mapping[str, str]) -> str | None:
    """Why the environment ``env`` asks for malloc as it is, or why it cannot be tuned."""
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
            reason = why_not_tuned()
            if reason is not None:
                log.info("glibc malloc left as it is: %s", reason)
            libc = None if reason else _glibc()
            _tuned = libc is not None and all(libc.mallopt(option, value) == 1
                                              for option, value, env in _OPTIONS if env not in os.environ)
        return _tuned


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a Python process that will run vlmxplain, such as a
    notebook kernel: with ``MALLOC_ARENA_MAX=1`` unless the environment sets it or malloc is left
    alone. A kernel's threads have allocated, each on a heap of its own, before vlmxplain is
    imported, so only the environment can keep them on one heap (and have the process tuned)."""
    out = dict(os.environ if env is None else env)
    if _left_alone(out) is None:
        out.setdefault("MALLOC_ARENA_MAX", "1")
    return out


def keep_freed_memory_on(device: object) -> bool:
    """:func:`keep_freed_memory` when ``device`` (a torch device or its name) is the CPU."""
    return str(device).split(":")[0] == "cpu" and keep_freed_memory()


def release_freed_memory() -> None:
    """Return the free heap memory to the system (glibc's ``malloc_trim``): a run's peak is not
    kept once it ends (on every heap, tuned or not). A no-op without glibc or with
    ``VLMX_MALLOC=default``."""
    if _left_alone(os.environ) is None:
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


_freeze_lock = threading.Lock()
_freeze_depth = 0  # runs inside frozen_existing_objects now, in all threads
_froze = False  # whether the outermost of them froze (and so unfreezes)


@contextlib.contextmanager
def frozen_existing_objects() -> Iterator[None]:
    """A block during which the objects that exist when it starts are out of the cyclic garbage
    collector's reach (``gc.freeze``), so a full collection scans only what the block created;
    they are handed back (``gc.unfreeze``) when the last such block ends. Left alone when the
    collector is disabled or the program froze objects itself."""
    global _freeze_depth, _froze
    with _freeze_lock:
        if _freeze_depth == 0:
            _froze = gc.isenabled() and gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
        _freeze_depth += 1
    try:
        yield
    finally:
        with _freeze_lock:
            _freeze_depth -= 1
            if _freeze_depth == 0 and _froze:
                gc.unfreeze()
                _froze = False
