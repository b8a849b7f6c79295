"""The shortcut ("red dot") experiment: CAM energy measures, parameters, splits, and the paper's
claim (|r(shortcut rate, flagged share)| > 0.5, control >= 95%) at a small size."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vlmxplain import experiments as vxe, viz
from vlmxplain import params as vxp
from vlmxplain.experiments import bias  # noqa: F401
from vlmxplain.masks import regions
from vlmxplain.models import training_spec
from vlmxplain.datasets import shapes

SMALL = dict(rates=[0.0, 0.75, 1.0], n_test=45)  # the notebook's default models: shared through the model cache


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


def png_array(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def assert_not_blank(img: np.ndarray) -> None:
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50


# ----------------------------------------------------------------------------- energy measures
def test_energy_on_mask_and_in_box_on_constructed_maps():
    v = np.ones((64, 64))
    assert regions.energy_in_box(v, (0, 0, 8, 8)) == pytest.approx(64 / 4096)
    assert regions.energy_in_box(v, (0, 0, 8, 8), margin=2) == pytest.approx(100 / 4096)  # clipped at the border
    peak = np.zeros((64, 64))
    peak[10:15, 20:25] = 1.0
    assert regions.energy_in_box(peak, (20, 10, 25, 15)) == pytest.approx(1.0)
    assert regions.energy_in_box(peak, (0, 0, 20, 10)) == 0.0
    half = np.zeros((64, 64))
    half[:, :32] = 3.0
    half[:, 32:] = 1.0
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True
    assert regions.energy_on_mask(half, mask) == pytest.approx(0.75)
    assert regions.energy_on_mask(np.zeros((4, 4)), np.ones((4, 4), bool)) == 0.0


@pytest.mark.parametrize("call, name", [
    (lambda: regions.energy_on_mask(np.ones((4, 4)), np.ones((5, 4))), "mask"),
    (lambda: regions.energy_on_mask(-np.ones((4, 4)), np.ones((4, 4))), "saliency"),
    (lambda: regions.energy_in_box(np.ones((4, 4)), (3, 3, 1, 1)), "box"),
    (lambda: regions.energy_in_box(np.ones((4, 4)), (0, 0, 1)), "box"),
    (lambda: regions.energy_in_box(np.ones(4), (0, 0, 1, 1)), "saliency"),
])
def test_energy_errors_name_the_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------------------------------- parameters and specs
def test_validate_bias_params_defaults_and_normalisation():
    p = vxe.validate_bias_params(rates=[1, 0, 0.5])
    assert p.rates == (0.0, 0.5, 1.0) and str(p.judge) == "offline:groundtruth" and p.explain_split == "dotted"
    assert vxe.validate_bias_params(rates=0.5).rates == (0.5,)
    assert vxe.validate_bias_params(cam="GradCAM").cam == "gradcam"


@pytest.mark.parametrize("bad, name", [
    (dict(rates=[0, 1.5]), "rates"), (dict(rates=[0.5, 0.5]), "rates"), (dict(rates=[]), "rates"),
    (dict(rates="abc"), "rates"), (dict(shortcut_class="star"), "shortcut_class"),
    (dict(classes=["circle"]), "classes"), (dict(explain_split="test"), "explain_split"),
    (dict(moved_position="top-left"), "moved_position"), (dict(moved_position="middle"), "moved_position"),
    (dict(judge="nope"), "judge"), (dict(alpha=-1), "alpha"), (dict(beta=2), "beta"),
    (dict(threshold=7), "threshold"), (dict(n_train=10), "n_train"), (dict(n_test=2.5), "n_test"),
    (dict(epochs=0), "epochs"), (dict(seed=-1), "seed"), (dict(cam="nocam"), "nocam"),
    (dict(control="yes"), "control"), (dict(run_dir=""), "run_dir"), (dict(bogus=1), "bogus"),
])
def test_validate_bias_params_names_the_bad_parameter(bad, name):
    with pytest.raises(ValueError, match=name):
        vxe.validate_bias_params(**bad)


def test_rate_zero_spec_is_the_offline_shapes_classifier_spec():
    # same spec -> same cache file as resolve_classifier("auto", "shapes")
    assert training_spec() == training_spec({}, rate=0.0) == {"n": 1800, "seed": 1000}
    assert training_spec({"seed": 2}, rate=0.5, shortcut_class="square") == {
        "n": 1800, "seed": 1002, "shortcut_on": "class", "shortcut_rate": 0.5, "shortcut_class": "square"}
    assert training_spec(rate=0.5, shortcut_on="all") == {
        "n": 1800, "seed": 1000, "shortcut_on": "all", "shortcut_rate": 0.5}
    assert training_spec({"seed": 3, "size": 48, "n": 60}) == {"n": 1800, "seed": 1003, "size": 48}


def test_splits_are_paired_and_place_the_dot():
    p = vxe.validate_bias_params(n_test=12, moved_position="bottom-right")
    splits = vxe.bias_splits(p)
    assert set(splits) == {"clean", "dotted", "moved"}
    for i in range(12):
        clean, dotted, moved = (splits[k][i] for k in ("clean", "dotted", "moved"))
        assert clean.id == dotted.id == moved.id and clean.label == dotted.label == moved.label
        assert np.array_equal(clean.mask, dotted.mask) and np.array_equal(clean.mask, moved.mask)
        assert clean.meta["shortcut_box"] is None
        assert dotted.meta["shortcut_box"] == (2, 2, 7, 7)
        assert moved.meta["shortcut_box"] == (57, 57, 62, 62)
        assert (np.asarray(dotted.image)[2:7, 2:7] == [255, 0, 0]).all()
    # never the training images: the test seed differs from the training seed
    train = shapes(**training_spec())
    assert not np.array_equal(np.asarray(train[0].image), np.asarray(splits["clean"][0].image))


# ----------------------------------------------------------------------------- the experiment
@pytest.fixture(scope="module")
def result(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bias-runs")
    return vxe.run_bias_experiment(**SMALL, run_dir=str(run_dir))


# Thresholds on trained ShapesNets hold for any reasonably trained model: each sits below the
# worst value measured by tools/margins.py over training seeds and CPU settings (one torch thread,
# the default threads, oneDNN limited to AVX2); the measurements are in the README's "Reliability
# and security" section. The paper's own claim (control >= 95%) is what the notebook reports.
def test_control_and_clean_model_learn_the_shapes(result):
    t = result.table.set_index("model")
    assert list(t.index) == ["rate-0", "rate-0.75", "rate-1", "control"]
    assert result.control_accuracy >= 0.9  # measured >= 0.978
    assert t.loc["rate-0", "accuracy_clean"] >= 0.9  # measured >= 0.978
    # a model that always saw the dot on circles cannot find undotted circles (measured <= 0.667)
    assert t.loc["rate-1", "accuracy_clean"] < 0.8
    # ... and calls (nearly) every dotted image a circle (measured >= 0.978; control <= 0.333)
    assert t.loc["rate-1", "predicted_shortcut_class"] > 0.9 > 0.45 > t.loc["control", "predicted_shortcut_class"]


def test_the_judge_flags_the_shortcut_models(result):
    t = result.table.set_index("model")
    flagged = t.loc[["rate-0", "rate-0.75", "rate-1"], "flagged_share"].to_numpy()
    # measured: rate-0 <= 0.022, rate-0.75 0.33-0.78, rate-1 >= 0.956 (0.75 and 1 can tie near 1: slack 0.1)
    assert flagged[0] < 0.15 and flagged[2] > 0.8 and flagged[0] < flagged[1] <= flagged[2] + 0.1
    assert t.loc["control", "flagged_share"] < 0.15
    # the paper's claim, at a small size
    assert result.r > 0.5
    corr = result.correlation
    assert corr.loc["flagged_share", "n_models"] == 3
    assert corr.loc["flagged_share", "pearson_r"] == pytest.approx(np.corrcoef([0, 0.75, 1], flagged)[0, 1])
    # the CAM moves onto the dot: energy in a 5x5 box (0.6% of the image) and the peak
    assert t.loc["rate-1", "energy_on_shortcut"] > 10 * t.loc["control", "energy_on_shortcut"]
    assert t.loc["rate-1", "peak_on_shortcut"] > 0.8 and t.loc["control", "peak_on_shortcut"] < 0.1
    assert t.loc["rate-1", "energy_on_object"] < t.loc["control", "energy_on_object"]


def test_per_sample_details_and_runs(result):
    s = result.samples
    assert len(s) == 4 * 45 and set(s["model"]) == {"rate-0", "rate-0.75", "rate-1", "control"}
    assert s["has_shortcut"].all() and s["energy_on_shortcut"].between(0, 1).all()
    for name, run in result.runs.items():
        part = s[s["model"] == name]
        table = run.table
        assert len(table) == 45 and (table["judge_status"] == "ok").all()
        share = part["quadrant"].isin(["Correct-Low", "Wrong-Low"]).mean()
        assert share == pytest.approx(result.table.set_index("model").loc[name, "flagged_share"])


def test_rerun_resumes_without_new_cams(result):
    again = vxe.run_bias_experiment(result.params)
    pd.testing.assert_frame_equal(again.table, result.table)
    assert all(run.last_summary.cams_computed == 0 and run.last_summary.already_done == 45
               for run in again.runs.values())


def test_shared_cache_with_the_offline_shapes_classifier(result):
    rate0 = next(m for m in vxe.train_bias_models(result.params) if m.name == "rate-0")
    assert vxp.resolve_classifier("auto", "shapes").fingerprint == rate0.classifier.fingerprint
    assert vxp.resolve_classifier("shortcut:0").fingerprint == rate0.classifier.fingerprint


def test_figures_are_drawn(result):
    assert_not_blank(png_array(viz.plot_bias_curve(result)))
    for view in ("dimmed", "masked", "overlay"):
        assert_not_blank(png_array(viz.plot_flagged_gallery(result, per_model=3, view=view)))
    assert_not_blank(png_array(viz.plot_split_examples(result.params)))
    with pytest.raises(ValueError, match="view"):
        viz.plot_flagged_gallery(result, view="nope")


def test_fewer_than_three_rates_leave_the_correlation_undefined(result, tmp_path):
    small = vxe.run_bias_experiment(rates=[0.0, 1.0], control=False, n_test=9, run_dir=str(tmp_path))
    assert len(small.table) == 2 and small.control_accuracy is None
    assert np.isnan(small.r) and "3+" in small.correlation.loc["flagged_share", "note"]


def test_right_for_the_wrong_reason_is_a_share_of_the_correct_predictions(result):
    t = result.table.set_index("model")
    for name in t.index:
        q = result.samples.loc[result.samples["model"] == name, "quadrant"]
        correct = q.isin(["Correct-High", "Correct-Low"])
        flagged = q.isin(["Correct-Low", "Wrong-Low"])
        assert t.loc[name, "n_correct"] == correct.sum()
        if correct.any():
            assert t.loc[name, "rfwr_share_of_correct"] == pytest.approx((q[correct] == "Correct-Low").mean())
        if flagged.any():
            assert t.loc[name, "wrong_share_of_flagged"] == pytest.approx((q[flagged] == "Wrong-Low").mean())
    assert {"accuracy_dotted", "accuracy_moved"} <= set(t.columns)
    assert "rfwr_share_of_correct" in result.correlation.index


def test_bias_over_seeds_gives_a_t_interval_on_r(tmp_path):
    from scipy import stats

    res = vxe.bias_over_seeds(seeds=(0, 1), rates=[0.0, 0.5, 1.0], control=False, n_train=60, epochs=1, n_test=9,
                              run_dir=str(tmp_path))
    assert list(res.per_seed.index) == [0, 1] and set(res.results) == {0, 1}
    r = res.per_seed["flagged_share"].dropna().to_numpy()
    row = res.summary.loc["flagged_share"]
    if len(r) == 2:
        half = stats.t.ppf(0.975, 1) * r.std(ddof=1) / np.sqrt(2)
        assert row.mean_r == pytest.approx(r.mean())
        assert row.ci_low == pytest.approx(max(-1, r.mean() - half)) and row.ci_high == pytest.approx(min(1, r.mean() + half))
    with pytest.raises(ValueError, match="seeds"):
        vxe.bias_over_seeds(seeds=(0,), rates=[0.0, 1.0])
