"""A process's threads allocating before vlmxplain is imported, as a Jupyter kernel's do (its
heartbeat, IOPub and control threads): glibc then has several malloc heaps. Used by the
subprocesses of tests/test_host_memory.py and benchmarks/bench_host_memory.py."""
from __future__ import annotations

import threading
import time


def start_allocating_threads(n: int = 4) -> threading.Event:
    """Start ``n`` daemon threads that allocate and then wait; set the returned event to end them."""
    hold = threading.Event()

    def kernel_thread() -> None:
        buffers = [bytearray(1 << 16) for _ in range(16)]  # noqa: F841 - held until the event
        hold.wait()

    for _ in range(n):
        threading.Thread(target=kernel_thread, daemon=True).start()
    time.sleep(0.2)  # every thread has allocated
    return hold
