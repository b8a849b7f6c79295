"""Judge throughput against the loopback server: judged images/s ÷ (concurrency ÷ latency).

The real ``openai`` / ``google-genai`` clients talk over HTTP to tests/loopback_server.py, which
waits ``--latency`` seconds per request (a VLM's response time). With ``--concurrency`` requests
in flight the ideal rate is concurrency / latency; the efficiency is the measured rate over that
(target >= 0.8). The time includes building each request (resizing and PNG-encoding the masked
CAM image). The server runs in its own process, as a VLM server would (``--in-process`` to share
this one). Exit status 1 if any provider misses the target.

    python benchmarks/bench_judges.py [--n 160] [--concurrency 16] [--latency 0.5] [--in-process]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from loopback_server import LoopbackServer, loopback_subprocess  # noqa: E402

from vlmxplain.judges.base import JudgeInput  # noqa: E402
from vlmxplain.judges.registry import JudgeSpec  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--providers", default="openai,gemini,openai-compatible")
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
    verdict = "PASS" if worst >= TARGET else "FAIL"
    print(f"{verdict}: worst efficiency {worst:.2f} (target >= {TARGET})")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
