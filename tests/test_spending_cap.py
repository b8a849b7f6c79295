"""The spending cap, ``explain(..., max_cost=...)``: the real ``openai`` / ``google-genai`` clients talk
to the loopback server, which reports a fixed token usage per answer (that of the judge's own
estimate), so what a capped run may send is arithmetic. Properties: the recorded cost never
passes the cap; the spend of earlier calls (any alpha/beta) counts, so a cap it already fills sends
nothing; a later call with a larger cap asks exactly the rest; hedged twins and batch submissions
fit the cap too (batch requests still in flight count); a judge with no price, or nothing to pay
for, and a cap that is not an amount are refused before the run exists. The accounting the cap
reads: an answer asked again keeps what the failed one it replaces was billed."""
from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from loopback_server import LoopbackServer
from test_batch import TINY, env  # noqa: F401 - env: the SDKs' environment cleared, test keys set
from test_hedging import STRAGGLER, asked, stream
from test_vlm_judges import FAST, build, make_item

import vlmxplain as vx
from vlmxplain.experiments.sweep import alpha_beta_sweep


@pytest.fixture(scope="module")
def shapes_run(tiny_clf, tmp_path_factory):
    """Eight shapes with their CAMs (an offline run): what a VLM judge is shown for each."""
    data = vx.datasets.shapes(8, seed=3)
    run = vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path_factory.mktemp("cams") / "run",
                     progress=False, verbose=False)
    return data, run


def spec(provider: str, server: LoopbackServer, **options) -> dict:
    if provider == "openai-batch":
        return dict(judge="openai-batch:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, **TINY,
                                                                     **options})
    if provider == "openai":
        return dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, **options})
    return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url, **options})


def estimates(run, judge: str, batch: bool = False, **options) -> tuple[float, int]:
    """The judge's largest per-request estimate over the run's samples: (USD, tokens in + out)."""
    j = vx.make_judge(judge, **options)
    j.cap_spend(1.0, batch=batch)
    requests = [j.prepare(run.judge_input(sid)) for sid in run.table["id"]]
    return max(j.spend_cap.estimate(r) for r in requests), max(r.payload[2] for r in requests)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_the_cap_holds_across_calls_and_a_larger_one_asks_exactly_the_rest(tiny_clf, shapes_run, tmp_path, provider):
    data, cams = shapes_run
    e, tokens = estimates(cams, {"openai": "openai:gpt-4o-mini", "gemini": "gemini:gemini-2.5-flash"}[provider])
    with LoopbackServer(usage=(tokens - 300, 300)) as server:  # every answer costs exactly the estimate e
        judge = spec(provider, server, concurrency=1)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, max_cost=3.2 * e,
                         **judge)
        s, t = run.last_summary, run.table
        assert len(server.requests) == 3  # the fourth would take the spend to 4e > 3.2e
        assert run.cost().usd == pytest.approx(3 * e) and run.cost().usd <= 3.2 * e
        assert "max_cost" in s.problem and s.not_sent == 5 and s.judged == 3
        left = t[t["judge_status"] != "ok"]
        reasons = left["error"].dropna()  # samples not yet prepared when judging stopped have no row
        assert len(left) == 5 and len(reasons) >= 1 and reasons.str.contains("spending cap").all()

        # the spend recorded by the earlier call counts: the same cap sends nothing more
        again = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, max_cost=3.2 * e,
                           **judge)
        assert len(server.requests) == 3 and again.last_summary.not_sent == 5 and "max_cost" in again.last_summary.problem

        done = vx.explain(tiny_clf, data, run_dir=tmp_path / "a", progress=False, verbose=False, max_cost=100 * e,
                          **spec(provider, server, concurrency=4))
        assert len(server.requests) == 8 and len({r.images[0] for r in server.requests}) == 8  # each asked once
        assert (done.table["judge_status"] == "ok").all() and done.last_summary.problem is None
        assert done.cost().usd == pytest.approx(8 * e)

        # another alpha: the judge's spend at every view counts (8e spent, one more request fits in 9.5e)
        again = vx.rejudge(done, alpha=10, max_cost=8.5 * e, progress=False, **judge)
        assert len(server.requests) == 8 and "max_cost" in again.last_summary.problem
        other = vx.rejudge(done, alpha=10, max_cost=9.5 * e, progress=False, **judge)
        assert len(server.requests) == 9 and other.last_summary.judged == 1 and other.last_summary.not_sent == 7


def test_hedged_twins_are_sent_only_where_the_cap_has_room(loopback_server):
    items = [make_item(i) for i in range(12)]
    probe = build("openai", loopback_server)
    probe.cap_spend(1.0)
    requests = [probe.prepare(it) for it in items]
    e, tokens = max(probe.spend_cap.estimate(r) for r in requests), max(r.payload[2] for r in requests)
    loopback_server.usage = (tokens - 300, 300)  # each answer costs e (the largest estimate)
    for cap, twinned in ((12.5 * e, False), (16 * e, True)):  # the control: room for the twins
        loopback_server.reset()
        loopback_server.add_fault("slow", match=STRAGGLER, times=1, delay=1.0)
        judge = build("openai", loopback_server, concurrency=4, hedge=True, **FAST)
        judge.cap_spend(cap)
        got = stream(judge, items)
        assert all(j.ok for _, j in got.values())
        assert got["s0"][0].hedged is twinned and (len(asked(loopback_server, STRAGGLER)) == 2) is twinned
        billed = sum(j.requests for _, j in got.values())
        assert billed * e <= cap + 1e-12 and judge.spend_cap.spent == pytest.approx(billed * e)
        for thread in [t for t in threading.enumerate() if t.name == "vlmx-judge"]:
            thread.join(timeout=15)


def test_batch_submissions_fit_the_cap_with_the_jobs_in_flight_counted(tiny_clf, shapes_run, tmp_path):
    data, cams = shapes_run
    e, tokens = estimates(cams, "openai-batch:gpt-4o-mini", batch=True)  # at the batch price
    with LoopbackServer(usage=(tokens - 300, 300)) as server:
        server.batch.outcome = None  # jobs stay in progress until the test finishes them
        judge = spec("openai-batch", server)
        # every CAM first (judging stops at the cap before the stream may have computed them all): what
        # sync submits later is then every sample not yet submitted
        vx.explain(tiny_clf, data, run_dir=tmp_path / "b", judge="offline:groundtruth", progress=False, verbose=False)
        run = vx.explain(tiny_clf, data, run_dir=tmp_path / "b", progress=False, verbose=False, max_cost=2.5 * e, **judge)
        assert run.last_summary.submitted == 2 == len(server.batch.lines) and "max_cost" in run.last_summary.problem
        # the two in flight are charged at the estimate: nothing more fits
        again = vx.explain(tiny_clf, data, run_dir=tmp_path / "b", progress=False, verbose=False, max_cost=2.5 * e,
                           **judge)
        assert again.last_summary.submitted == 0 and len(server.batch.lines) == 2
        server.batch.finish("completed")
        collected = vx.sync(tmp_path / "b", verbose=False)  # under the cap of the last call: collects, submits nothing
        assert collected.last_summary.judged == 2 and collected.last_summary.submitted == 0
        assert collected.cost().usd == pytest.approx(2 * e) and collected.cost().usd <= 2.5 * e
        assert vx.sync(tmp_path / "b", verbose=False).last_summary.submitted == 0  # the cap stays the run's
        rest = vx.sync(tmp_path / "b", max_cost=8.5 * e, verbose=False)
        assert rest.last_summary.submitted == 6 and len(server.batch.lines) == 8
        assert not vx.sync(tmp_path / "b", verbose=False).last_summary.problems


@pytest.mark.parametrize("value", [0, -1.0, True, "five", math.nan, math.inf])
def test_a_cap_that_is_not_an_amount_is_refused_before_the_run_exists(tiny_clf, tmp_path, value):
    with pytest.raises(ValueError, match="max_cost"):
        vx.explain(tiny_clf, vx.datasets.shapes(2), judge="openai:gpt-4o-mini", run_dir=tmp_path / "r",
                   max_cost=value, progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("judge, why", [
    ("offline:groundtruth", "makes no paid requests"),
    ("openai-compatible:qwen2.5-vl@http://127.0.0.1:9/v1", "not billed per token"),
    ("openai:gpt-unpriced", "no price for model 'gpt-unpriced'"),
])
def test_a_judge_that_cannot_be_capped_is_refused_before_the_run_exists(tiny_clf, tmp_path, judge, why):
    with pytest.raises(ValueError, match=why):
        vx.explain(tiny_clf, vx.datasets.shapes(2), judge=judge, run_dir=tmp_path / "r", max_cost=1.0, progress=False)
    assert not (tmp_path / "r").exists()


def test_readme_spending_cap_example_runs_against_the_loopback_server(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("**A spending cap.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    with LoopbackServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
        out = capsys.readouterr().out
        assert "the spending cap max_cost=$0.0010 is reached" in out and "8 requests" in out
        run = namespace["run"]
        assert (run.table["judge_status"] == "ok").all()
        assert len(server.requests) == 8 == len({r.images[0] for r in server.requests})  # nothing asked twice
        assert 0 < run.cost().usd <= 0.01


def test_an_answer_asked_again_keeps_what_the_one_it_replaces_was_billed(tmp_path):
    from vlmxplain.core.records import Judgment
    from vlmxplain.store import RunStore

    store = RunStore(tmp_path / "r")
    where = dict(alpha=25.0, beta=0.6, cache_key="k")
    truncated = Judgment.failure("openai:gpt-4o-mini", "v1", "truncated", input_tokens=100, output_tokens=10)
    store.put_judgment("a", truncated, cached=False, **where)
    store.put_judgment("a", Judgment(judge_id="openai:gpt-4o-mini", prompt_version="v1", score=3.0, input_tokens=200,
                                     output_tokens=20), cached=False, **where)  # retry_failed: a new, billed answer
    row = store.judgments().set_index("id").loc["a"]
    assert (row["input_tokens"], row["output_tokens"], row["requests"], row["judge_status"]) == (300, 30, 2, "ok")
    assert store.paid_tokens("openai:gpt-4o-mini") == (300, 30)
    # nothing carried from an error that billed nothing, nor into a cache hit (which costs nothing)
    store.put_judgment("b", Judgment.failure("openai:gpt-4o-mini", "v1", "HTTP 500"), cached=False, **where)
    store.put_judgment("b", Judgment(judge_id="openai:gpt-4o-mini", prompt_version="v1", score=2.0, input_tokens=50,
                                     output_tokens=5), cached=False, **where)
    store.put_judgment("c", truncated, cached=False, **where)
    store.put_judgment("c", Judgment(judge_id="openai:gpt-4o-mini", prompt_version="v1", score=1.0), cached=True,
                       **where)
    rows = store.judgments().set_index("id")
    assert (rows.loc["b", "input_tokens"], rows.loc["b", "requests"]) == (50, 1)
    assert (rows.loc["c", "input_tokens"], rows.loc["c", "cached"]) == (0, 1)
    # writes in one transaction() commit together or not at all (batch ingestion: an answer and its request state)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put_judgment("d", truncated, cached=False, **where)
            raise RuntimeError("killed between the two writes")
    assert "d" not in set(store.judgments()["id"])
    with store.transaction():
        store.put_judgment("d", truncated, cached=False, **where)
        store.put_judgment("e", truncated, cached=False, **where)
    assert {"d", "e"} <= set(store.judgments()["id"])


def test_a_sweep_with_a_vlm_judge_is_capped_as_a_whole(tiny_clf, shapes_run, tmp_path, monkeypatch):
    data, _ = shapes_run
    run = vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path / "s", progress=False,
                     verbose=False)
    e, tokens = estimates(run, "openai:gpt-4o-mini")
    with LoopbackServer(usage=(tokens - 300, 300)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        result = alpha_beta_sweep(run, alphas=[10, 25], betas=[0.6], judge="openai:gpt-4o-mini",
                                     classifier=tiny_clf, n_boot=0, max_cost=10.5 * e)
        assert len(server.requests) == 10  # the first cell in full, two of the second: 11e would pass 10.5e
        assert result.table.sort_values("alpha")["n_judged"].tolist() == [8, 2]
        alpha_beta_sweep(run, alphas=[10, 25], betas=[0.6], judge="openai:gpt-4o-mini", classifier=tiny_clf,
                            n_boot=0, max_cost=100 * e)
        assert len(server.requests) == 16  # the rest, nothing twice


def test_a_hosted_openai_compatible_model_is_priced_by_its_price_option(tiny_clf, shapes_run, tmp_path):
    data, cams = shapes_run
    price = {"input_per_mtok": 1.0, "output_per_mtok": 4.0, "image": "flat", "flat_tokens": 500}
    with LoopbackServer() as server:
        spec_ = f"openai-compatible:qwen2.5-vl@{server.openai_base_url}"
        e, tokens = estimates(cams, spec_, price=price)
        server.usage = (tokens - 300, 300)  # each answer costs e at this price
        with pytest.raises(ValueError, match="not billed per token"):  # without a price: a free local server
            vx.explain(tiny_clf, data, judge=spec_, run_dir=tmp_path / "r", max_cost=1.0, progress=False)
        options = {"price": price, "concurrency": 1}
        run = vx.explain(tiny_clf, data, judge=spec_, judge_options=options, run_dir=tmp_path / "r", max_cost=2.5 * e,
                         progress=False, verbose=False)
        assert len(server.requests) == 2 and run.cost().usd == pytest.approx(2 * e)
        assert vx.open_run(tmp_path / "r").cost().usd == pytest.approx(2 * e)  # the price is recorded with the judge
        estimate = vx.estimate_cost(8, judge=vx.make_judge(spec_, price=price)).usd  # a dry run prices it too
        assert estimate > 0 and estimate == vx.estimate_cost(8, judge=spec_, prices={"qwen2.5-vl": price}).usd
        done = vx.explain(tiny_clf, data, judge=spec_, judge_options=options, run_dir=tmp_path / "r",
                          max_cost=100 * e, progress=False, verbose=False)
        assert len(server.requests) == 8 and done.cost().usd == pytest.approx(8 * e)
        assert done.cost(prices={"qwen2.5-vl": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}}).usd == 0.0
