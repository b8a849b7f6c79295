"""glibc's malloc tuned for CPU runs vs left as it is (vlmxplain.core.host_memory), side by side.

Each row is a fresh process on the same 256 JPEG photos (500×375, EfficientNet-Lite0, GradCAM):
``compute_cams`` img/s with its minor page faults, then ``explain`` with ``offline:faithfulness``
and with a zero-latency loopback VLM judge (img/s), the peak RSS and the RSS once the runs ended.

- tuned: the default;
- default malloc: ``VLMX_MALLOC=default`` (glibc as it is);
- threads first: four threads allocate before vlmxplain is imported, as in a Jupyter kernel, so
  glibc has several heaps and vlmxplain leaves malloc alone; and the same with ``MALLOC_ARENA_MAX=1``
  in the environment (what the README advises for Jupyter), which keeps one heap and is tuned.

    python benchmarks/bench_host_memory.py [--photos 256] [--rounds 2]

The rows run in alternating rounds; each img/s figure is a row's best round (a slow moment of the
machine never decides a comparison), memory figures are from its last round.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, resource, sys, time
if sys.argv[2] == "threads-first":  # like a Jupyter kernel: threads that allocated before vlmxplain
    __import__("kernel_like").start_allocating_threads()
os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-loopback")
import vlmxplain as vx
from loopback_server import loopback_subprocess

clf = vx.load_classifier("efficientnet_lite0", device="cpu")
data = vx.datasets.folder(sys.argv[1], classes="imagenet")
images = [data[i].image for i in range(len(data))]
vx.compute_cams(clf, images[:16])

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

from vlmxplain.core import host_memory
out = {"n": len(images), "tuned": host_memory.keep_freed_memory()}
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t0 = time.perf_counter()
vx.compute_cams(clf, images, batch_size=16)
out["compute_cams"] = len(images) / (time.perf_counter() - t0)
out["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
with loopback_subprocess(0.0) as (url, _), __import__("tempfile").TemporaryDirectory() as tmp:
    for label, judge, options in [("faithfulness", "offline:faithfulness", None),
                                  ("loopback VLM", "openai:gpt-4o-mini", {"base_url": url + "/v1", "concurrency": 16})]:
        t0 = time.perf_counter()
        vx.explain(clf, data, judge=judge, judge_options=options, run_dir=f"{tmp}/{label}", cache=False,
                   progress=False, verbose=False)
        out[label] = len(images) / (time.perf_counter() - t0)
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["after_mb"] = rss_mb()
print(json.dumps(out))
"""

ROWS = [("tuned", {}, "plain"), ("default malloc", {"VLMX_MALLOC": "default"}, "plain"),
        ("threads first", {}, "threads-first"),
        ("threads first + MALLOC_ARENA_MAX=1", {"MALLOC_ARENA_MAX": "1"}, "threads-first")]


def measure(folder: Path, env: dict, mode: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "VLMX_MALLOC"}
    clean["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE.parent / "tests")])
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), mode], env={**clean, **env},
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_streaming import photo_folder

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}, {platform.libc_ver()[0]} {platform.libc_ver()[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_folder(Path(tmp), args.photos)
        results: dict[str, dict] = {}
        for _ in range(args.rounds):
            for label, env, mode in ROWS:
                r, best = measure(folder, env, mode), results.get(label, {})
                results[label] = r | {k: max(r[k], best.get(k, 0)) for k in ("compute_cams", "faithfulness",
                                                                              "loopback VLM")}
    base = results["default malloc"]
    print(f"{args.photos} JPEG photos 500×375, EfficientNet-Lite0 GradCAM, each row a fresh process")
    print(f"{'':36s} {'tuned':>5s} {'compute_cams':>14s} {'faults':>10s} {'faithfulness':>13s} {'VLM':>8s} {'peak RSS':>9s} "
          f"{'after':>7s}")
    for label, r in results.items():
        print(f"{label:36s} {'yes' if r['tuned'] else 'no':>5s} {r['compute_cams']:8.1f} img/s {r['faults']:10d} {r['faithfulness']:7.1f} img/s "
              f"{r['loopback VLM']:5.1f}/s {r['peak_mb']:6.0f} MB {r['after_mb']:4.0f} MB")
    for label, r in results.items():
        if label != "default malloc":
            print(f"{label} ÷ default malloc: compute_cams {r['compute_cams'] / base['compute_cams']:.2f}×, "
                  f"faithfulness {r['faithfulness'] / base['faithfulness']:.2f}×, "
                  f"VLM {r['loopback VLM'] / base['loopback VLM']:.2f}×")


if __name__ == "__main__":
    main()
