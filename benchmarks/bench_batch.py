"""Provider batch APIs vs synchronous judging, side by side: the recorded cost ratio (target 0.5).

The same run (``--n`` shapes images, an untrained ShapesNet, GradCAM) is judged twice per provider
against the loopback server (tests/loopback_server.py, batch endpoints in tests/loopback_batch.py)
with the real ``openai`` / ``google-genai`` SDKs: synchronously (``openai:gpt-4o-mini``,
``gemini:gemini-2.5-flash``) and through the batch API (``openai-batch:...``, ``gemini-batch:...``:
``vx.explain`` submits and returns, ``vx.sync(wait=True)`` collects). Printed per provider: the
recorded ``run.cost()`` of each finished run and their ratio, the tokens (identical requests give
identical usage), the HTTP calls and requests each sent, the jobs, and the calls a rerun of the
finished batch run sends (target 0); the times include the first run's imports and are not a comparison. Exit status 1 if a ratio is not 0.5 or a rerun sends anything.

    python benchmarks/bench_batch.py [--n 64] [--per-job 25]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from loopback_server import LoopbackServer  # noqa: E402

import vlmxplain as vx  # noqa: E402

MODELS = {"openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
#: (row label, provider, batch options): Gemini's jobs both ways (inline requests, an uploaded JSONL file)
ROWS = [("openai", "openai", {}), ("gemini", "gemini", {"gemini_input": "inline"}),
        ("gem-file", "gemini", {"gemini_input": "file"})]


def classifier():
    import torch

    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    return shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])


def compare(label: str, provider: str, extra: dict, n: int, per_job: int, root: Path) -> dict:
    clf, data = classifier(), vx.datasets.shapes(n, seed=5)
    with LoopbackServer() as server:
        url = {"base_url": server.openai_base_url if provider == "openai" else server.url}
        quiet = dict(progress=False, verbose=False, cache=False)  # each row asks its own questions
        t0 = time.perf_counter()
        sync = vx.explain(clf, data, judge=f"{provider}:{MODELS[provider]}", judge_options=url,
                          run_dir=root / f"{label}-sync", **quiet)
        t_sync = time.perf_counter() - t0
        sync_requests = len(server.requests)
        spec = f"{provider}-batch:{MODELS[provider]}"
        options = {**url, "max_requests_per_job": per_job, "poll_interval": 0.05, **extra}
        t0 = time.perf_counter()
        batch = vx.explain(clf, data, judge=spec, judge_options=options, run_dir=root / f"{label}-batch", **quiet)
        t_submit = time.perf_counter() - t0
        batch = vx.sync(batch, wait=True, timeout=120, verbose=False)
        t_batch = time.perf_counter() - t0
        calls, lines = len(server.batch.calls), len(server.batch.lines)
        vx.explain(clf, data, judge=spec, judge_options=options, run_dir=root / f"{label}-batch", **quiet)
        rerun_calls = len(server.batch.calls) - calls
    ok = (batch.table["judge_status"] == "ok").all() and (sync.table["judge_status"] == "ok").all()
    return dict(provider=label, sync_usd=sync.cost().usd, batch_usd=batch.cost().usd,
                sync_tokens=sync.usage(), batch_tokens=batch.usage(), sync_requests=sync_requests,
                batch_calls=calls, batch_lines=lines, jobs=len(batch.batch_jobs()), rerun_calls=rerun_calls,
                t_sync=t_sync, t_submit=t_submit, t_batch=t_batch, all_ok=ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--per-job", type=int, default=25, help="max_requests_per_job")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="vlmx-bench-batch-") as tmp:
        os.environ["VLMXPLAIN_CACHE"] = str(Path(tmp) / "cache.sqlite")
        os.environ.setdefault("OPENAI_API_KEY", "bench-key-not-secret")
        os.environ.setdefault("GEMINI_API_KEY", "bench-key-not-secret")
        print(f"n = {args.n} shapes images, max_requests_per_job = {args.per_job}, loopback server (no latency)")
        print(f"{'provider':8} {'sync $':>10} {'batch $':>10} {'ratio':>6} {'tokens in/out (both)':>22} "
              f"{'sync req':>8} {'batch calls':>11} {'lines':>6} {'jobs':>4} {'rerun':>5} {'sync s':>7} {'submit s':>8} "
              f"{'batch s':>7}")
        for label, provider, extra in ROWS:
            r = compare(label, provider, extra, args.n, args.per_job, Path(tmp))
            ratio = r["batch_usd"] / r["sync_usd"]
            same = r["sync_tokens"] == r["batch_tokens"]
            tokens = f"{r['batch_tokens']['input_tokens']:,}/{r['batch_tokens']['output_tokens']:,}" + ("" if same else " (!)")
            print(f"{label:8} {r['sync_usd']:10.6f} {r['batch_usd']:10.6f} {ratio:6.3f} {tokens:>22} "
                  f"{r['sync_requests']:8d} {r['batch_calls']:11d} {r['batch_lines']:6d} {r['jobs']:4d} "
                  f"{r['rerun_calls']:5d} {r['t_sync']:7.2f} {r['t_submit']:8.2f} {r['t_batch']:7.2f}")
            failed |= abs(ratio - 0.5) > 1e-9 or not same or r["rerun_calls"] != 0 or not r["all_ok"]
            failed |= r["batch_lines"] != args.n
    print("batch $ / sync $: the recorded cost of the finished batch run over the same run judged synchronously "
          "(target 0.5)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
