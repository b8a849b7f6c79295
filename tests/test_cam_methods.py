"""``vx.compare_cams``: CAM methods and target layers compared on one dataset. The comparison must
be able to disagree (an inverted-map control ranks worst, its difference to GradCAM has a CI
excluding 0), reruns compute nothing, and every table adds up."""
from __future__ import annotations

import numpy as np
import pytest
from pytorch_grad_cam import GradCAM

import vlmxplain as vx
from vlmxplain import models as vxmod
from vlmxplain.cams import CamMethod, register_cam_method, unregister_cam_method
from vlmxplain.core.quadrants import QUADRANTS
from vlmxplain.experiments import CamMethodsParams

CONTROL = "inverted-gradcam"


class InvertedGradCAM(GradCAM):
    """A control that cannot be right: GradCAM's map turned upside down (``max - v``), so after
    min-max normalisation it is exactly the inverse ``1 - v`` of GradCAM's map."""

    def get_cam_image(self, *args, **kwargs):
        cams = np.maximum(super().get_cam_image(*args, **kwargs), 0)
        return cams.max(axis=(1, 2), keepdims=True) - cams


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


@pytest.fixture(scope="module")
def clf():
    return vxmod.shapes_model(progress=False)


@pytest.fixture(scope="module")
def data():
    return vx.datasets.shapes(16, seed=4242)


@pytest.fixture(scope="module")
def control():
    register_cam_method(CamMethod(CONTROL, InvertedGradCAM))
    yield CONTROL
    unregister_cam_method(CONTROL)


@pytest.fixture(scope="module")
def with_control(clf, data, control, tmp_path_factory):
    """GradCAM, LayerCAM and the inverted control on 12 shapes, judged by offline:insertion-deletion."""
    return _compare(clf, data, tmp_path_factory.mktemp("control"), ["gradcam", "layercam", control],
                    judge="offline:insertion-deletion", judge_options={"steps": 5}, limit=12)


def _compare(clf, data, tmp_path, methods, **kw):
    """Fast settings: 5 perturbation steps, deletion/insertion AUC only, the ground-truth judge."""
    kw.setdefault("steps", 5)
    kw.setdefault("metrics", ["deletion_auc", "insertion_auc"])
    kw.setdefault("judge", "offline:groundtruth")
    kw.setdefault("n_boot", 400)
    return vx.compare_cams(clf, data, methods, run_dir=tmp_path / "cams", cache=tmp_path / "judgments.sqlite", **kw)


def test_inverted_control_ranks_worst_with_a_ci_excluding_zero(with_control, control):
    r = with_control
    t = r.table
    assert t["gap"].idxmin() == control and r.best("gap") != control
    diff = r.paired("gap", against="gradcam").loc[control]
    assert diff["ci_high"] < 0 and diff["distinguishable"] and diff["n"] == 12
    assert t.loc[control, "win_vs_inverted_ci_high"] < 0.5 < t.loc["gradcam", "win_vs_inverted_ci_low"]
    assert any(control in f and "inverse" in f for f in r.findings)
    # the judge (offline:insertion-deletion) sees it too: the control's scores are lower, and real
    assert r.best("score") != control
    assert r.paired("score", against="gradcam").loc[control, "ci_high"] < 0


def test_rerun_computes_nothing(clf, data, tmp_path):
    first = _compare(clf, data, tmp_path, ["gradcam", "eigencam"], sanity=True)
    calls = []
    hook = clf.model.register_forward_hook(lambda *a: calls.append(1))  # CAMs, metrics and judges all run it
    try:
        again = _compare(clf, data, tmp_path, ["gradcam", "eigencam"], sanity=True)
    finally:
        hook.remove()
    assert not calls
    assert all(s.cams_computed == 0 and s.judged == 0 and s.already_done == len(data) for s in again.summaries.values())
    cols = ["score", "gap", "deletion_auc", "win_vs_inverted", "judge_wins_vs_inverted", *QUADRANTS]
    assert first.table[cols].equals(again.table[cols])
    assert first.summaries["gradcam"].cams_computed == len(data)


def test_transitions_sum_to_the_shared_samples_and_match_the_samples(clf, data, tmp_path):
    r = _compare(clf, data, tmp_path, ["gradcam", "eigencam"], limit=12)
    tr = r.transitions("gradcam", "eigencam")
    shared = set(r.runs["gradcam"].table["id"]) & set(r.runs["eigencam"].table["id"])
    assert int(tr.to_numpy().sum()) == len(shared) == 12
    q = r.samples.pivot(index="id", columns="variant", values="quadrant")
    for (qa, qb), n in q.groupby(["gradcam", "eigencam"]).size().items():
        assert tr.loc[qa, qb] == n
    assert r.comparison("gradcam", "eigencam").moved["id"].tolist() == sorted(q.index[q["gradcam"] != q["eigencam"]])
    moved = r.moved_shares
    assert moved.loc["gradcam", "eigencam"] == moved.loc["eigencam", "gradcam"] == pytest.approx(
        int(tr.to_numpy().sum() - np.trace(tr.to_numpy())) / 12) and moved.loc["gradcam", "gradcam"] == 0
    shares = r.quadrant_shares
    assert np.allclose(shares.sum(axis=1), 1.0)  # every sample of a correct/wrong label is in one quadrant


def test_one_row_per_method_and_layer(clf, data, tmp_path):
    r = _compare(clf, data, tmp_path, ["gradcam", "eigencam"], layers=["head_conv", "features.6"], limit=6,
                 n_boot=100)
    assert list(r.table.index) == ["gradcam@head_conv", "eigencam@head_conv", "gradcam@features.6",
                                   "eigencam@features.6"]
    assert list(r.table["layer"]) == ["head_conv", "head_conv", "features.6", "features.6"]
    assert len({run.run_dir for run in r.runs.values()}) == 4 and (r.table["n"] == 6).all()
    # each run's CAMs come from its own layer: 16x16 at the head, 32x32 before the second pooling
    sid = r.runs["gradcam@head_conv"].table["id"].iloc[0]
    assert r.runs["gradcam@head_conv"].cam(sid)["map"].shape == (16, 16)
    assert r.runs["gradcam@features.6"].cam(sid)["map"].shape == (32, 32)
    assert r.runs["gradcam@features.6"].config.classifier.target_layer == "features.6"


def test_bad_names_fail_before_any_work(clf, data, tmp_path):
    with pytest.raises(ValueError, match=r"methods: unknown CAM method 'gradkam' \(did you mean 'gradcam'\?\)"):
        _compare(clf, data, tmp_path, ["gradcam", "gradkam"])
    with pytest.raises(ValueError, match=r"layers: .* has no module 'head_cnv' \(did you mean 'head_conv'\?\)"):
        _compare(clf, data, tmp_path, ["gradcam"], layers=["head_cnv"])
    with pytest.raises(ValueError, match="methods: each method once"):
        _compare(clf, data, tmp_path, ["gradcam", "Grad-CAM"])
    with pytest.raises(ValueError, match="judge"):
        _compare(clf, data, tmp_path, ["gradcam"], judge="offline:nonsense")
    assert not (tmp_path / "cams").exists()
    with pytest.raises(ValueError, match=r"^methods: unknown CAM method 'gradkam' \(did you mean 'gradcam'\?\)"):
        CamMethodsParams.check(methods=["gradkam"])


def test_figures_show_every_method_with_its_ci(with_control, control):
    r = with_control
    fig = vx.plot_cam_metrics(r)
    assert len(fig.axes) == 4  # score, gap, deletion AUC, insertion AUC
    gap_ax = fig.axes[1]
    bars = {b.get_gid(): b for b in gap_ax.patches if b.get_gid()}
    assert set(bars) == {f"bar-{lab}" for lab in r.labels}
    assert bars[f"bar-{control}"].get_height() == pytest.approx(r.table.loc[control, "gap"])
    assert r.table.loc[control, "gap"] < 0
    # error bars span each CI: one cap pair per method
    caps = [line for line in gap_ax.lines if len(line.get_xdata()) == len(r.labels)]
    assert {round(float(y), 6) for line in caps for y in line.get_ydata()} == {
        round(float(v), 6) for v in r.table[["gap_ci_low", "gap_ci_high"]].to_numpy().ravel()}
    heat = vx.plot_quadrant_shares(r)
    texts = [t.get_text() for t in heat.axes[0].texts]
    assert len(texts) == len(r.labels) * 4 and all(t.endswith("%") for t in texts)
    tr = vx.plot_cam_transitions(r, "gradcam", control)
    moved = len(r.comparison("gradcam", control).moved)
    assert f"({moved} of 12 samples moved)" in tr.axes[0].get_title()


def test_registered_methods_are_checked_and_removable():
    name = "another-control"
    register_cam_method(CamMethod(name, InvertedGradCAM))
    assert CamMethodsParams.check(methods=[name, "gradcam"]).methods == (name, "gradcam")
    with pytest.raises(ValueError, match="not a new lower-case method name"):
        register_cam_method(CamMethod("gradcam", InvertedGradCAM))
    with pytest.raises(TypeError, match="BaseCAM"):
        register_cam_method(CamMethod("not-a-cam", dict))
    unregister_cam_method(name)
    with pytest.raises(ValueError, match="unknown CAM method"):
        CamMethodsParams.check(methods=[name])
