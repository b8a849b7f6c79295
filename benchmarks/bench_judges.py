"""Judge throughput against the loopback server: judged images/s ÷ (concurrency ÷ latency).

The real ``openai`` / ``google-genai`` clients talk over HTTP to tests/loopback_server.py, which
waits ``--latency`` seconds per request (a VLM's response time). With ``--concurrency`` requests
in flight the ideal rate is concurrency / latency; the efficiency is the measured rate over that
(target >= 0.8). The time includes building each request (resizing and PNG-encoding the masked
CAM image). The server runs in its own process, as a VLM server would (``--in-process`` to share
this one).

It also counts the requests ``vx.explain`` sends (OpenAI judge, ``--rerun-n`` synthetic shapes
with an untrained ShapesNet): a first run, a rerun of the finished run (target 0) and the same
inputs in a new run directory (0: the cross-run cache answers). Exit status 1 if any provider
misses the efficiency target or a rerun sends anything.

    python benchmarks/bench_judges.py [--n 160] [--concurrency 16] [--latency 0.5] [--in-process] [--rerun-n 32]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from loopback_server import LoopbackServer, loopback_subprocess  # noqa: E402

from vlmxplain.masks import JudgeInput  # noqa: E402
from vlmxplain.core.specs import JudgeSpec  # noqa: E402
from vlmxplain.judges.vlm import GeminiJudge, OpenAICompatibleJudge, OpenAIJudge  # noqa: E402

TARGET = 0.8


def synthetic_items(n: int, size: int = 224) -> list[JudgeInput]:
    """Masked CAM images of ``size`` px (a photo-like noise image times a sigmoid mask)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    items = []
    for i in range(n):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        sal = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size * 0.2) ** 2)).astype(np.float32)
        mask = (1 / (1 + np.exp(25 * (0.6 - sal)))).astype(np.float32)
        masked = Image.fromarray((image * mask[..., None]).astype(np.uint8))
        items.append(JudgeInput(sample_id=f"b{i}", image=Image.fromarray(image), masked=masked, overlay=masked,
                                saliency=sal, mask=mask, predicted_class=i % 1000,
                                predicted_name=f"class-{i % 1000}", confidence=0.9))
    return items


def build(provider: str, url: str, concurrency: int):
    opts = dict(api_key="bench-key-not-secret", concurrency=concurrency, timeout=30)
    if provider == "openai":
        return OpenAIJudge(JudgeSpec("openai", "gpt-4o-mini"), base_url=url + "/v1", **opts)
    if provider == "gemini":
        return GeminiJudge(JudgeSpec("gemini", "gemini-2.5-flash"), base_url=url, **opts)
    return OpenAICompatibleJudge(JudgeSpec("openai-compatible", "qwen2.5-vl", url + "/v1"), **opts)


@contextlib.contextmanager
def server(latency: float, in_process: bool):
    """``(url, stats())`` of a loopback server in another process (default) or in this one."""
    if not in_process:
        with loopback_subprocess(latency) as (url, stats):
            yield url, stats
        return
    with LoopbackServer(latency=latency) as srv:
        yield srv.url, lambda: {"requests": len(srv.requests), "max_in_flight": srv.max_in_flight}


def measure(provider: str, items: list[JudgeInput], concurrency: int, latency: float, in_process: bool = False) -> dict:
    with server(latency, in_process) as (url, stats):
        judge = build(provider, url, concurrency)
        start = time.perf_counter()
        results = dict(judge.judge_many(items))
        elapsed = time.perf_counter() - start
        judge.close()
        ok = sum(j.ok for j in results.values())
        rate = len(results) / elapsed
        ideal = concurrency / latency
        return {"provider": provider, "n": len(items), "ok": ok, **stats(), "seconds": elapsed,
                "img_per_s": rate, "ideal_img_per_s": ideal, "efficiency": rate / ideal}


def rerun_requests(n: int, concurrency: int, latency: float, in_process: bool = False) -> dict:
    """Requests ``vx.explain`` sends for a first run, a rerun of it, and a new run dir sharing the cache."""
    import torch

    import vlmxplain as vx
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(n, seed=11)
    counts: dict[str, int] = {}
    with server(latency, in_process) as (url, stats), tempfile.TemporaryDirectory() as tmp:
        options = dict(base_url=url + "/v1", api_key="bench-key-not-secret", concurrency=concurrency, timeout=30)
        for label, run_dir in (("first", "a"), ("rerun", "a"), ("new_dir", "b")):
            before = stats()["requests"]
            start = time.perf_counter()
            run = vx.explain(clf, data, judge="openai:gpt-4o-mini", judge_options=options, run_dir=Path(tmp) / run_dir,
                             cache=Path(tmp) / "cache.sqlite", progress=False, verbose=False)
            counts[label] = stats()["requests"] - before
            counts[f"{label}_seconds"] = time.perf_counter() - start
            counts[f"{label}_ok"] = int((run.table["judge_status"] == "ok").sum())
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--providers", default="openai,gemini,openai-compatible")
    parser.add_argument("--rerun-n", type=int, default=32,
                        help="samples for the vx.explain rerun check (0: skip it)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the server in this process (its CPU time then competes with the client's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    items = synthetic_items(args.n)
    print(f"judges over loopback HTTP: n={args.n}, concurrency={args.concurrency}, latency={args.latency}s, "
          f"ideal={args.concurrency / args.latency:.1f} img/s, target efficiency >= {TARGET}  ({os.cpu_count()} CPUs, "
          f"server {'in this process' if args.in_process else 'in its own process'})")
    print(f"{'provider':<18}{'ok':>6}{'requests':>10}{'in-flight':>11}{'seconds':>9}{'img/s':>8}{'efficiency':>12}")
    worst = 1.0
    for provider in args.providers.split(","):
        r = measure(provider.strip(), items, args.concurrency, args.latency, args.in_process)
        worst = min(worst, r["efficiency"])
        print(f"{r['provider']:<18}{r['ok']:>6}{r['requests']:>10}{r['max_in_flight']:>11}{r['seconds']:>9.2f}"
              f"{r['img_per_s']:>8.1f}{r['efficiency']:>12.2f}")
    passed = worst >= TARGET
    rerun_note = ""
    if args.rerun_n > 0:
        r = rerun_requests(args.rerun_n, args.concurrency, args.latency, args.in_process)
        print(f"vx.explain, openai judge, n={args.rerun_n}: requests sent by the first run {r['first']} "
              f"({r['first_ok']} ok, {r['first_seconds']:.1f} s), by a rerun of the finished run {r['rerun']}, "
              f"by the same inputs in a new run dir {r['new_dir']} (cache; {r['new_dir_ok']} ok)")
        passed = passed and r["rerun"] == 0 and r["new_dir"] == 0 and r["first"] == args.rerun_n
        rerun_note = f"; requests sent on a rerun {r['rerun']} (target 0), new run dir {r['new_dir']} (target 0)"
    print(f"{'PASS' if passed else 'FAIL'}: worst efficiency {worst:.2f} (target >= {TARGET}){rerun_note}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
