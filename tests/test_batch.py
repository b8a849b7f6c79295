"""Provider batch APIs (``openai-batch:``, ``gemini-batch:``) through ``vx.explain`` and ``vx.sync``:
the real ``openai`` / ``google-genai`` SDKs talk over HTTP to the loopback server's batch
endpoints (tests/loopback_batch.py; Gemini's jobs inline and as uploaded JSONL files), whose jobs the tests drive (in progress, completed, expired,
failed, cancelled, per-request errors, unreadable result lines). Properties: every sample ends
judged or failed with a reason; a request is never submitted twice while an earlier one is
finished or in flight (counted server-side), also across a SIGKILL between creating a job and
recording it; an expired job's samples are submitted once more; batch costs are half the
synchronous ones; no key is written anywhere; a finished run sends nothing."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from loopback_server import LoopbackServer

import vlmxplain as vx
from vlmxplain.core.specs import JudgeSpec
from vlmxplain.masks import judge_view_png

SECRET = "sk-test-BATCH-SECRET-123456"
GSECRET = "AIza-test-BATCH-SECRET-654321"
SDK_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
           "GOOGLE_GENAI_API_VERSION", "GOOGLE_GENAI_USE_VERTEXAI", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
PROVIDERS = ("openai", "gemini", "gemini-file")  # gemini-file: Gemini jobs from an uploaded JSONL file
TINY = dict(poll_interval=0.01, adopt_grace=0.0)


def transport(provider: str) -> dict:
    """The judge options that choose a provider's job input."""
    return {"gemini_input": "file"} if provider == "gemini-file" else {}


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", GSECRET)
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache" / "judgments.sqlite"))


def batch_judge(provider: str, server: LoopbackServer, **options) -> dict:
    """``explain`` keyword arguments for a batch judge served by ``server``."""
    if provider == "openai":
        return dict(judge="openai-batch:gpt-4o-mini",
                    judge_options={"base_url": server.openai_base_url, **TINY, **options})
    return dict(judge="gemini-batch:gemini-2.5-flash",
                judge_options={"base_url": server.url, **TINY, **transport(provider), **options})


def sync_judge(provider: str, server: LoopbackServer) -> dict:
    if provider == "openai":
        return dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url})
    return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url})


def submitted_samples(run, server: LoopbackServer) -> Counter:
    """How many times each sample was submitted, counted on the server (by the image it was sent)."""
    views = {hashlib.sha256(judge_view_png(run.judge_input(sid), "masked", 512)).hexdigest(): sid
             for sid in run.table["id"]}
    assert len(views) == len(run)  # distinct images: every line maps back to its sample
    return Counter(views[hashlib.sha256(line.images[0]).hexdigest()] for line in server.batch.lines)


def assert_settled(run) -> None:
    """Every sample judged, or failed with a reason."""
    t = run.table
    assert t["judge_status"].isin(["ok", "failed"]).all(), t["judge_status"].value_counts().to_dict()
    failed = t[t["judge_status"] == "failed"]
    assert failed["error"].map(lambda e: isinstance(e, str) and len(e) > 10).all()


def assert_no_key(root: Path, *texts: str) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "run.sqlite" for p in files)
    for key in (SECRET, GSECRET):
        for path in files:
            assert key.encode() not in path.read_bytes(), f"key written to {path}"
        for text in texts:
            assert key not in text


# --- specs and prices -----------------------------------------------------------------------------

def test_batch_specs_parse_once_and_cost_half():
    spec = JudgeSpec.parse("openai-batch:gpt-4o-mini")
    assert (spec.provider, spec.model, spec.is_batch, spec.api_provider) == ("openai-batch", "gpt-4o-mini", True, "openai")
    assert JudgeSpec.parse(str(spec)) == spec and not JudgeSpec.parse("openai:gpt-4o-mini").is_batch
    assert JudgeSpec.parse("gemini-batch:gemini-2.5-flash").api_provider == "gemini"
    with pytest.raises(ValueError, match="did you mean 'openai-batch:x'"):
        JudgeSpec.parse("openai-btach:x")
    for sync, batch in (("openai:gpt-4o-mini", "openai-batch:gpt-4o-mini"),
                        ("gemini:gemini-2.5-flash", "gemini-batch:gemini-2.5-flash")):
        s, b = vx.estimate_cost(100, judge=sync), vx.estimate_cost(100, judge=batch)
        assert (b.input_tokens, b.output_tokens) == (s.input_tokens, s.output_tokens) and b.usd == pytest.approx(s.usd / 2)
    own = vx.estimate_cost(10, judge="openai-batch:m", prices={"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0,
                                                                     "batch_input_per_mtok": 0.1}})
    assert own.usd == pytest.approx((own.input_tokens * 0.1 + own.output_tokens * 1.0) / 1e6)  # batch prices are data
    with pytest.raises(ValueError, match="max_requests_per_job"):
        vx.make_judge("openai-batch:gpt-4o-mini", max_requests_per_job=0)


# --- submit, return, collect ------------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_explain_submits_returns_at_once_then_collects_like_a_sync_run(tiny_clf, tmp_path, capfd, caplog, provider):
    caplog.set_level(logging.DEBUG)  # the SDKs' and httpx's debug logs too
    data = vx.datasets.shapes(5, seed=11)
    with LoopbackServer() as server:
        server.batch.outcome = None  # jobs stay in progress until the test finishes them
        judge = batch_judge(provider, server, max_requests_per_job=2)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, **judge)
        out = capfd.readouterr().out
        s = run.last_summary
        assert s.submitted == 5 and s.batch.jobs_submitted == 3 == len(server.batch.jobs)  # chunks of 2
        assert (run.table["judge_status"] == "pending").all() and s.not_sent == 0
        assert "5 submitted as batch jobs" in out and "vx.sync" in out
        jobs = run.batch_jobs()
        assert (jobs["state"] == "submitted").all() and jobs["in_flight"].sum() == 5 and jobs["job_id"].notna().all()
        ids = server.batch.custom_ids()
        assert len(ids) == len(set(ids)) == 5

        again = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, **judge)
        assert len(server.batch.lines) == 5  # in flight: polled, never submitted again
        assert again.last_summary.batch.in_flight == 5 and again.last_summary.submitted == 0

        server.batch.finish("completed")
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, **judge)
        assert len(server.batch.lines) == 5 and run.last_summary.batch.judged == 5
        t = run.table
        assert (t["judge_status"] == "ok").all() and (t["score"] == 3).all() and (t["parse_path"] == "structured").all()
        assert set(submitted_samples(run, server).values()) == {1}
        assert (run.batch_jobs()["state"] == "completed").all()

        calls = len(server.batch.calls)
        done = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, **judge)
        assert len(server.batch.calls) == calls and done.last_summary.already_done == 5  # a finished run sends nothing

        # the same run judged synchronously: the same requests, the same tokens, twice the price
        sync = vx.explain(tiny_clf, data, run_dir=tmp_path / "sync", progress=False, verbose=False,
                          **sync_judge(provider, server))
        assert len(server.requests) == 5
        by_image = {r.images[0]: r for r in server.requests}
        for line in server.batch.lines:
            body = by_image[line.images[0]].body
            assert line.text == by_image[line.images[0]].text
            assert {k: v for k, v in line.body.items() if k != "model"} == {k: v for k, v in body.items() if k not in ("model", "stream")}
        assert sync.usage() == run.usage() and run.usage()["input_tokens"] > 0
        assert run.cost().usd / sync.cost().usd == pytest.approx(0.5)

        fresh = vx.explain(tiny_clf, data, run_dir=tmp_path / "b", progress=False, verbose=False, **judge)
        assert fresh.last_summary.cached == 5 and len(server.batch.lines) == 5  # answers reached the judgment cache
        files = {**server.batch.files, **server.batch.deleted}
        uploaded = [f["bytes"].decode() for f in files.values()] + [json.dumps(x.body) for x in server.batch.lines]
        inputs = [name for name, f in files.items() if f["purpose"] == "batch"]
        assert len(inputs) == (0 if provider == "gemini" else 3)  # one file per job
        assert sorted(server.batch.deleted) == sorted(inputs)  # each deleted once its job was collected
    assert_no_key(tmp_path, out, capfd.readouterr().out, caplog.text, *uploaded)  # nor in what the provider got


@pytest.mark.parametrize("provider", PROVIDERS)
def test_per_request_errors_and_unreadable_lines_end_failed_with_reasons(tiny_clf, tmp_path, provider):
    data = vx.datasets.shapes(6, seed=12)
    with LoopbackServer() as server:
        server.add_fault("500", times=1)     # the first line: a per-request error (error file / inline error)
        server.add_fault("schema", times=1)  # the second: an answer missing a field
        server.batch.malformed = 1           # the last line of the output: unreadable
        judge = batch_judge(provider, server)
        vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        assert len(server.batch.lines) == 6 and len(server.batch.jobs) == 1  # failures are not resubmitted
    assert_settled(run)
    t = run.table
    assert (t["judge_status"] == "ok").sum() == 3
    errors = sorted(t.loc[t["judge_status"] == "failed", "error"])
    assert any("batch request failed" in e and "500" in e for e in errors)
    assert any(e.startswith("schema violation: missing fields: justification") for e in errors)  # as a sync reply
    assert any("without a readable result" in e for e in errors)
    assert run.last_summary.batch.unreadable == 1 and run.last_summary.batch.failed == 3
    jobs = run.batch_jobs()
    assert (jobs["judged"].sum(), jobs["failed"].sum(), jobs["in_flight"].sum()) == (3, 3, 0)


@pytest.mark.parametrize("provider,outcome", [("openai", "expired"), ("gemini", "expired"), ("gemini-file", "expired"),
                                              ("openai", "failed"), ("openai", "cancelled")])
def test_a_job_that_ends_without_answers_is_submitted_again_once(tiny_clf, tmp_path, provider, outcome):
    data = vx.datasets.shapes(5, seed=13)
    with LoopbackServer() as server:
        server.batch.plan = [outcome]  # the first job ends so; the next ones complete
        server.batch.answered_before_expiry = 2 if outcome == "expired" else 0
        judge = batch_judge(provider, server)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        vx.sync(run, verbose=False)  # ingests the partial output, submits the rest again
        p = run.last_summary
        answered = 2 if outcome == "expired" else 0
        assert p.judged == answered and p.resubmit == 5 - answered and p.submitted == 5 - answered
        assert len(server.batch.jobs) == 2
        run = vx.sync(tmp_path / "r", wait=True, poll_interval=0.01, timeout=10, verbose=False)
        assert run.last_summary.in_flight == 0
        per_sample = submitted_samples(run, server)
        assert sorted(per_sample.values()) == [1] * answered + [2] * (5 - answered)  # asked again once, no more
        assert len(set(server.batch.custom_ids())) == len(server.batch.lines)
        again = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        assert len(server.batch.lines) == 10 - answered and again.last_summary.already_done == 5
    assert_settled(run)
    assert (run.table["judge_status"] == "ok").all()
    states = run.batch_jobs()["state"].tolist()
    assert states == [outcome, "completed"]


def test_a_refused_key_submits_nothing_and_a_fixed_key_submits_everything(tiny_clf, tmp_path, monkeypatch):
    data = vx.datasets.shapes(4, seed=14)
    with LoopbackServer(required_key="sk-test-RIGHT-999") as server:
        judge = batch_judge("openai", server, max_requests_per_job=2)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        s = run.last_summary
        assert s.submitted == 0 and s.not_sent == 4 and "API key" in (s.problem or "")
        assert server.batch.lines == [] and (run.batch_jobs()["state"] == "abandoned").all()
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-RIGHT-999")
        vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        run = vx.sync(tmp_path / "r", verbose=False)
        assert len(server.batch.lines) == 4 and (run.table["judge_status"] == "ok").all()


def test_a_batch_judge_on_its_own_waits_for_its_job(tiny_clf, tmp_path):
    data = vx.datasets.shapes(3, seed=15)
    with LoopbackServer() as server:
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False,
                         **batch_judge("openai", server))
        judge = vx.make_judge("openai-batch:gpt-4o-mini", base_url=server.openai_base_url, poll_interval=0.01,
                              max_requests_per_job=2)
        server.batch.polls_to_finish = 2
        got = dict(judge.judge_many([run.judge_input(sid) for sid in run.table["id"]]))
        judge.close()
    assert sorted(got) == [0, 1, 2] and all(j.ok and j.score == 3 for j in got.values())
    per_job = Counter(line.job_id for line in server.batch.lines)
    assert len(per_job) == 3 and sorted(per_job.values()) == [1, 2, 3]  # explain's job, then chunks of 2 + 1


# --- kills ----------------------------------------------------------------------------------------

KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    import vlmxplain as vx
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    run = vx.explain(clf, vx.datasets.shapes(int(sys.argv[2]), seed=16), judge=sys.argv[3],
                     judge_options=json.loads(sys.argv[4]), run_dir=sys.argv[1], progress=True)
    print("RESULT", run.last_summary.submitted)
    """
)


def _job_rows(db: Path) -> list[tuple]:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT nonce, job_id, state FROM batch_jobs").fetchall()
    except sqlite3.OperationalError:
        return []


@pytest.mark.parametrize("provider,moment", [("openai", "after_job_created"), ("openai", "before_job_created"),
                                             ("gemini", "after_job_created"), ("gemini-file", "before_job_created")])
def test_sigkill_around_job_creation_never_submits_twice(tiny_clf, tmp_path, capfd, monkeypatch, provider, moment):
    n, run_dir = 4, tmp_path / "killed"
    script = tmp_path / "kill_batch.py"
    script.write_text(KILL_SCRIPT)
    torch_seeded = __import__("torch")
    with LoopbackServer() as server:
        if moment == "after_job_created":
            server.batch.create_hold = 60.0  # the job exists; its id never reaches the client
        else:
            server.batch.upload_hold = 60.0  # the client dies uploading: no job is ever created
        event = server.batch.created if moment == "after_job_created" else server.batch.uploading
        # both processes are configured through the SDKs' own variables
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        judge = batch_judge(provider, server)["judge"]
        proc = subprocess.Popen([sys.executable, str(script), str(run_dir), str(n), judge,
                                 json.dumps({**TINY, **transport(provider)})],
                                env=dict(os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while not event.wait(0.05):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the run never submitted"
        rows = _job_rows(run_dir / "run.sqlite")
        assert len(rows) == 1 and rows[0][1:] == (None, "intent")  # the intent is recorded before the job exists
        proc.send_signal(signal.SIGKILL)
        killed_out, killed_err = proc.communicate()
        server.batch.create_hold = server.batch.upload_hold = 0.0
        server.batch.release.set()
        time.sleep(0.05)

        torch_seeded.manual_seed(0)  # the script's classifier, in this process
        from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
        clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
        if moment == "before_job_created":  # just after a kill, its creation could still be on its way
            early = vx.explain(clf, vx.datasets.shapes(n, seed=16), judge=judge, run_dir=run_dir, progress=False,
                               judge_options={"poll_interval": 0.01, **transport(provider)})  # the default grace: 120 s
            assert early.last_summary.batch.in_flight == n and early.last_summary.submitted == 0
            assert server.batch.lines == [] and _job_rows(run_dir / "run.sqlite")[0][2] == "intent"
        run = vx.explain(clf, vx.datasets.shapes(n, seed=16), judge=judge, judge_options={**TINY, **transport(provider)},
                         run_dir=run_dir, progress=False)
        run = vx.sync(run, wait=True, poll_interval=0.01, timeout=10)
        out = capfd.readouterr()
    assert len(server.batch.jobs) == 1  # adopted by its nonce, or created once after the kill
    assert set(submitted_samples(run, server).values()) == {1} and len(server.batch.lines) == n
    jobs = run.batch_jobs()
    if moment == "after_job_created":
        assert jobs["adopted"].tolist() == [True] and jobs["state"].tolist() == ["completed"]
    else:
        assert jobs["state"].tolist() == ["abandoned", "completed"] and not jobs["adopted"].any()
    assert (run.table["judge_status"] == "ok").all()
    assert not list((run_dir / "batch-spool").glob("*"))  # spooled requests do not outlive their job
    assert all(key == (SECRET if provider == "openai" else GSECRET) for _, _, key in server.batch.calls)
    assert_no_key(tmp_path, killed_out.decode(), killed_err.decode(), out.out, out.err)


def test_jobs_table_records_what_a_job_carries(tiny_clf, tmp_path):
    data = vx.datasets.shapes(3, seed=17)
    with LoopbackServer() as server:
        server.batch.outcome = None
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False,
                         alpha=20, beta=0.5, **batch_judge("openai", server))
    with sqlite3.connect(tmp_path / "r" / "run.sqlite") as c:
        job = c.execute("SELECT provider, job_id, judge_id, prompt_version, alpha, beta, state, n_requests, created, "
                        "submitted FROM batch_jobs").fetchone()
        reqs = c.execute("SELECT custom_id, sample_id, cache_key, state FROM batch_requests").fetchall()
    assert job[:3] == ("openai-batch", next(iter(server.batch.jobs)), "openai-batch:gpt-4o-mini")
    assert job[3] == run.view.judge.prompt_version and job[4:8] == (20.0, 0.5, "submitted", 3)
    assert job[8] <= job[9]
    assert sorted(r[1] for r in reqs) == sorted(data.ids) and {r[3] for r in reqs} == {"in_flight"}
    assert sorted(r[0] for r in reqs) == sorted(server.batch.custom_ids())  # custom_id ↔ sample id
    sent = {json.loads(line)["custom_id"] for f in server.batch.files.values() if f["purpose"] == "batch"
            for line in f["bytes"].decode().splitlines()}
    assert sent == {r[0] for r in reqs} and math.isclose(run.alpha, 20)


def test_rejudge_with_a_batch_judge_submits_from_the_store_and_sync_collects(tiny_clf, tmp_path):
    data = vx.datasets.shapes(4, seed=18)
    run = vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path / "r", progress=False,
                     verbose=False)
    with LoopbackServer() as server:
        server.batch.outcome = None
        spec = batch_judge("openai", server)
        run = vx.rejudge(run, judge=spec["judge"], judge_options=spec["judge_options"], beta=0.5, progress=False)
        assert run.last_summary.submitted == 4 and run.view.judge.judge == spec["judge"] and run.beta == 0.5
        assert (run.table["judge_status"] == "pending").all()
        vx.rejudge(run, judge=spec["judge"], judge_options=spec["judge_options"], beta=0.5, progress=False)
        assert len(server.batch.lines) == 4  # in flight: not submitted twice
        server.batch.finish("completed")
        run = vx.sync(tmp_path / "r", verbose=False)
    assert run.last_summary.judged == 4 and (run.table["judge_status"] == "ok").all()
    assert (run.table_for(judge="offline:groundtruth", beta=0.6)["judge_status"] == "ok").all()  # the offline view kept


def test_readme_batch_example_runs_against_the_loopback_server(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Provider batch APIs", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    with LoopbackServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    run = namespace["run"]
    assert "8 requests submitted in 1 jobs" in capsys.readouterr().out
    assert (run.table["judge_status"] == "ok").all() and len(server.batch.lines) == 8
    u = run.usage()
    assert u["requests"] == 8 and run.cost().usd == pytest.approx(
        (u["input_tokens"] * 0.15 + u["output_tokens"] * 0.60) / 2e6)  # gpt-4o-mini at half price


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sync_cancel_cancels_open_jobs_and_submits_nothing(tiny_clf, tmp_path, provider):
    data = vx.datasets.shapes(3, seed=19)
    with LoopbackServer() as server:
        server.batch.outcome = None
        vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **batch_judge(provider, server))
        run = vx.sync(tmp_path / "r", cancel=True, verbose=False)
        assert any("cancel" in path for method, path, _ in server.batch.calls if method == "POST")
        assert run.last_summary.resubmit == 3 and run.last_summary.submitted == 0 and len(server.batch.lines) == 3
        assert run.batch_jobs()["state"].tolist() == ["cancelled"]
        assert (run.table["judge_status"] == "pending").all()
        server.batch.outcome = "completed"
        run = vx.sync(run, wait=True, timeout=10, verbose=False)  # a later sync asks them again, once
        assert len(server.batch.lines) == 6 and (run.table["judge_status"] == "ok").all()


def test_jobs_are_chunked_by_size_too(tiny_clf, tmp_path):
    data = vx.datasets.shapes(3, seed=20)
    with LoopbackServer() as server:
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False,
                         **batch_judge("gemini", server, max_bytes_per_job=1000))  # smaller than one request
        assert run.last_summary.batch.jobs_submitted == 3 and len(server.batch.jobs) == 3
        assert sorted(Counter(line.job_id for line in server.batch.lines).values()) == [1, 1, 1]


def test_gemini_jobs_go_inline_when_they_fit_and_as_an_uploaded_file_when_not(tiny_clf, tmp_path, monkeypatch):
    from vlmxplain.judges.vlm.batch_apis import GeminiBatchAPI

    data = vx.datasets.shapes(4, seed=20)
    with LoopbackServer() as server:
        server.batch.outcome = None
        small = vx.explain(tiny_clf, data, run_dir=tmp_path / "small", progress=False, verbose=False,
                           **batch_judge("gemini", server, max_requests_per_job=2))
        assert small.view.judge.options["gemini_input"] == "auto"
        monkeypatch.setattr(GeminiBatchAPI, "inline_bytes", 20_000)  # about one request: a 2-request job does not fit
        large = vx.explain(tiny_clf, data, run_dir=tmp_path / "large", progress=False, verbose=False, cache=False,
                           **batch_judge("gemini", server, max_requests_per_job=2))
        by_run = [[job["_source"] for job in list(server.batch.jobs.values())[k:k + 2]] for k in (0, 2)]
        assert by_run[0] == [None, None]  # inline
        assert by_run[1] == [GeminiBatchAPI.input_file(n) for n in large.batch_jobs()["nonce"]]  # one file each
        server.batch.finish("completed")
        for run in (small, large):
            run = vx.sync(run, verbose=False)
            assert run.last_summary.judged == 4 and (run.table["judge_status"] == "ok").all()
        assert sorted(server.batch.deleted) == sorted(by_run[1]) and not any(
            f["purpose"] == "batch" for f in server.batch.files.values())  # inputs deleted, results kept
    with pytest.raises(ValueError, match="gemini_input"):
        vx.make_judge("gemini-batch:gemini-2.5-flash", gemini_input="gcs")


def test_repeated_sampling_submits_one_request_per_answer_once(tiny_clf, tmp_path):
    data = vx.datasets.shapes(3, seed=21)
    with LoopbackServer() as server:
        server.batch.outcome = None
        judge = batch_judge("openai", server, temperature=0.7)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, repeats=2, **judge)
        assert run.last_summary.submitted == 6 and len(set(server.batch.custom_ids())) == 6
        vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, repeats=2, **judge)
        assert len(server.batch.lines) == 6  # every answer in flight: nothing submitted twice
        server.batch.finish("completed")
        run = vx.sync(tmp_path / "r", verbose=False)  # the run's jobs asked for 2 answers per sample
        assert run.last_summary.judged == 6 and len(server.batch.lines) == 6
    answers = run.store.judgments(run.judge)
    assert sorted(answers.groupby("id")["repeat"].apply(sorted).tolist()) == [[0, 1]] * 3
    assert set(submitted_samples(run, server).values()) == {2}


def test_sync_rebuilds_a_named_template_and_refuses_other_questions(tiny_clf, tmp_path):
    data = vx.datasets.shapes(2, seed=22)
    with LoopbackServer() as server:
        server.batch.outcome = None
        judge = batch_judge("gemini", server, template="paper-strict")
        vx.explain(tiny_clf, data, run_dir=tmp_path / "r", progress=False, verbose=False, **judge)
        with pytest.raises(ValueError, match="another question"):
            vx.sync(tmp_path / "r", judge_options={"image_size": 256}, verbose=False)
        server.batch.finish("completed")
        run = vx.sync(tmp_path / "r", verbose=False)
    assert run.last_summary.judged == 2 and (run.table["judge_status"] == "ok").all()
    assert run.view.judge.options["template"] == "paper-strict"


def test_merge_refuses_shards_with_open_jobs_then_carries_their_jobs(tiny_clf, tmp_path):
    data = vx.datasets.shapes(6, seed=11)
    with LoopbackServer() as server:
        server.batch.outcome = None  # in progress until finished below
        judge = batch_judge("openai", server)
        shards = [vx.explain(tiny_clf, data, run_dir=tmp_path / f"s{k}", shard=(k, 2), progress=False, verbose=False,
                             **judge) for k in range(2)]
        assert sum(s.last_summary.submitted for s in shards) == 6
        with pytest.raises(ValueError, match=r"s0: 1 provider batch job\(s\) still open.*vx.sync"):
            vx.merge_runs([s.run_dir for s in shards], into=tmp_path / "all")
        assert not (tmp_path / "all").exists()  # refused before anything was written
        server.batch.finish("completed")
        for s in shards:
            vx.sync(s.run_dir)
        merged = vx.merge_runs([s.run_dir for s in shards], into=tmp_path / "all")
    assert (merged.table["judge_status"] == "ok").all() and len(merged) == 6
    jobs = merged.batch_jobs()
    assert len(jobs) == 2 and (jobs["state"] == "completed").all() and jobs["judged"].sum() == 6
    assert vx.merge_runs([s.run_dir for s in shards], into=tmp_path / "all").batch_jobs().equals(jobs)  # idempotent
