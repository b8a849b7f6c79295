"""The judging order: ``explain``/``rejudge`` work through the samples in a fixed pseudo-random
permutation (``order="shuffled"``, the default), so a run stopped early — here at its spending cap,
the real ``openai`` client talking to the loopback server, one request at a time — has judged a
random sample of a dataset sorted by class, and a resumed call continues the same permutation.
The encode pool may finish a request a few places early (``MARGIN``), so what a cap lets through
is the first answers of the order give or take those places. The control: in the dataset's order the same cap judges the first
class only. And the quadrant shares' intervals a stopped run is read with."""
from __future__ import annotations

import hashlib
import math
import warnings
from collections import Counter

import pandas as pd
import pytest
from loopback_server import LoopbackServer
from test_batch import env  # noqa: F401 - env: the SDKs' environment cleared, test keys set
from test_spending_cap import estimates

import vlmxplain as vx
from vlmxplain.core.quadrants import QUADRANTS, quadrant_summary
from vlmxplain.core.selection import check_order, in_order, order_key, orders_used, shard_of
from vlmxplain.pipeline.explain import partial_precision
from vlmxplain.reports.html_report import report_html

N, STOP, MARGIN = 60, 10, 6  # 20 samples per class, sorted by class; the cap stops after 10 answers


@pytest.fixture(scope="module")
def by_class():
    """60 shapes sorted by class (as a folder of class subfolders lists them) and their ids."""
    data = vx.datasets.shapes(N, seed=5)
    data = data.subset(sorted(range(N), key=lambda i: (data.ref(i).label, i)))
    return data, [data.ref(i).id for i in range(N)], {data.ref(i).id: data.ref(i).label for i in range(N)}


def judged_ids(run) -> list[str]:
    t = run.table
    return list(t.loc[t["judge_status"] == "ok", "id"])


def test_the_shuffled_order_is_a_fixed_permutation_apart_from_the_shards():
    ids = [f"img-{k:05d}" for k in range(2000)]
    shuffled = in_order(ids, "shuffled")
    assert sorted(shuffled) == ids and shuffled != ids  # a permutation, not the identity
    assert in_order(reversed(ids), "shuffled") == shuffled  # whatever order the ids come in
    assert in_order(ids, "dataset") == ids
    assert order_key("img-00007") == int.from_bytes(
        hashlib.sha256(b"vlmxplain judging order\0img-00007").digest()[:8], "little")
    # any prefix is spread over the dataset: the first 200 fall evenly in its ten blocks of 200
    blocks = Counter(ids.index(i) // 200 for i in shuffled[:200])
    assert len(blocks) == 10 and max(blocks.values()) < 40
    # the order does not follow the shards: within each of 4 shards, a prefix of its order is a
    # random sample too (a key shared with the shard hash would put the shard's ids in residue order)
    for k in range(4):
        mine = [i for i in shuffled if shard_of(i, 4) == k]
        assert max(Counter(ids.index(i) // 500 for i in mine[:100]).values()) < 45
    with pytest.raises(ValueError, match="order: one of 'shuffled', 'dataset'"):
        check_order("random")
    assert orders_used(None, "shuffled") == ["shuffled"] and orders_used(["shuffled"], "dataset") == ["dataset", "shuffled"]


def test_a_run_stopped_at_its_cap_has_judged_a_random_sample(tiny_clf, by_class, tmp_path, capsys):
    data, ids, label = by_class
    warm = vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path / "cams", progress=False,
                      verbose=False)
    e, tokens = estimates(warm, "openai:gpt-4o-mini")
    with LoopbackServer(usage=(tokens - 300, 300)) as server:  # every answer costs exactly the estimate e
        judge = dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, "concurrency": 1})

        def capped(run_dir, usd, **kw):
            return vx.explain(tiny_clf, data, run_dir=run_dir, progress=False, verbose=False, max_cost=usd, cache=False,
                              **judge, **kw)  # no cache: the control's answers would be free hits

        control = capped(tmp_path / "dataset-order", (STOP + 0.5) * e, order="dataset")
        assert len(judged_ids(control)) == STOP and set(judged_ids(control)) <= set(ids[:STOP + MARGIN])
        assert {label[i] for i in judged_ids(control)} == {"circle"}  # the control: the first class only
        assert control.judged_at_random is False and "need not be a random sample" in partial_precision(control)
        assert "need not be a random sample of the run" in report_html(control)

        order = in_order(ids, "shuffled")
        run = capped(tmp_path / "shuffled", (STOP + 0.5) * e)
        first = set(judged_ids(run))
        assert len(first) == STOP and first <= set(order[:STOP + MARGIN])
        assert run.judged_at_random is True and "are a random sample of the run's" in report_html(run)
        classes = Counter(label[i] for i in first)
        assert len(classes) >= 2 and max(classes.values()) <= 6  # the dataset's order: 10 of one class

        # a resumed call continues the same permutation: it judges the next 10, and says how far the
        # shares of a random sample of 20 can be trusted
        resumed = vx.explain(tiny_clf, data, run_dir=tmp_path / "shuffled", progress=False, verbose=True,
                             max_cost=(2 * STOP + 0.5) * e, cache=False, **judge)
        said = capsys.readouterr().out
        assert f"the {2 * STOP} samples judged so far are a random sample of the {N}" in said and "±" in said
        again = set(judged_ids(resumed))
        assert len(again) == 2 * STOP and first < again <= set(order[:2 * STOP + MARGIN])
        assert len(server.requests) == 3 * STOP  # nothing asked twice

        # rejudge at another alpha takes the same order, and its control the dataset's
        done = capped(tmp_path / "shuffled", 100 * e)
        spent = done.cost().usd
        vx.rejudge(done, alpha=10, max_cost=spent + (STOP + 0.5) * e, progress=False, cache=False, **judge)
        at_10 = set(judged_ids(vx.open_run(tmp_path / "shuffled")))
        assert len(at_10) == STOP and at_10 <= set(order[:STOP + MARGIN])
        vx.rejudge(done, alpha=11, max_cost=spent + (2 * STOP + 0.5) * e, progress=False, order="dataset",
                   cache=False, **judge)
        at_11 = judged_ids(vx.open_run(tmp_path / "shuffled"))
        assert len(at_11) == STOP and {label[i] for i in at_11} == {"circle"}


def test_quadrant_shares_come_with_wilson_intervals():
    table = pd.DataFrame({"correct": [True] * 10 + [False] * 10, "score": [5] * 5 + [0] * 5 + [5] * 10,
                          "label": ["a"] * 20})
    s = quadrant_summary(table, 2.5)
    ci = s.intervals()
    assert list(ci.index) == list(QUADRANTS) and list(ci.columns) == ["count", "share", "ci_low", "ci_high"]
    # 5 of 20: the Wilson score interval, computed by hand
    z, p, n = 1.959964, 0.25, 20
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert ci.loc["Correct-High", ["ci_low", "ci_high"]].tolist() == pytest.approx([centre - half, centre + half], abs=1e-6)
    assert ci.loc["Wrong-Low", "share"] == 0 and ci.loc["Wrong-Low", "ci_low"] == pytest.approx(0, abs=1e-12)
    assert 0.15 < ci.loc["Wrong-Low", "ci_high"] < 0.17  # nothing seen in 20: still up to ~16 %
    wider, narrower = s.intervals(0.99), s.intervals(0.5)
    assert (wider["ci_high"] - wider["ci_low"] > narrower["ci_high"] - narrower["ci_low"]).all()
    assert s.to_frame().equals(ci) and "25.0%" in s._repr_html_() and "95 % CI" in s._repr_html_()
    empty = quadrant_summary(table.assign(score=float("nan")), 2.5).intervals()
    assert empty["ci_low"].isna().all() and (empty["count"] == 0).all()
    with pytest.raises(ValueError, match="level"):
        s.intervals(95)


def test_a_sanity_check_on_a_subset_draws_it_at_random(tiny_clf, by_class, tmp_path):
    data, ids, _ = by_class
    run = vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path / "run", progress=False,
                     verbose=False)
    check = vx.metrics.sanity_check(run, controls=["inverted"], limit=STOP, progress=False)
    picked = list(check.table.index)
    assert picked == in_order(sorted(ids), "shuffled")[:STOP]  # the same draw on every call and machine
    assert picked != sorted(ids)[:STOP]  # not the first ids by name (in a class-folder run: the first classes)


def test_a_limit_that_keeps_few_classes_warns_and_sample_draws_at_random(by_class):
    data, ids, label = by_class
    with pytest.warns(vx.datasets.FewClassesWarning, match=r"limit=12 keeps the first 12 .* 1 of its 3 classes"):
        first = data.limit(12)
    assert {label[i] for i in first.ids} == {"circle"}
    pilot = data.sample(12)
    assert set(pilot.ids) == set(in_order(ids, "shuffled")[:12])  # what a run would judge first
    assert pilot.ids == [i for i in ids if i in set(pilot.ids)]  # kept in the dataset's order
    assert len({label[i] for i in pilot.ids}) == 3 and len(data.sample(1000)) == N
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the control: a dataset that cycles through its classes
        vx.datasets.shapes(N, seed=5).limit(12)
