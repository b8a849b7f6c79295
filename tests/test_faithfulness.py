"""Faithfulness and localisation metrics, their storage in the run, and the offline judge built on
them: each checked against a control map (inverted, random) that must lose."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import vlmxplain as vx
from vlmxplain import metrics as vxm, models as vxmod
from vlmxplain.judges import make_judge
from vlmxplain.masks.images import preview_of
from vlmxplain.masks.judge_input import make_judge_input
from vlmxplain.masks.perturbation import (
    baseline_tensor, inverted, is_blank_map, perturbation_curves, pixel_ranks,
)
from vlmxplain.store.metrics_table import MetricsTable


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


@pytest.fixture(scope="module")
def clf():
    return vxmod.shapes_model(progress=False)


@pytest.fixture(scope="module")
def shapes_cams(clf):
    data = vx.datasets.shapes(30, seed=777)
    samples = [data[i] for i in range(len(data))]
    return samples, vx.compute_cams(clf, samples, "gradcam")


def _smooth_random_map(rng, shape=(16, 16)):
    return np.abs(rng.normal(size=(4, 4))).repeat(shape[0] // 4, 0).repeat(shape[1] // 4, 1)


# ----------------------------------------------------------------------------- perturbations
def test_pixel_ranks_order_by_saliency_and_break_ties_randomly():
    v = np.zeros((8, 8))
    v[2, 3], v[5, 5] = 1.0, 0.5
    r = pixel_ranks(v)
    assert r[2, 3] == 0 and r[5, 5] == 1 and sorted(r.ravel()) == list(range(64))
    zero_order = np.argsort(r.ravel())[2:]
    assert np.abs(np.diff(zero_order)).mean() > 3  # not raster order
    assert np.array_equal(r, pixel_ranks(v))  # deterministic


def test_baselines(clf, shapes_cams):
    samples, _ = shapes_cams
    image = samples[0].image
    x = clf.batch([image])[0]
    black = baseline_tensor(clf, image, x, "black")
    assert torch.allclose(black, clf.preprocess(Image.new("RGB", image.size)).to(black))
    mean = baseline_tensor(clf, image, x, "mean")
    assert torch.allclose(mean.mean(dim=(1, 2)), x.mean(dim=(1, 2)), atol=1e-5) and float(mean.std(dim=(1, 2)).max()) < 1e-5
    blur = baseline_tensor(clf, image, x, "blur")
    noisy = baseline_tensor(clf, image, x, "blur_noise")
    resid = (x - blur).std(dim=(1, 2))
    assert float(blur.std()) < float(x.std())  # blurred: less contrast
    assert torch.allclose((noisy - blur).std(dim=(1, 2)), resid, rtol=0.1)  # texture level kept
    assert torch.equal(noisy, baseline_tensor(clf, image, x, "blur_noise"))  # seeded
    with pytest.raises(ValueError, match="baseline"):
        baseline_tensor(clf, image, x, "white")


def test_curves_start_at_the_image_and_end_at_the_baseline(clf, shapes_cams):
    samples, res = shapes_cams
    c = perturbation_curves(clf, [s.image for s in samples[:4]], list(res.maps[:4]), list(res.targets[:4]), steps=5)
    p = clf.predict_proba([s.image for s in samples[:4]])[np.arange(4), res.targets[:4]]
    np.testing.assert_allclose(c.deletion[:, 0], p, atol=1e-4)
    np.testing.assert_allclose(c.insertion[:, -1], p, atol=1e-4)
    np.testing.assert_allclose(c.deletion[:, -1], c.insertion[:, 0], atol=1e-5)  # both: baseline alone
    assert c.deletion.shape == (4, 6) and np.all((c.deletion >= 0) & (c.deletion <= 1))


def test_inverted_map_swaps_insertion_and_deletion(clf, shapes_cams):
    """Deleting the inverted map's top k% keeps the true map's top (1-k)%: the AUCs swap exactly
    for a map without ties (CAMs have flat zero regions, whose tie-breaking order is not reversed
    by inversion, so the maps get a tiny distinct offset per cell)."""
    samples, res = shapes_cams
    rng = np.random.default_rng(0)
    imgs, tg = [s.image for s in samples[:5]], list(res.targets[:5])
    maps = [np.asarray(m, np.float64) + 1e-3 * rng.random(np.shape(m)) for m in res.maps[:5]]
    a = perturbation_curves(clf, imgs, maps, tg, steps=8)
    b = perturbation_curves(clf, imgs, [inverted(m) for m in maps], tg, steps=8)
    np.testing.assert_allclose(a.insertion_auc, b.deletion_auc, atol=0.02)


def test_blank_maps():
    assert is_blank_map(np.zeros((7, 7))) and is_blank_map(np.full((7, 7), 3.0))
    assert is_blank_map(np.full((2, 2), np.nan)) and not is_blank_map(np.eye(7) * 1e-6)


# ----------------------------------------------------------------------------- metrics
def test_true_cam_beats_inverted_cam_on_shapes(clf, shapes_cams):
    samples, res = shapes_cams
    imgs, maps, tg = [s.image for s in samples], list(res.maps), list(res.targets)
    masks = [s.mask for s in samples]
    true = vxm.faithfulness(clf, imgs, maps, tg, object_masks=masks, steps=10)
    inv = vxm.faithfulness(clf, imgs, [inverted(m) for m in maps], tg, object_masks=masks, steps=10)
    # measured: 100% on 3 ShapesNets x 2 data seeds (blur_noise baseline); 63% with a plain blur
    assert (true.deletion_auc < inv.deletion_auc).mean() >= 0.9
    assert (true.insertion_auc > inv.insertion_auc).mean() >= 0.9
    assert (true.aopc > inv.aopc).mean() >= 0.9
    assert (true.deletion_auc - inv.deletion_auc).median() < -0.1  # by a margin, not a hair
    assert true.pointing_game.mean() >= 0.9 > 0.3 >= inv.pointing_game.mean()
    assert (true.energy_on_object > inv.energy_on_object).all()
    assert set(true.status) == {"ok"} and true.average_drop.between(0, 100).all()
    assert set(true.increase_in_confidence.unique()) <= {0.0, 1.0}


def test_a_perfect_object_map_beats_a_random_map(clf, shapes_cams):
    samples, _ = shapes_cams
    rng = np.random.default_rng(0)
    samples = samples[:12]
    imgs, tg, masks = [s.image for s in samples], [int(s.targets[0]) for s in samples], [s.mask for s in samples]
    perfect = [m.astype(np.float32) for m in masks]
    random = [_smooth_random_map(rng, (64, 64)) for _ in samples]
    good = vxm.faithfulness(clf, imgs, perfect, tg, object_masks=masks, steps=8)
    bad = vxm.faithfulness(clf, imgs, random, tg, object_masks=masks, steps=8)
    assert (good.energy_on_object > 0.99).all() and (good.pointing_game == 1).all()
    assert bad.energy_on_object.mean() < 0.4
    gap = lambda f: f.insertion_auc - f.deletion_auc  # noqa: E731
    assert gap(good).mean() > gap(bad).mean() + 0.2
    # where the baseline alone already gives the class (ShapesNet reads a blank as "triangle"),
    # no map can move the prediction; everywhere else the perfect map wins
    informative = np.array([curve[0] < 0.5 for curve in good.insertion_curve])
    assert informative.sum() >= 6 and (gap(good) > gap(bad))[informative].all()


def test_blank_map_gets_no_attention_and_no_value(clf, shapes_cams):
    samples, res = shapes_cams
    f = vxm.faithfulness(clf, [s.image for s in samples[:2]], [np.zeros((16, 16)), res.maps[1]],
                         [0, int(res.targets[1])], object_masks=[s.mask for s in samples[:2]], steps=4)
    assert list(f.status) == ["no_attention", "ok"]
    assert f.loc[0, vxm.DEFAULT_METRICS].isna().all() and f.loc[1, vxm.DEFAULT_METRICS].notna().all()


def test_metric_names_are_checked(clf):
    with pytest.raises(ValueError, match="metrics: unknown"):
        vxm.faithfulness(clf, [], [], [], metrics=["deletion"])


def test_road_is_pytorch_grad_cams(clf, shapes_cams):
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    samples, res = shapes_cams
    imgs, maps, tg = [s.image for s in samples[:2]], list(res.maps[:2]), list(res.targets[:2])
    ours = vxm.road_scores(clf, imgs, maps, tg, percentiles=(20, 80))
    assert np.array_equal(ours, vxm.road_scores(clf, imgs, maps, tg, percentiles=(20, 80)))  # seeded
    torch.manual_seed(0)
    x = clf.batch(imgs).contiguous()
    cams = np.stack([vx.saliency(m, (64, 64)) for m in maps]).astype(np.float32)
    theirs = ROADCombined(percentiles=[20, 80])(x, cams, [ClassifierOutputSoftmaxTarget(int(t)) for t in tg], clf.model)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


# ----------------------------------------------------------------------------- evaluate(run)
@pytest.fixture
def run(clf, tmp_path):
    data = vx.datasets.shapes(8, seed=31)
    return vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path / "run", progress=False, verbose=False)


def test_evaluate_stores_metrics_as_table_columns_and_resumes(clf, run):
    out = vx.evaluate(run, ["deletion_auc", "insertion_auc", "pointing_game"], classifier=clf, steps=20,
                      progress=False)
    assert list(out.columns) == ["deletion_auc", "insertion_auc", "pointing_game"] and len(out) == 8
    t = run.table
    assert {"score", "deletion_auc", "insertion_auc", "pointing_game"} <= set(t.columns)
    assert t["deletion_auc"].notna().all() and (t["deletion_auc"] < t["insertion_auc"]).mean() >= 0.75
    stored = MetricsTable(run.store).frame()
    assert len(stored) == 24 and set(stored.status) == {"ok"}
    assert len(stored[stored.metric == "deletion_auc"].detail.iloc[0]["curve"]) == 21
    # resumable: drop two rows (an interrupted call), run again: only they are computed
    run.store._conn.execute("DELETE FROM metrics WHERE sample_id IN (SELECT sample_id FROM metrics LIMIT 2)")
    before = pd.read_sql_query("SELECT sample_id, metric, created FROM metrics", run.store._conn)
    vx.evaluate(run, ["deletion_auc", "insertion_auc", "pointing_game"], classifier=clf, progress=False)
    after = pd.read_sql_query("SELECT sample_id, metric, created FROM metrics", run.store._conn)
    assert len(after) == 24
    kept = before.merge(after, on=["sample_id", "metric"], suffixes=("_b", "_a"))
    assert (kept.created_b == kept.created_a).all()
    # another baseline is another column; localisation needs no model
    vx.evaluate(run, ["deletion_auc"], classifier=clf, baseline="black", steps=5, progress=False)
    assert "deletion_auc@black,steps=5" in run.table.columns
    vx.evaluate(run, ["energy_on_object"], progress=False)
    assert run.table["energy_on_object"].between(0, 1).all()


def test_evaluate_refuses_another_classifier(clf, run):
    other = dataclasses.replace(clf, name="another")
    with pytest.raises(ValueError, match="fingerprints differ"):
        vx.evaluate(run, ["deletion_auc"], classifier=other, progress=False)


# ----------------------------------------------------------------------------- the offline judge
def _judge_true_vs_inverted(judge, clf, samples, maps, preds, confs):
    def items(ms):
        return [make_judge_input(s.id, preview_of(s.image), {"map": m, "prediction": p, "confidence": c}, 25, 0.6,
                                 clf.class_names) for s, m, p, c in zip(samples, ms, preds, confs)]
    a = dict(judge.judge_many(items(list(maps))))
    b = dict(judge.judge_many(items([inverted(m) for m in maps])))
    return np.array([a[i].score for i in range(len(samples))]), np.array([b[i].score for i in range(len(samples))])


def test_insertion_deletion_judge_scores_true_cam_above_inverted_on_shapes(clf, shapes_cams):
    samples, res = shapes_cams
    judge = make_judge("offline:insertion-deletion", classifier=clf, steps=10)
    true, inv = _judge_true_vs_inverted(judge, clf, samples, res.maps, res.predictions, res.confidences)
    assert (true > inv).mean() >= 0.9  # measured 100% over 3 ShapesNets x 2 data seeds
    assert np.median(true) > 2.5 > np.median(inv)


def test_insertion_deletion_judge_scores_true_cam_above_inverted_on_the_gallery(lite0):
    data = vx.datasets.gallery()
    samples = [data[i] for i in range(len(data))]
    res = vx.compute_cams(lite0, samples, "gradcam")
    judge = make_judge("offline:insertion-deletion", classifier=lite0, steps=5)
    true, inv = _judge_true_vs_inverted(judge, lite0, samples, res.maps, res.predictions, res.confidences)
    assert (true > inv).mean() >= 0.9  # measured 8/8 (smallest insertion-deletion gap 0.04)


def test_insertion_deletion_judge_in_a_run_is_labelled_and_cached(clf, tmp_path):
    data = vx.datasets.shapes(6, seed=9)
    run = vx.explain(clf, data, judge="offline:insertion-deletion", run_dir=tmp_path / "r", progress=False,
                     verbose=False, judge_options={"steps": 6})
    t = run.table
    assert (t.judge_status == "ok").all() and t.description.str.contains("not a vision-language model").all()
    again = vx.explain(clf, data, judge="offline:insertion-deletion", run_dir=tmp_path / "r2", progress=False,
                       verbose=False, judge_options={"steps": 6})
    assert again.table.cached.all()
    np.testing.assert_allclose(again.table.score, t.score)
