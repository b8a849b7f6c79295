"""Mislabel detection: run.mislabel_suspects() ranks confident disagreements whose attention the
judge finds good; vx.mislabel_report scores it against the true labels beside a confidence-only
baseline."""
from __future__ import annotations

import numpy as np
import pytest

import vlmxplain as vx
from vlmxplain import models as vxmod


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    clf = vxmod.shapes_model(progress=False)
    data = vx.datasets.shapes(40, label_noise=0.25, seed=77)
    return vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path_factory.mktemp("mis") / "run",
                      progress=False, verbose=False)


def test_suspects_rank_the_flipped_labels_first(run):
    s = run.mislabel_suspects()
    meta = run.store.samples().set_index("id")["meta"]
    flipped = s["id"].map(lambda i: meta[i]["label_flipped"]).to_numpy()
    assert 4 <= flipped.sum() <= 18 and len(s) == 40
    assert s["suspicion"].is_monotonic_decreasing and s["suspicion"].between(0, 1).all()
    top = flipped[: flipped.sum()]
    assert top.mean() >= 0.8  # the model is right about the shape, so its disagreements are label errors
    assert (s.loc[s["flagged"], "quadrant"] == "Wrong-High").all()
    assert (s["label_confidence"] + s["baseline_suspicion"]).round(6).eq(1).all()


def test_report_matches_an_independent_count(run):
    rep = vx.mislabel_report(run, "meta")
    s = rep.suspects
    for method, flags in (("judge (Wrong-High)", s["flagged"]), ("confidence only", s["predicted_name"] != s["label"])):
        row = rep.summary.loc[method]
        tp = int((flags & s["mislabelled"]).sum())
        assert row.true_positives == tp and row.precision == pytest.approx(tp / flags.sum())
        assert row.recall == pytest.approx(tp / s["mislabelled"].sum())
        assert row.f1 == pytest.approx(2 * row.precision * row.recall / (row.precision + row.recall))
        assert row.recall >= 0.8 and row.average_precision >= 0.8
        curve = rep.curves[method]
        assert curve["precision"].between(0, 1).all() and curve["recall"].iloc[-1] == 0
    with pytest.raises(TypeError, match="true_labels"):
        vx.mislabel_report(run, ["circle"])
    truth = {sid: m["true_label"] for sid, m in zip(run.store.samples()["id"], run.store.samples()["meta"])}
    assert np.isclose(vx.mislabel_report(run, truth).summary.f1, rep.summary.f1).all()
