"""VLM judges through ``vx.explain``: the real ``openai`` / ``google-genai`` clients talk over HTTP to
the loopback server (tests/loopback_server.py). A finished run or a cached question sends nothing;
an interrupted run re-sends only what is unfinished; faults never lose a sample; the key is never
written anywhere; token usage and cost reach the run."""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from loopback_server import LoopbackServer, RecordedRequest

import vlmxplain as vx
from vlmxplain.core.specs import JudgeSpec
from vlmxplain.judges.vlm.cost import lookup_price
from vlmxplain.masks import judge_view_png

SECRET = "sk-test-SECRET-1234567890"  # sent as OPENAI_API_KEY
GSECRET = "AIza-test-SECRET-0987654321"  # sent as GEMINI_API_KEY
RIGHT = "sk-test-RIGHT-KEY-5555555555"  # the key the server accepts in the auth test
PROVIDERS = ("openai", "gemini", "openai-compatible")
FAST = dict(backoff_base=0.01, backoff_max=0.05)
SDK_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
           "GOOGLE_GENAI_API_VERSION", "OPENAI_COMPATIBLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "OPENAI_ORG_ID",
           "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS")


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", GSECRET)
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache" / "judgments.sqlite"))


@pytest.fixture(scope="module")
def gallery(lite0):
    """The 8 gallery photos and the class lite0 predicts for each (the prompt names it)."""
    data = vx.datasets.gallery()
    cams = vx.compute_cams(lite0, [data[i] for i in range(len(data))])
    names = {cams[k]["id"]: lite0.class_names[int(cams[k]["prediction"])] for k in range(len(cams))}
    assert len(set(names.values())) == len(data)  # one prompt per sample: requests map back to samples
    return data, names


def judge_spec(provider: str, server: LoopbackServer, **options) -> dict:
    """``explain`` keyword arguments for a judge of ``provider`` served by ``server``."""
    if provider == "openai-compatible":
        return dict(judge=f"openai-compatible:qwen2.5-vl@{server.openai_base_url}", judge_options=options)
    if provider == "openai":
        return dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, **options})
    return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url, **options})


def asked_about(req: RecordedRequest, names: dict[str, str]) -> str:
    """The gallery sample whose predicted class the request's prompt names."""
    (hit,) = [sid for sid, name in names.items() if f'predicted: "{name}"' in req.text]
    return hit


def assert_never_written(root: Path, *texts: str, keys=(SECRET, GSECRET, RIGHT)) -> None:
    """No key in any file under ``root`` (SQLite main, -wal and -shm bytes included) or in ``texts``."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".sqlite") for p in files) and any(p.name.endswith("-wal") for p in files)
    for key in keys:
        for path in files:
            assert key.encode() not in path.read_bytes(), f"key written to {path}"
        for text in texts:
            assert key not in text


# --- reruns and the cache ------------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_rerun_and_cached_run_send_zero_requests(lite0, gallery, loopback_server, tmp_path, capfd, provider):
    data, names = gallery
    server = loopback_server
    judge = judge_spec(provider, server)
    run = vx.explain(lite0, data, run_dir=tmp_path / "a", progress=False, **judge)
    out = capfd.readouterr().out
    t = run.table
    assert len(server.requests) == len(data) == 8
    assert (t["judge_status"] == "ok").all() and (t["score"] == 3).all() and (t["parse_path"] == "structured").all()
    by_sample = {asked_about(r, names): r for r in server.requests}
    assert sorted(by_sample) == sorted(data.ids)  # each sample asked exactly once
    for sid, req in by_sample.items():
        # the masked CAM image at the run's alpha/beta, rebuilt from the store, is what was sent
        assert req.images == [judge_view_png(run.judge_input(sid), "masked", 512)]
        assert req.model == JudgeSpec.parse(run.judge).model
        assert (t.loc[sid, "input_tokens"], t.loc[sid, "output_tokens"]) == req.usage  # usage reaches the table
    usage = run.usage()
    assert usage == {"requests": 8, "input_tokens": sum(r.usage[0] for r in server.requests),
                     "output_tokens": sum(r.usage[1] for r in server.requests)}
    assert (run.last_summary.input_tokens, run.last_summary.output_tokens) == (usage["input_tokens"],
                                                                               usage["output_tokens"])
    assert vx.estimate_cost(data, judge=judge["judge"]).requests == usage["requests"]
    cost = run.cost()
    price = lookup_price(JudgeSpec.parse(run.judge).model)
    if provider == "openai-compatible":
        assert cost.usd == 0.0  # a local server is free unless priced
    else:
        assert cost.usd > 0 and cost.usd == pytest.approx(
            (usage["input_tokens"] * price.input_per_mtok + usage["output_tokens"] * price.output_per_mtok) / 1e6)
    assert "acceptance rate 100.0%" in out and f"{usage['input_tokens']:,} input" in out and str(cost) in out

    again = vx.explain(lite0, data, run_dir=tmp_path / "a", progress=False, verbose=False, **judge)
    assert len(server.requests) == 8  # a finished run sends nothing
    assert again.last_summary.already_done == 8 and again.last_summary.processed == 0

    fresh = vx.explain(lite0, data, run_dir=tmp_path / "b", progress=True, verbose=False, **judge)
    err = capfd.readouterr().err
    assert len(server.requests) == 8  # same judge, same inputs, new run dir: all from the cross-run cache
    assert fresh.last_summary.cached == 8 and fresh.table["cached"].all()
    assert fresh.table["score"].tolist() == t["score"].tolist() and fresh.acceptance_rate() == 1.0
    assert fresh.usage() == {"requests": 0, "input_tokens": 0, "output_tokens": 0} and fresh.cost().usd == 0.0
    assert "cached=8" in err and "failed=0" in err  # the progress bar shows done / failed / cached


def test_estimate_cost_top_level_needs_no_key_and_no_network(loopback_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", loopback_server.openai_base_url)
    data = vx.datasets.gallery()

    def no_network(*args, **kwargs):
        raise AssertionError("estimate_cost opened a network connection")

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", no_network)
        est = vx.estimate_cost(data, judge="openai:gpt-4o-mini")
        gem = vx.estimate_cost(data, judge="gemini:gemini-2.5-flash", batch=True)
    assert "estimate_cost" in vx.__all__ and loopback_server.requests == []
    assert est.requests == len(data) == 8 and est.image_tokens_per_request == 2833  # gpt-4o-mini, low detail
    assert est.usd > 0 and est.usd == pytest.approx((est.input_tokens * 0.15 + est.output_tokens * 0.60) / 1e6)
    assert gem.requests == 8 and gem.usd == pytest.approx((gem.input_tokens * 0.30 + gem.output_tokens * 2.50) / 2e6)
    assert "8 requests" in str(est) and "$" in str(est)


# --- interrupted runs ---------------------------------------------------------------------------

KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import vlmxplain as vx
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    run = vx.explain(clf, vx.datasets.shapes(int(sys.argv[2]), seed=7), judge="openai:gpt-4o-mini",
                     judge_options={"concurrency": 2}, run_dir=sys.argv[1], batch_size=8, progress=True)
    s = run.last_summary
    print(f"RESULT judged={s.judged} failed={s.failed} done_before={s.already_done}")
    """
)


def _judged(db: Path) -> set[str]:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return {r[0] for r in c.execute("SELECT sample_id FROM judgments WHERE status = 'ok'")}
    except sqlite3.OperationalError:
        return set()


def test_sigkill_midway_then_resume_resends_only_unfinished(tmp_path):
    n, run_dir = 24, tmp_path / "killed"
    script = tmp_path / "kill_run.py"
    script.write_text(KILL_SCRIPT)
    with LoopbackServer(latency=0.1) as server:
        # configured only through the SDK's standard environment variables
        env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"} | {"OPENAI_BASE_URL": server.openai_base_url}
        proc = subprocess.Popen([sys.executable, str(script), str(run_dir), str(n)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        db, deadline = run_dir / "run.sqlite", time.time() + 120
        while len(_judged(db)) < 6:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the run never got going"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        killed_out, killed_err = proc.communicate()
        committed = _judged(db)
        assert 6 <= len(committed) < n
        while server.in_flight:  # requests on the wire when it died are answered to no one
            time.sleep(0.02)
        sent_before = len(server.requests)

        resumed = subprocess.run([sys.executable, str(script), str(run_dir), str(n)], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        requests = list(server.requests)
    stats = dict(kv.split("=") for kv in resumed.stdout.split("RESULT ")[1].split())
    assert int(stats["done_before"]) == len(committed) and int(stats["failed"]) == 0
    assert int(stats["judged"]) == n - len(committed)

    run = vx.open_run(run_dir)
    views = {hashlib.sha256(judge_view_png(run.judge_input(sid), "masked", 512)).hexdigest(): sid
             for sid in run.table["id"]}
    assert len(views) == n  # every sample's image is distinct: requests map back to samples
    asked = [views[hashlib.sha256(r.images[0]).hexdigest()] for r in requests]
    resent = Counter(asked[sent_before:])
    assert set(resent) == set(run.table["id"]) - committed and set(resent.values()) == {1}
    overall = Counter(asked)
    assert all(overall[sid] == 1 for sid in committed)  # a committed judgment is never asked for again
    assert all(r.api_key == SECRET for r in requests)
    t = run.table
    assert len(t) == n and (t["judge_status"] == "ok").all() and run.acceptance_rate() == 1.0
    with sqlite3.connect(run_dir / "run.sqlite") as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT sample_id) FROM judgments").fetchone() == (n, n)
    assert "done=" in resumed.stderr and "failed=0" in resumed.stderr  # progress bar
    assert "acceptance rate 100.0%" in resumed.stdout
    assert_never_written(tmp_path, killed_out.decode(), killed_err.decode(), resumed.stdout, resumed.stderr)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_key_echoed_by_server_is_never_written_and_a_fixed_key_judges_everything(
        lite0, gallery, loopback_server, tmp_path, caplog, capfd, provider):
    caplog.set_level(logging.DEBUG)
    data, names = gallery
    server = loopback_server
    server.required_key = RIGHT  # any other key: 401 "Incorrect API key provided: <the key sent>"
    server.gate = 2  # both requests the judge may have in flight are on the wire before any reply
    sent_key = SECRET if provider == "openai" else GSECRET
    judge = judge_spec(provider, server, concurrency=2, **FAST)
    run = vx.explain(lite0, data, run_dir=tmp_path / "run", **judge)
    t = run.table
    assert len(server.requests) == 2 and all(r.api_key == sent_key for r in server.requests)  # then nothing more
    rejected = set(t.index[t["error"].str.startswith("authentication failed (HTTP 401)", na=False)])
    assert rejected == {asked_about(r, names) for r in server.requests}
    assert (t.loc[list(rejected), "judge_status"] == "failed").all()
    assert t.loc[list(rejected), "error"].str.contains("Incorrect API key provided: ***", regex=False).all()
    unsent = t.drop(index=list(rejected))  # none lost: never asked, so still pending
    assert (unsent["judge_status"] == "pending").all()
    s = run.last_summary
    assert (s.rejected, s.not_sent, s.failed, s.judged) == (2, 6, 0, 0)
    env_name = "OPENAI_API_KEY" if provider == "openai" else "GEMINI_API_KEY"
    assert f"check the environment variable {env_name}" in s.problem

    judge["judge_options"]["api_key"] = RIGHT  # the right key: a plain rerun asks every unanswered question
    server.gate = None
    resumed = vx.explain(lite0, data, run_dir=tmp_path / "run", **judge)
    new = server.requests[2:]
    assert sorted(asked_about(r, names) for r in new) == sorted(data.ids)  # the refused ones too, each once
    assert resumed.last_summary.judged == 8 and resumed.last_summary.problem is None
    assert (resumed.table["judge_status"] == "ok").all() and resumed.acceptance_rate() == 1.0
    assert any(r.name.startswith(("openai", "google", "httpx", "vlmxplain")) for r in caplog.records)
    out, err = capfd.readouterr()
    assert "acceptance rate 0.0%" in out and "acceptance rate 100.0%" in out
    assert "2 refused, 6 never sent" in out and f"check the environment variable {env_name}" in out
    assert_never_written(tmp_path, caplog.text, out, err, repr(run), str(run.config))


# --- faults ---------------------------------------------------------------------------------------

#: sample -> (faults injected in order, status, reason fragment | parse path); one sample per fault
PLAN = {
    "chelsea": ([("429", dict(times=1, retry_after=0.3))], "ok", "structured"),
    "coffee": ([("500", {})], "failed", "server error (HTTP 500)"),
    "rocket": ([("503", dict(times=1)), ("fenced", {})], "ok", "tolerant"),
    "camera": ([("slow", dict(delay=1.6))], "failed", "timeout"),
    "motorcycle": ([("truncated", {})], "failed", "truncated"),
    "clock": ([("schema", {})], "failed", "missing fields: justification"),
    "grace_hopper": ([("refusal", {})], "failed", "refused|blocked: finish_reason=SAFETY"),
    "summer_palace": ([("empty", {})], "failed", "empty response"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_sample_ends_judged_or_failed_with_reason_under_faults(
        lite0, gallery, loopback_server, tmp_path, capfd, provider):
    data, names = gallery
    server = loopback_server
    for sid, (faults, _, _) in PLAN.items():
        for fault, kw in faults:
            server.add_fault(fault, match=f'predicted: "{names[sid]}"', **kw)
    judge = judge_spec(provider, server, timeout=1.0, max_retries=1, concurrency=4, **FAST)
    run = vx.explain(lite0, data, run_dir=tmp_path / "run", **judge)
    out = capfd.readouterr().out
    t = run.table
    assert len(t) == 8 and set(t["judge_status"]) == {"ok", "failed"}  # nothing pending, nothing lost
    for sid, (_, status, detail) in PLAN.items():
        row = t.loc[sid]
        assert row["judge_status"] == status, (sid, row["error"])
        if status == "ok":
            assert row["parse_path"] == detail and row["score"] == 3 and pd.isna(row["error"])
        else:
            assert pd.isna(row["score"]) and row["quadrant"] == "Unjudged"
            assert any(part in row["error"] for part in detail.split("|")), (sid, row["error"])
    for sid in ("motorcycle", "clock"):
        assert run.judgments().set_index("id").loc[sid, "raw"], "the raw text of a bad answer is kept"
    first, retry = [r for r in server.requests if asked_about(r, names) == "chelsea"]
    assert (first.status, retry.status) == (429, 200) and retry.received >= first.responded + 0.3  # Retry-After
    assert sum(asked_about(r, names) == "coffee" for r in server.requests) == 2  # 1 + max_retries, then failed

    s = run.last_summary
    assert (s.judged, s.failed, s.processed) == (2, 6, 8)
    assert run.acceptance_rate() == 0.25 and "acceptance rate 25.0%" in out
    answered = [r for r in server.requests if r.status == 200 and r.fault != "slow"]  # slow ones: client gave up
    assert run.usage()["input_tokens"] == sum(r.usage[0] for r in answered) == s.input_tokens
    assert run.usage()["output_tokens"] == sum(r.usage[1] for r in answered) == s.output_tokens
    assert run.usage()["requests"] == 8

    sent = len(server.requests)
    vx.explain(lite0, data, run_dir=tmp_path / "run", verbose=False, **judge)
    assert len(server.requests) == sent  # failures with a reason are results: a rerun sends nothing
    server.rules.clear()
    fixed = vx.explain(lite0, data, run_dir=tmp_path / "run", retry_failed=True, verbose=False, **judge)
    again = Counter(asked_about(r, names) for r in server.requests[sent:])
    assert again == Counter({sid for sid, plan in PLAN.items() if plan[1] == "failed"})
    assert (fixed.table["judge_status"] == "ok").all() and fixed.acceptance_rate() == 1.0
    # the failed answers asked again were billed too: usage counts both rounds' tokens
    answered = [r for r in server.requests if r.status == 200 and r.fault != "slow"]
    billed_before = sum(1 for sid in PLAN if (row := t.loc[sid])["input_tokens"] > 0 and row["judge_status"] == "failed")
    assert fixed.usage() == {"requests": 8 + billed_before, "input_tokens": sum(r.usage[0] for r in answered),
                             "output_tokens": sum(r.usage[1] for r in answered)}
    assert_never_written(tmp_path, out)
