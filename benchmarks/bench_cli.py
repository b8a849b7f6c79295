"""CLI fail-fast: a bad parameter refused before any kernel, against the same mistake found by
the notebook's own check after papermill starts a kernel (the behaviour before the CLI checked).

Times, side by side in one run, ``vlmxplain run pipeline -p <bad>`` as a subprocess (the whole
command: interpreter start, parameter model, one-line error) and ``papermill``-executing the
pipeline notebook with the same bad value (kernel start, imports, the failing first cell).
Prints the medians and their ratio; exit status 1 if the CLI takes 3 s or more.

    python benchmarks/bench_cli.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAD = [("threshold", "7"), ("betta", "0.5"), ("classifier", "resnet999"), ("data", "shapes:n=abc")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cli = {}
    for name, value in BAD:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "vlmxplain.cli", "run", "pipeline", "-p", name, value],
                                  capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - t0)
            assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        cli[name] = statistics.median(times)

    import papermill as pm

    from vlmxplain.cli import find_notebook

    kernel = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(str(find_notebook("pipeline")), str(Path(tmp) / "out.ipynb"),
                                    parameters={"threshold": 7}, progress_bar=False, kernel_name="python3")
            except pm.PapermillExecutionError:
                pass
            kernel.append(time.perf_counter() - t0)
    in_kernel = statistics.median(kernel)
    print(f"{'bad parameter':<14} {'CLI check (s)':>14}")
    for name, seconds in cli.items():
        print(f"{name:<14} {seconds:>14.2f}")
    worst = max(cli.values())
    print(f"same mistake found in the kernel: {in_kernel:.2f} s; CLI ÷ kernel = {worst / in_kernel:.2f} (worst case)")
    return 0 if worst < 3.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
