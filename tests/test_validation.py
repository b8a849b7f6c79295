"""Judge validation in one call: agreement with humans, with the faithfulness metrics, with another
judge, and the sanity check (true CAM vs inverted and model-randomised maps) — which a judge that
does not measure attention must be able to fail."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vlmxplain as vx
from vlmxplain import metrics as vxm, models as vxmod


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


@pytest.fixture(scope="module")
def clf():
    return vxmod.shapes_model(progress=False)


@pytest.fixture(scope="module")
def run(clf, tmp_path_factory):
    data = vx.datasets.shapes(30, seed=404)
    run = vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path_factory.mktemp("val") / "run",
                     progress=False, verbose=False)
    vx.rejudge(run, judge="offline:insertion-deletion", judge_options={"steps": 8}, classifier=clf, progress=False,
               make_current=False)
    judged = run.table_for("offline:insertion-deletion")["score"]
    rng = np.random.default_rng(0)
    for sample_id, score in judged.items():  # a human who mostly agrees, on a half-point scale
        noisy = np.clip(np.round(2 * (score + rng.normal(0, 0.3))) / 2, 0, 5)
        run.store.put_annotation(sample_id, "alice", float(noisy))
    return run


def test_randomised_classifier_is_a_new_model_and_leaves_the_original(clf):
    before = clf.fingerprint
    rand = vxm.randomised_classifier(clf, seed=1)
    assert rand.fingerprint != before and clf.fingerprint == before
    w0, w1 = clf.model.state_dict(), rand.model.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if w0[k].is_floating_point())
    assert rand.target_layer is rand.model.get_submodule(clf.target_layer_name)


def test_the_insertion_deletion_judge_passes_the_sanity_check(run, clf):
    check = vxm.sanity_check(run, "offline:insertion-deletion", classifier=clf, judge_options={"steps": 8},
                             progress=False)
    s = check.summary.set_index("control")
    assert check.passed and s.loc["inverted", "win_rate"] >= 0.9 and s.loc["inverted", "n"] == 30
    assert s.loc["randomised", "win_rate"] >= 0.7 and s.loc["randomised", "ci_low"] > 0.5
    assert (s["ci_low"] <= s["win_rate"]).all() and (s["win_rate"] <= s["ci_high"]).all()


def test_the_legacy_judge_is_caught_by_the_sanity_check(run, clf):
    check = vxm.sanity_check(run, "offline:faithfulness", classifier=clf, controls=["inverted"], progress=False)
    assert not check.passed  # its black-masked confidence ratio does not follow the attention


def test_validate_judge_reports_every_part_with_cis(run, clf):
    v = vx.validate_judge(run, "offline:insertion-deletion", other_judge="offline:groundtruth", classifier=clf,
                          judge_options={"steps": 8}, n_boot=200, progress=False)
    frame = v.to_frame()
    assert set(frame["part"]) == {"human", "metrics", "other judge", "sanity"}
    metrics = v.metrics.reset_index().set_index(["reference", "method"])
    # the judge follows the insertion - deletion gap (8 steps and divided by p, against 20 steps raw)
    assert metrics.loc[("insertion - deletion", "spearman"), "estimate"] > 0.7
    assert metrics.loc[("deletion_auc", "spearman"), "estimate"] < 0
    ok = frame.dropna(subset=["estimate", "ci_low"])
    assert (ok.ci_low <= ok.estimate + 1e-9).all() and (ok.estimate <= ok.ci_high + 1e-9).all()
    assert "insertion_auc" in run.table.columns  # computed and stored on the way
    human = v.human.set_index(["rater", "method"])
    assert human.loc[("alice", "pearson"), "estimate"] > 0.8
    # the groundtruth judge gives ~5 to every clean shape at beta 0.6: no correlation is defined,
    # and the report says so instead of inventing one
    g = vx.validate_judge(run, "offline:groundtruth", metrics=None, sanity=False, n_boot=200, progress=False)
    assert g.human["estimate"].notna().all() or g.human["note"].str.len().gt(0).all()


def test_validate_judge_says_what_is_missing(clf, tmp_path):
    data = vx.datasets.shapes(6, seed=5)
    run = vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path / "r", progress=False, verbose=False)
    v = vx.validate_judge(run, metrics=None, sanity=False, other_judge="offline:insertion-deletion", n_boot=50,
                          progress=False)
    assert "no human annotations" in v.notes["human"] and "vx.rejudge" in v.notes["other judge"]
    with pytest.raises(ValueError, match="fewer than 3 scores"):
        vx.validate_judge(run, "offline:insertion-deletion", progress=False)
    with pytest.raises(ValueError, match="controls"):
        vxm.sanity_check(run, controls=["shuffled"], progress=False)
