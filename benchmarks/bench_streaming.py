"""The streaming explain() end to end, side by side in one run (issue "Dataset-scale runs").

1. judging: ``explain()`` with an OpenAI judge at ``concurrency`` 16 against the loopback server in
   its own process (mean latency 0.5 s, fixed and lognormal σ = 0.8), n = 320 shapes images; with
   and without ``hedge=True`` (stragglers sent twice at the end; with a fixed latency it has
   nothing to win: that run is its control).
   Figure: judged img/s ÷ (concurrency ÷ mean latency); 1.0 = every slot busy all the time. Control:
   the run's time ÷ the time a zero-overhead scheduler needs for the latencies the server drew
   (a lognormal draw's tail bounds any scheduler: that control says what is ours to win).
2. offline: ``explain()`` img/s ÷ ``compute_cams`` img/s on the same 256 JPEG photos (the offline
   gallery's photos, flipped/cropped into distinct images, 500×375): with ``offline:faithfulness``
   (one extra forward pass per image: 0.5 is the bound) and with a zero-latency loopback VLM judge
   (sent PNG, the default, and ``image_format="jpeg"``). Control: the CPU time per image of each
   (all threads of the process; the loopback server runs in its own), and the ratio ``explain()``
   would reach keeping the cores as busy as ``compute_cams`` does (compute_cams CPU-ms ÷ explain
   CPU-ms): below it, cores sat idle (scheduling is ours to win); up to it, only less CPU work helps.
   Where that CPU goes: CPU-ms per image by thread (load, cams, encode, judge, the writer, torch's
   OpenMP workers), from ``/proc`` on Linux.
3. large: ``explain()`` on camera-sized JPEGs (4032×3024) with ``decode="reduced"`` (the default:
   DCT-scaled decoding that still covers the preview and the model's input) ÷ ``decode="full"``,
   with the reduced run's maps and previews against the full run's (control: two photos' maps).
4. memory: peak RSS of ``explain()`` on 5,000 vs 500 shapes images (each in a fresh process).

    python benchmarks/bench_streaming.py [--quick] [--baseline /path/to/main/checkout]

Each figure is measured in a fresh process; ``--baseline`` measures another version's sources the
same way in the same run (the loopback server and photos come from this tree).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-loopback")


def photo_folder(root: Path, n: int) -> Path:
    """``n`` distinct JPEGs (500×375) made from the gallery's photos (flips and crops)."""
    from PIL import ImageOps

    import vlmxplain as vx

    gallery = vx.datasets.gallery()
    base = [gallery[i].image for i in range(len(gallery))]
    out = root / "photos"
    out.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        im = base[k % len(base)]
        v = k // len(base)
        if v % 2:
            im = ImageOps.mirror(im)
        w, h = im.size
        c = (v // 2) * 0.01
        im = im.crop((int(w * c), int(h * c), w - int(w * c / 2), h - int(h * c / 2))).resize((500, 375))
        im.save(out / f"photo-{k:04d}.jpg", quality=90)
    return out


def reply_gaps(timeline: list[tuple[float, float]], slots: int) -> list[float]:
    """Seconds from each reply to the next request the server received (the slot it freed taken
    again): with ``slots`` in flight, the k-th request after the first ``slots`` follows the k-th reply."""
    received = sorted(r for r, _ in timeline)
    responded = sorted(r for _, r in timeline)
    return [r - p for r, p in zip(received[slots:], responded)]


def ideal_seconds(durations: list[float], slots: int) -> float:
    """The control: how long a scheduler with no overhead at all takes to serve these request
    durations (in their arrival order) with ``slots`` in flight — each request starts the moment
    a slot frees. A long-tailed draw bounds every scheduler, not only ours."""
    import heapq

    free = [0.0] * slots
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """A t-interval for the mean of ``values`` (the seeds are independent draws of the latencies)."""
    from scipy import stats

    return stats.t.interval(level, len(values) - 1, loc=statistics.fmean(values), scale=stats.sem(values))


def judging(concurrency: int, latency: float, sigma: float, n: int, image_format: str = "png",
            hedge: bool = False, seed: int = 0) -> dict:
    import torch

    import vlmxplain as vx
    from loopback_server import loopback_subprocess
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    with loopback_subprocess(latency, sigma, seed) as (url, stats), tempfile.TemporaryDirectory() as tmp:
        vx.explain(clf, vx.datasets.shapes(2, seed=12), judge="openai:gpt-4o-mini", run_dir=f"{tmp}/warm",
                   cache=False, progress=False, verbose=False, judge_options={"base_url": url + "/v1"})  # imports
        if latency == 0:
            latency = 1.0  # capacity run: the ratio is meaningless, img/s is what counts
        before = stats()
        t0, m0 = time.perf_counter(), time.monotonic()
        options = {"base_url": url + "/v1", "concurrency": concurrency, "image_format": image_format}
        run = vx.explain(clf, vx.datasets.shapes(n, seed=11), judge="openai:gpt-4o-mini", run_dir=f"{tmp}/run",
                         cache=False, progress=False, verbose=False,
                         judge_options=options | ({"hedge": True} if hedge else {}))
        seconds, m1 = time.perf_counter() - t0, time.monotonic()
        served = stats()
    judged, hedged = run.last_summary.judged, getattr(run.last_summary, "hedged", 0)
    assert served["requests"] - before["requests"] == n + hedged
    busy = served["busy_seconds"] - before["busy_seconds"]
    ideal = ideal_seconds(served["durations"][before["requests"]:], concurrency)
    gaps = reply_gaps(served["timeline"][before["requests"]:], concurrency)
    return {"judged": judged, "hedged": hedged, "seconds": seconds, "max_in_flight": served["max_in_flight"],
            "ratio": judged / seconds / (concurrency / latency),
            # where the time went: the slots' occupancy from the call to the last reply, and the
            # time after it
            "occupancy": busy / (concurrency * (served["last_responded"] - m0)),
            "vs_ideal": ideal / seconds,
            "after_last": m1 - served["last_responded"],
            "gap_mean_ms": 1e3 * sum(gaps) / len(gaps), "gap_max_ms": 1e3 * max(gaps)}


class StageCPU:
    """CPU seconds per thread group while the block runs, from ``/proc/self/task`` (Linux; empty
    elsewhere): threads grouped by their Python name without its number (``vlmx-load_3`` →
    ``vlmx-load``), the calling thread as ``main (writer)``, threads Python does not know (torch's
    OpenMP workers) as ``torch workers``. A thread that ends is counted up to its last sample."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.seconds = every, {}
        self._stop, self._thread = threading.Event(), threading.Thread(target=self._sample, daemon=True)
        self._names: dict[int, str] = {}
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}

    @staticmethod
    def _times() -> dict[int, float]:
        tick, out = os.sysconf("SC_CLK_TCK"), {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return out

    def _sample(self) -> None:
        while True:
            for t in threading.enumerate():
                if t.native_id is not None:
                    self._names.setdefault(t.native_id, t.name)
            self._last.update(self._times())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> "StageCPU":
        if os.path.isdir("/proc/self/task"):
            self._main, self._start = threading.get_native_id(), self._times()
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join()
        self._last.update(self._times())
        for tid, cpu in self._last.items():
            if tid == self._thread.native_id:
                continue
            known = self._names.get(tid, "torch workers")
            name = "main (writer)" if tid == self._main else re.sub(r"[-_]?\d+$", "", known)
            self.seconds[name] = self.seconds.get(name, 0.0) + cpu - self._start.get(tid, 0.0)


def offline(folder: Path) -> dict:
    import vlmxplain as vx
    from loopback_server import loopback_subprocess

    clf = vx.load_classifier("efficientnet_lite0", device="cpu")
    data = vx.datasets.folder(folder, classes="imagenet")
    images = [data[i].image for i in range(len(data))]
    vx.compute_cams(clf, images[:16])  # warm-up

    def cams_rate() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        vx.compute_cams(clf, images, batch_size=16)
        return len(images) / (time.perf_counter() - t0), (time.process_time() - c0) / len(images)

    out = {"n": len(data)}
    out["compute_cams"], out["compute_cams cpu"] = cams_rate()
    with tempfile.TemporaryDirectory() as tmp, loopback_subprocess(0.0) as (url, _):
        vlm = {"base_url": url + "/v1", "concurrency": 16}
        from vlmxplain.judges.vlm.options import VLMOptions

        jpeg = [("loopback VLM, jpeg", "openai:gpt-4o-mini", {**vlm, "image_format": "jpeg"})]
        for label, judge, options in [("faithfulness", "offline:faithfulness", None),
                                      ("loopback VLM", "openai:gpt-4o-mini", vlm),
                                      *(jpeg if "image_format" in VLMOptions.model_fields else [])]:
            t0, c0 = time.perf_counter(), time.process_time()
            with StageCPU() as stages:
                run = vx.explain(clf, data, judge=judge, judge_options=options, run_dir=f"{tmp}/{label}",
                                 cache=False, batch_size=16, progress=False, verbose=False)
            rate = len(data) / (time.perf_counter() - t0)
            assert run.last_summary.judged == len(data), run.last_summary
            out[label], out[f"{label} cpu"] = rate, (time.process_time() - c0) / len(data)
            out[f"{label} stages"] = {k: v / len(data) for k, v in stages.seconds.items() if v > 0}
    # the faster of two compute_cams timings, one before and one after: a slow moment of the
    # machine never flatters the ratios
    again = cams_rate()
    if again[0] > out["compute_cams"]:
        out["compute_cams"], out["compute_cams cpu"] = again
    return out


def camera_folder(root: Path, n: int, size: tuple[int, int] = (4032, 3024)) -> Path:
    """``n`` distinct camera-sized JPEGs: the gallery's photos blown up, mirrored, with sensor-like
    noise (the fine detail a camera's files have and a plain upscale lacks)."""
    import numpy as np
    from PIL import Image, ImageOps

    import vlmxplain as vx

    gallery = vx.datasets.gallery()
    out = root / "camera"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        im = gallery[k % len(gallery)].image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        im = ImageOps.mirror(im) if (k // len(gallery)) % 2 else im
        noisy = np.asarray(im, np.float32) + rng.normal(0, 8, (size[1], size[0], 3)).astype(np.float32)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out / f"camera-{k:03d}.jpg", quality=90)
    return out


def large_photos(folder: Path) -> dict:
    """``explain()`` on camera-sized JPEGs with ``decode="reduced"`` (the default) and ``"full"``,
    and how far the reduced run's maps and previews are from the full run's."""
    import numpy as np

    import vlmxplain as vx
    from vlmxplain.masks.saliency import saliency

    clf = vx.load_classifier("efficientnet_lite0", device="cpu")
    data = vx.datasets.folder(folder, classes="imagenet")
    out: dict = {"n": len(data)}
    with tempfile.TemporaryDirectory() as tmp:
        vx.explain(clf, data.limit(4), judge="offline:faithfulness", run_dir=f"{tmp}/warm", cache=False,
                   progress=False, verbose=False)
        runs = {}
        for mode in ("full", "reduced"):
            t0 = time.perf_counter()
            runs[mode] = vx.explain(clf, data, judge="offline:faithfulness", run_dir=f"{tmp}/{mode}", decode=mode,
                                    cache=False, progress=False, verbose=False)
            out[mode] = len(data) / (time.perf_counter() - t0)
        full, reduced = runs["full"], runs["reduced"]
        maps, previews, same = [], [], 0
        for sid in full.table["id"]:
            a, b = full.cam(sid), reduced.cam(sid)
            same += a["prediction"] == b["prediction"]
            maps.append(float(np.abs(saliency(a["map"], (224, 224)) - saliency(b["map"], (224, 224))).max()))
            previews.append(float(np.abs(np.asarray(full.image(sid), float) - np.asarray(reduced.image(sid), float))
                                  .mean()))
        ids = list(full.table["id"])
        control = float(np.abs(saliency(full.cam(ids[0])["map"], (224, 224))
                               - saliency(full.cam(ids[1])["map"], (224, 224))).max())
    out.update(same=same, max_map=max(maps), median_map=float(np.median(maps)), max_preview_mean=max(previews),
               control=control)
    return out


MEMORY_CHILD = r"""
import json, os, resource, sys, time
os.environ["TQDM_DISABLE"] = "1"
import torch
import vlmxplain as vx
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
torch.manual_seed(0)
clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
n, tmp = int(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
run = vx.explain(clf, vx.datasets.shapes(n, seed=0), judge="offline:groundtruth", run_dir=tmp + "/run",
                 cache=False, progress=False, verbose=False)
print(json.dumps({"n": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - t0, "judged": run.last_summary.judged}))
"""


def memory(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(n), tmp], capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def child(what: str, arg: str) -> dict:
    """One measurement in a fresh process, with the sources of ``VX_SRC`` (this tree or a baseline)."""
    env = {**os.environ, "PYTHONPATH": os.environ["VX_SRC"] + os.pathsep + str(HERE.parent / "tests")}
    out = subprocess.run([sys.executable, __file__, "--child", what, arg], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{what} {arg} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller n everywhere (a smoke run)")
    parser.add_argument("--only", nargs="+", default=["judging", "offline", "large", "memory"],
                        help="sections; 'lognormal' runs only the judging section's lognormal rows (PNG)")
    parser.add_argument("--seeds", type=int, default=3, help="server seeds (latency draws) per lognormal figure")
    parser.add_argument("--baseline", help="sources of another version to measure side by side (e.g. a main checkout)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, arg = args.child
        if what == "judging":
            sigma, n, fmt, hedge, seed = arg.split(",")
            print(json.dumps(judging(16, 0.5, float(sigma), int(n), fmt, hedge == "hedge", int(seed))))
        elif what == "capacity":
            n, fmt = arg.split(",")
            print(json.dumps(judging(16, 0.0, 0.0, int(n), fmt)))
        elif what == "offline":
            print(json.dumps(offline(Path(arg))))
        elif what == "large":
            print(json.dumps(large_photos(Path(arg))))
        else:
            print(json.dumps(memory(int(arg))))
        return
    q = args.quick
    versions = {"this tree": str(HERE.parent)} | ({"baseline": str(Path(args.baseline).resolve())} if args.baseline else {})
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}")
    for version, src in versions.items():
        os.environ["VX_SRC"] = src
        print(f"--- {version} ({src})")
        if "judging" in args.only or "lognormal" in args.only:  # lognormal: those rows alone, PNG
            n, whole = 64 if q else 320, "judging" in args.only
            latencies = (("fixed", 0.0),) * whole + (("lognormal σ=0.8", 0.8),)
            for fmt in ("png", "jpeg") if version == "this tree" and whole else ("png",):  # a baseline may lack it
                if whole:
                    cap = child("capacity", f"{n},{fmt}")
                    print(f"[{fmt}] judging capacity of this machine (zero latency, concurrency 16): "
                          f"{cap['judged'] / cap['seconds']:.1f} img/s")
                hedging = ("", "hedge") if version == "this tree" and fmt == "png" else ("",)
                for (label, sigma), hedge in itertools.product(latencies, hedging):
                    ratios = []
                    for seed in range(args.seeds if sigma else 1):  # the draws differ with the server's seed
                        r = child("judging", f"{sigma},{n},{fmt},{hedge},{seed}")
                        ratios.append(r["ratio"])
                        head = (f"[{fmt}] judging, concurrency 16, mean latency 0.5 s, {label}"
                                f"{', hedge=True' if hedge else ''}, n={n}, server seed {seed}: "
                                f"{r['judged'] / r['seconds']:.1f} judged img/s ÷ (16 / 0.5 s) = {r['ratio']:.2f}")
                        if hedge:  # the twins' draws are extra: the control below does not apply
                            print(f"{head} ({r['hedged']} stragglers sent twice: +{r['hedged'] / n:.1%} requests)")
                            continue
                        print(f"{head}; ÷ a zero-overhead scheduler on the same latencies = {r['vs_ideal']:.2f} "
                              f"(max in flight at the server {r['max_in_flight']}; slots busy "
                              f"{r['occupancy']:.0%} of the time until the last reply, then {r['after_last']:.2f} s "
                              f"to return; reply → next request {r['gap_mean_ms']:.0f} ms on average, "
                              f"{r['gap_max_ms']:.0f} ms at most)")
                    if len(ratios) > 1:
                        low, high = mean_interval(ratios)
                        print(f"  ... {label}{', hedge=True' if hedge else ''} over {len(ratios)} seeds: mean "
                              f"{sum(ratios) / len(ratios):.3f} (95 % CI {low:.3f}–{high:.3f}), per seed "
                              f"{min(ratios):.2f}–{max(ratios):.2f}")
        if "offline" in args.only:
            with tempfile.TemporaryDirectory() as tmp:
                r = child("offline", str(photo_folder(Path(tmp), 48 if q else 256)))
            cams_cpu = r.get("compute_cams cpu")
            print(f"offline, {r['n']} JPEG photos 500×375, EfficientNet-Lite0 gradcam: compute_cams "
                  f"{r['compute_cams']:.1f} img/s" + (f", {1e3 * cams_cpu:.1f} CPU-ms/img (cores busy "
                                                      f"{cams_cpu * r['compute_cams']:.2f})" if cams_cpu else ""))
            for label in [k for k in ("faithfulness", "loopback VLM", "loopback VLM, jpeg") if k in r]:
                line = (f"  explain(judge={label}): {r[label]:.1f} img/s ÷ compute_cams = "
                        f"{r[label] / r['compute_cams']:.2f}")
                if cams_cpu and f"{label} cpu" in r:
                    # the control: the ratio explain() would reach keeping the cores as busy as
                    # compute_cams does; what is left below it is idle cores, above it CPU work
                    cpu = r[f"{label} cpu"]
                    line += (f"; {1e3 * cpu:.1f} CPU-ms/img (cores busy {cpu * r[label]:.2f}): at compute_cams' "
                             f"core use it would be {cams_cpu / cpu:.2f}")
                print(line)
                if r.get(f"{label} stages"):  # where that CPU went, by thread
                    by = sorted(r[f"{label} stages"].items(), key=lambda kv: -kv[1])
                    print("    CPU-ms/img by thread: " + ", ".join(f"{k} {1e3 * v:.1f}" for k, v in by if v >= 5e-5))
        if "large" in args.only and version == "this tree":  # a baseline may lack decode=
            with tempfile.TemporaryDirectory() as tmp:
                r = child("large", str(camera_folder(Path(tmp), 8 if q else 24)))
            print(f"large photos, {r['n']} camera JPEGs 4032×3024, offline:faithfulness: explain "
                  f"decode='reduced' {r['reduced']:.1f} img/s ÷ decode='full' {r['full']:.1f} img/s = "
                  f"{r['reduced'] / r['full']:.2f}; against the full decode: {r['same']}/{r['n']} predictions the "
                  f"same, maps within {r['max_map']:.3f} (median {r['median_map']:.3f}; control, two photos' maps: "
                  f"{r['control']:.3f}), previews within {r['max_preview_mean']:.2f}/255 on average")
        if "memory" in args.only:
            small, large = child("memory", "50" if q else "500"), child("memory", "500" if q else "5000")
            print(f"memory: peak RSS {large['n']} images {large['peak_mb']:.0f} MB vs {small['n']} images "
                  f"{small['peak_mb']:.0f} MB = {large['peak_mb'] / small['peak_mb']:.2f} "
                  f"({large['n'] / large['seconds']:.0f} img/s)")


if __name__ == "__main__":
    main()
