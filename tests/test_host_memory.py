"""glibc's malloc kept from unmapping the blocks CPU tensor work frees (vlmxplain.core.host_memory).

Each measurement runs in a fresh Python process: the tuning is process-wide and, for the number of
heaps, only counts before the process has threads.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from vlmxplain.core import host_memory
from vlmxplain.core.host_memory import child_environment, why_not_tuned

glibc_only = pytest.mark.skipif(why_not_tuned({}) is not None, reason="malloc is tuned on glibc only")

PASSES = 40
CHILD = textwrap.dedent("""
    import json, os, resource, sys, threading
    if sys.argv[2] == "threads-first":  # like a Jupyter kernel: threads that allocated before vlmxplain
        __import__("kernel_like").start_allocating_threads()
    import torch
    from vlmxplain.core import host_memory

    tuned, reason = host_memory.keep_freed_memory(), host_memory.why_not_tuned()
    faults = {}

    def churn():  # a forward pass's pattern: a large block allocated, written and freed, again and again
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(int(sys.argv[1])):
            block = torch.ones(24 << 20)  # 96 MB of float32 (torch asks for no huge pages)
            del block
        faults["churn"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    worker = threading.Thread(target=churn)  # a stage thread, started after the tuning
    worker.start(); worker.join()

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    block = torch.ones(100 << 20)  # 400 MB
    del block
    held = rss()
    host_memory.release_freed_memory()
    print(json.dumps({"tuned": tuned, "reason": reason, "heaps": host_memory.malloc_heaps(), "faults": faults["churn"], "held": held, "released": held - rss()}))
""")


def child(mode: str = "plain", **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != host_memory.ENV}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(__file__), clean.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", CHILD, str(PASSES), mode], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_blocks_are_reused_in_stage_threads_and_given_back_when_the_run_ends():
    tuned, default = child(), child(**{host_memory.ENV: "default"})
    assert tuned["tuned"] is True and default["tuned"] is False
    assert tuned["heaps"] == 1 and tuned["reason"] is None  # the stage thread allocated on the main heap
    pages = (96 << 20) // os.sysconf("SC_PAGE_SIZE")  # one block's first touch
    # glibc's default maps every 96 MB block afresh: each pass faults all of its pages in again
    assert default["faults"] > 0.9 * PASSES * pages
    # tuned, the thread reuses freed blocks: once the heap holds a few (aligned blocks fragment
    # it a little: 8 on glibc 2.36), no pass faults any more
    assert tuned["faults"] < default["faults"] / 3, (tuned, default)
    # the 400 MB freed at the end stays with a tuned process until the run releases it
    assert tuned["released"] > 300 << 20, tuned


@glibc_only
def test_a_process_whose_threads_allocated_first_is_left_alone_unless_its_environment_sets_one_heap():
    # the stage threads of such a process land on side heaps too small for a batch's blocks, where
    # raised thresholds measured slower than glibc's default: nothing is changed, and it says why
    kernel_like = child("threads-first")
    assert kernel_like["tuned"] is False and kernel_like["heaps"] > 1
    assert re.match(r"malloc has [2-9]\d* heaps already", kernel_like["reason"]), kernel_like
    assert "MALLOC_ARENA_MAX=1" in kernel_like["reason"]
    started_on_one_heap = child("threads-first", MALLOC_ARENA_MAX="1")  # `MALLOC_ARENA_MAX=1 jupyter lab`
    assert started_on_one_heap["tuned"] is True and started_on_one_heap["heaps"] == 1
    assert started_on_one_heap["faults"] < kernel_like["faults"] / 3, (started_on_one_heap, kernel_like)


def test_what_the_user_set_is_left_alone():
    assert why_not_tuned({host_memory.ENV: "default"}) == "VLMX_MALLOC=default"
    assert "tunables" in why_not_tuned({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"})
    assert why_not_tuned({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}) == "jemalloc is preloaded"
    if why_not_tuned({}) is None:  # glibc
        assert child_environment({"PATH": "/bin"}) == {"PATH": "/bin", "MALLOC_ARENA_MAX": "1"}
    assert child_environment({"MALLOC_ARENA_MAX": "4"})["MALLOC_ARENA_MAX"] == "4"
    assert "MALLOC_ARENA_MAX" not in child_environment({host_memory.ENV: "default"})
    assert "MALLOC_ARENA_MAX" not in child_environment({"LD_PRELOAD": "libtcmalloc.so"})


@glibc_only
def test_the_clis_kernels_start_on_one_malloc_heap(tmp_path):
    from vlmxplain.cli import _ipc_kernel_manager

    manager = _ipc_kernel_manager(tmp_path)(kernel_name="python3")
    _, launch = asyncio.run(manager._async_pre_start_kernel())
    assert launch["env"]["MALLOC_ARENA_MAX"] == "1"
    assert launch["env"]["PATH"] == os.environ["PATH"]  # the rest of the environment is passed on


def test_a_run_keeps_the_collector_off_the_objects_that_existed_before_it(tiny_clf, tmp_path):
    import gc

    import vlmxplain as vx

    seen: list[int] = []  # the frozen objects' count at every collection during the run

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(gc.get_freeze_count())

    before = len(gc.get_objects())
    thresholds = gc.get_threshold()
    gc.set_threshold(100, *thresholds[1:])  # young collections every 100 allocations: many during the run
    gc.callbacks.append(record)
    try:
        vx.explain(tiny_clf, vx.datasets.shapes(12, seed=3), judge="offline:groundtruth", run_dir=tmp_path / "a",
                   progress=False, verbose=False)
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*thresholds)
    assert seen, "no collection ran during the run: the test cannot tell"
    # a collection during the run left out at least every object that existed before it...
    assert max(seen) >= before * 0.9, (max(seen), before)
    assert gc.get_freeze_count() == 0  # ...and they are all the collector's again afterwards

    def collected(obj: object) -> bool:  # in a generation the collector scans (not frozen)
        return any(o is obj for o in gc.get_objects())

    mine = [["a program's own object"]]
    assert collected(mine)
    gc.freeze()  # a program that froze objects itself keeps its own freeze
    try:
        vx.explain(tiny_clf, vx.datasets.shapes(4, seed=4), judge="offline:groundtruth", run_dir=tmp_path / "b",
                   progress=False, verbose=False)
        assert gc.get_freeze_count() > 0 and not collected(mine)
    finally:
        gc.unfreeze()
    assert collected(mine)


def test_nested_and_concurrent_blocks_unfreeze_once_the_last_ends():
    import gc
    import threading

    from vlmxplain.core.host_memory import frozen_existing_objects

    entered, outer_may_end = threading.Event(), threading.Event()

    def other_run():
        with frozen_existing_objects():
            entered.set()
            outer_may_end.wait(10)

    with frozen_existing_objects():
        assert gc.get_freeze_count() > 0
        worker = threading.Thread(target=other_run)
        worker.start()
        assert entered.wait(10)  # the other run is inside its block before this one ends
        with frozen_existing_objects():
            pass
        assert gc.get_freeze_count() > 0  # the inner block ending changed nothing
    assert gc.get_freeze_count() > 0  # another thread's run is still going
    outer_may_end.set()
    worker.join()
    assert gc.get_freeze_count() == 0
