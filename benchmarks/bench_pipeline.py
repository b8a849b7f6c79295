"""Offline pipeline cost at two dataset sizes: peak memory must stay flat in N, and a rerun of a
finished run must cost next to nothing.

Each size runs in a fresh subprocess (so peak RSS is its own): explain() on N shapes images with
a trained ShapesNet and the offline ground-truth judge, then the same call again (a rerun).

    python benchmarks/bench_pipeline.py [--sizes 500 5000]
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time, os
os.environ["TQDM_DISABLE"] = "1"
import torch
import vlmxplain as vx
from vlmxplain.models import shapes_model
n, run_dir, cache = int(sys.argv[1]), sys.argv[2], sys.argv[3]
clf = shapes_model({"seed": 1000}, progress=False)
data = vx.datasets.shapes(n, seed=0)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
run = vx.explain(clf, data, judge="offline:groundtruth", run_dir=run_dir, cache=cache, progress=False, verbose=False)
t1 = time.perf_counter()
again = vx.explain(clf, data, judge="offline:groundtruth", run_dir=run_dir, cache=cache, progress=False, verbose=False)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "seconds": t1 - t0, "rerun_seconds": t2 - t1, "peak_mb": peak / 1024,
                  "before_mb": rss0 / 1024, "judged": run.last_summary.judged,
                  "rerun_judged": again.last_summary.judged, "rerun_cams": again.last_summary.cams_computed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(n), f"{tmp}/run", f"{tmp}/cache.sqlite"],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"{'N':>6} {'ms/img':>8} {'peak MB':>8} {'Δ MB':>7} {'rerun s':>8} {'rerun work':>11}")
    for r in rows:
        print(f"{r['n']:>6} {1000 * r['seconds'] / r['n']:8.2f} {r['peak_mb']:8.0f} "
              f"{r['peak_mb'] - r['before_mb']:7.0f} {r['rerun_seconds']:8.2f} "
              f"{r['rerun_judged'] + r['rerun_cams']:>11}")
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        print(f"peak memory {large['n']} vs {small['n']}: {large['peak_mb'] / small['peak_mb']:.2f}x "
              f"(flat = 1.0); rerun of {large['n']}: {large['rerun_seconds']:.2f} s "
              f"({100 * large['rerun_seconds'] / large['seconds']:.1f}% of the first run)")


if __name__ == "__main__":
    main()
