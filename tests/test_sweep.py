"""The alpha × beta sweep and the reference scores it is checked against (ground-truth
localisation, human annotations from the run store or a CSV, simulated annotators)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

import vlmxplain as vx
from vlmxplain import experiments as vxe, metrics as vxm, models as vxmod, viz
from vlmxplain.core.records import JudgeSettings, Judgment
from vlmxplain.masks import saliency

ALPHAS, BETAS = (15.0, 30.0), (0.3, 0.5, 0.7)


@pytest.fixture(scope="module", autouse=True)
def _caches(shared_caches):
    """See tests/conftest.py: shared_caches."""


@pytest.fixture(scope="module")
def clf():
    return vxmod.shortcut_model(0.75)  # the notebooks' model: attention on the object or on the dot


def explain_dotted(clf, run_dir):
    data = vx.datasets.shapes(30, seed=5000, shortcut_on="all")
    return vx.explain(clf, data, judge="offline:groundtruth", run_dir=run_dir, progress=False, verbose=False)


@pytest.fixture(scope="module")
def run(clf, tmp_path_factory):
    """Shared, never modified by a test (tests that add annotations or judgments use ``own_run``)."""
    return explain_dotted(clf, tmp_path_factory.mktemp("sweep") / "run")


@pytest.fixture
def own_run(clf, tmp_path):
    return explain_dotted(clf, tmp_path / "own")


@pytest.fixture(scope="module")
def swept(run, clf):
    return vxe.alpha_beta_sweep(run, ALPHAS, BETAS, reference="faithfulness", classifier=clf, n_boot=200)


def not_blank(fig) -> bool:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return img.shape[0] > 100 and img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50


# ----------------------------------------------------------------------------- parameters
def test_validate_sweep_params_sorts_and_checks(tmp_path):
    p = vxe.validate_sweep_params(alphas=[30, 15], betas=0.6)
    assert p.alphas == (15.0, 30.0) and p.betas == (0.6,) and p.reference == "faithfulness"
    csv = tmp_path / "a.csv"
    csv.write_text("sample_id,annotator,score\n")
    assert vxe.validate_sweep_params(reference=str(csv)).reference == str(csv)


@pytest.mark.parametrize("bad, name", [
    (dict(alphas=[]), "alphas"), (dict(alphas=[-1]), "alphas"), (dict(alphas=[20, 20]), "alphas"),
    (dict(alphas="25"), "alphas"), (dict(betas=[1.5]), "betas"), (dict(betas=[float("nan")]), "betas"),
    (dict(metric="r2"), "metric"), (dict(reference="/no/such.csv"), "reference"), (dict(reference=""), "reference"),
    (dict(reference="groundtruth"), "circular"),
])
def test_validate_sweep_params_names_the_bad_parameter(bad, name):
    with pytest.raises(ValueError, match=name):
        vxe.validate_sweep_params(**bad)


# ----------------------------------------------------------------------------- references
def test_groundtruth_reference_is_cam_energy_on_the_object(run):
    ref = vxm.groundtruth_reference(run)
    assert len(ref) == 30 and ref.between(0, 5).all() and ref.std() > 0.5  # on-object and on-dot attention
    sid = ref.index[7]
    obj = run.object_mask(sid)
    v = saliency(run.cam(sid)["map"], (obj.shape[1], obj.shape[0]))
    assert ref[sid] == pytest.approx(5 * (v * obj).sum() / v.sum())


def test_groundtruth_reference_needs_object_masks(lite0, tmp_path):
    photos = vx.explain(lite0, vx.datasets.gallery().limit(2), run_dir=tmp_path / "g", progress=False, verbose=False)
    with pytest.raises(ValueError, match="object mask"):
        vxm.groundtruth_reference(photos)


def test_simulated_annotators_are_labelled_and_follow_the_reference():
    ref = pd.Series([0.2, 1.4, 2.6, 3.5, 4.9] * 4, index=[f"s{i}" for i in range(20)])
    exact = vxe.simulate_annotators(ref, n_annotators=2, noise=0.0)
    assert set(exact["annotator"]) == {"simulated-1", "simulated-2"} and exact["simulated"].all()
    assert (exact.groupby("annotator")["score"].apply(list) == [list(np.rint(ref))] * 2).all()
    noisy = vxe.simulate_annotators(ref, n_annotators=3, noise=1.0, seed=3, judge_scores=ref + 0.3)
    assert noisy.equals(vxe.simulate_annotators(ref, n_annotators=3, noise=1.0, seed=3, judge_scores=ref + 0.3))
    assert noisy["score"].isin([0, 1, 2, 3, 4, 5]).all() and len(noisy) == 60
    assert (noisy["accept"] == ((ref.reindex(noisy["sample_id"]).to_numpy() + 0.3 - noisy["score"]).abs() <= 1)).all()
    assert stats.spearmanr(noisy.groupby("sample_id")["score"].mean().reindex(ref.index), ref).statistic > 0.6
    assert "SIMULATED" in vxe.describe_source(noisy) and "human" in vxe.describe_source(noisy.assign(simulated=False))
    for bad, name in ((dict(n_annotators=0), "n_annotators"), (dict(noise=-1), "noise")):
        with pytest.raises(ValueError, match=name):
            vxe.simulate_annotators(ref, **bad)


def test_load_annotations_from_the_run_store_and_csv(own_run, tmp_path):
    run = own_run
    with pytest.raises(ValueError, match="no scored annotation"):
        vxe.load_annotations("run", run)
    ids = sorted(run.store.cam_ids())[:4]
    for k, sid in enumerate(ids):
        run.store.put_annotation(sid, "alice", float(k), accept=k % 2 == 0)
    run.store.put_annotation(ids[0], "bob", None, accept=True)  # accept only: no score
    ann = vxe.load_annotations("run", run)
    assert list(ann["annotator"]) == ["alice"] * 4 and not ann["simulated"].any()
    assert ann.set_index("sample_id")["score"].to_dict() == {sid: float(k) for k, sid in enumerate(ids)}
    csv = tmp_path / "ann.csv"
    ann[["sample_id", "annotator", "score"]].to_csv(csv, index=False)
    assert vxe.load_annotations(str(csv))["score"].tolist() == ann["score"].tolist()
    with pytest.raises(ValueError, match="annotations"):
        vxe.load_annotations(str(tmp_path / "missing.csv"))


@pytest.mark.parametrize("bad, name", [
    (dict(annotations="nope.csv"), "annotations"), (dict(n_annotators=1), "n_annotators"),
    (dict(annotator_noise=-0.1), "annotator_noise"), (dict(n_boot=-1), "n_boot"), (dict(seed=1.5), "seed"),
])
def test_validate_agreement_params_names_the_bad_parameter(bad, name):
    with pytest.raises(ValueError, match=name):
        vxe.validate_agreement_params(**bad)


def test_view_scores_pairs_masked_and_overlay_judgments(own_run):
    run = own_run
    assert vxm.view_scores(run) is None  # offline judges see the masked image only
    ids = sorted(run.store.cam_ids())[:5]
    for view in ("masked", "overlay"):  # the judge settings each view's judgments were made with
        run.store.record_judge(JudgeSettings(judge="openai:test-model", prompt_version=f"t1-{view}", is_vlm=True,
                                             input_kind=view))
    for k, sid in enumerate(ids):
        for view, score in (("masked", k), ("overlay", 5 - k)):
            j = Judgment(judge_id="openai:test-model", prompt_version=f"t1-{view}", score=score)
            run.store.put_judgment(sid, j, alpha=25.0, beta=0.6, cache_key=f"{sid}-{view}", cached=False)
    views = vxm.view_scores(run, judge="openai:test-model")
    assert list(views.columns) == ["masked", "overlay"] and list(views.index) == ids
    assert views["masked"].tolist() == [0, 1, 2, 3, 4] and views["overlay"].tolist() == [5, 4, 3, 2, 1]


# ----------------------------------------------------------------------------- the sweep
def test_sweep_table_matches_an_independent_computation(run, swept):
    t = swept.table
    assert len(t) == len(ALPHAS) * len(BETAS) and set(zip(t["alpha"], t["beta"])) == {
        (a, b) for a in ALPHAS for b in BETAS}
    assert (t["n"] == 30).all() and (t["n_judged"] == 30).all()
    # the reference: the unmasked map's insertion - deletion gap, stored in the run (not the mask)
    table = run.table
    ref = (table["insertion_auc"] - table["deletion_auc"]).dropna()
    assert len(ref) == 30 and "faithfulness" in swept.reference_label
    for row in t.itertuples():
        scores = run.table_for(judge="offline:groundtruth", alpha=row.alpha, beta=row.beta).set_index("id")["score"]
        scores = scores.reindex(ref.index)
        assert row.spearman == pytest.approx(stats.spearmanr(scores, ref).statistic)
        assert row.pearson == pytest.approx(stats.pearsonr(scores, ref).statistic)
        assert row.kendall == pytest.approx(stats.kendalltau(scores, ref).statistic)
        assert np.isnan(row.mae)  # the gap is not on the 0-5 score scale
        assert row.spearman_ci_low <= row.spearman <= row.spearman_ci_high
    assert swept.grid().shape == (len(ALPHAS), len(BETAS)) and swept.findings
    with pytest.raises(ValueError, match="0-5 score scale"):
        vxe.alpha_beta_sweep(run, ALPHAS, BETAS, metric="mae", n_boot=0)


def test_sweep_never_recomputes_cams_and_resumes(run, swept):
    before = run.store.cams()
    n_judgments = len(run.judgments())
    again = vxe.alpha_beta_sweep(run, ALPHAS, BETAS, n_boot=200)  # metrics stored: no classifier needed
    pd.testing.assert_frame_equal(again.table, swept.table)
    pd.testing.assert_frame_equal(run.store.cams(), before)
    assert len(run.judgments()) == n_judgments  # every cell was already judged


def test_human_reference_picks_the_cell_they_agree_with(own_run, tmp_path):
    run = own_run
    # annotators whose scores equal the judge's at (alpha 30, beta 0.5): that cell must win, exactly
    vx.rejudge(run, alpha=30.0, beta=0.5, progress=False)
    target = run.table_for(judge="offline:groundtruth", alpha=30.0, beta=0.5)
    for row in target.itertuples():
        run.store.put_annotation(row.id, "carol", round(row.score, 6))
    res = vxe.alpha_beta_sweep(run, ALPHAS, BETAS, reference="run", metric="mae", n_boot=200)
    assert (res.best["alpha"], res.best["beta"]) == (30.0, 0.5) and res.best["mae"] < 1e-5
    assert "human" in res.reference_label
    csv = tmp_path / "carol.csv"
    vxe.load_annotations("run", run)[["sample_id", "annotator", "score"]].to_csv(csv, index=False)
    res_csv = vxe.alpha_beta_sweep(run, ALPHAS, BETAS, reference=str(csv), metric="spearman", n_boot=200)
    assert (res_csv.best["alpha"], res_csv.best["beta"]) == (30.0, 0.5)
    assert res_csv.best["spearman"] == pytest.approx(1.0)


def test_sweep_with_the_faithfulness_judge(run, clf):
    res = vxe.alpha_beta_sweep(run, [25.0], [0.4, 0.6], judge="offline:faithfulness", classifier=clf,
                               metric="pearson", n_boot=100)
    assert len(res.table) == 2 and (res.table["n_judged"] == 30).all() and res.judge == "offline:faithfulness"
    with pytest.raises(ValueError, match="classifier"):
        vxe.alpha_beta_sweep(run, [25.0], [0.5], judge="offline:faithfulness")
    with pytest.raises(ValueError, match="judge"):
        vxe.alpha_beta_sweep(run, [25.0], [0.5], judge="bogus")


def _cells(values, lows, highs, alphas=(15.0, 15.0, 30.0, 30.0), betas=(0.3, 0.6, 0.3, 0.6)):
    return pd.DataFrame({"alpha": alphas, "beta": betas, "spearman": values, "spearman_ci_low": lows,
                         "spearman_ci_high": highs, "mae": [0.5, 1.0, 0.1, 0.7], "mae_ci_low": [0.4, 0.9, 0.05, 0.6],
                         "mae_ci_high": [0.6, 1.1, 0.15, 0.8]})


def test_best_cell_and_undefined_metrics():
    table = _cells([0.2, 0.9, np.nan, 0.1], [0.1, 0.8, np.nan, 0.0], [0.3, 0.95, np.nan, 0.2])
    assert vxe.SweepResult(table, "spearman", "j", "r").best["beta"] == 0.6
    assert vxe.SweepResult(table, "mae", "j", "r").best["alpha"] == 30.0
    with pytest.raises(ValueError, match="undefined"):
        vxe.SweepResult(table.assign(spearman=np.nan), "spearman", "j", "r").best


def test_findings_say_edge_disagreement_and_ties():
    grid5 = dict(alpha=(15.0, 15.0, 15.0, 20.0, 20.0, 20.0), beta=(0.3, 0.5, 0.7) * 2)
    inside = pd.DataFrame({"alpha": (15.0,) * 3 + (20.0,) * 3 + (25.0,) * 3, "beta": (0.3, 0.5, 0.7) * 3,
                           "spearman": [0.1, 0.2, 0.1, 0.2, 0.8, 0.2, 0.1, 0.2, 0.1],
                           "spearman_ci_low": [0.0, 0.1, 0.0, 0.1, 0.7, 0.1, 0.0, 0.1, 0.0],
                           "spearman_ci_high": [0.2, 0.3, 0.2, 0.3, 0.9, 0.3, 0.2, 0.3, 0.2]})
    res = vxe.SweepResult(inside, "spearman", "j", "r")
    assert res.findings == ["a clear optimum inside the grid: alpha = 20, beta = 0.5"]
    corner = vxe.SweepResult(pd.DataFrame({**grid5, "spearman": [0.9, 0.5, 0.4, 0.85, 0.3, 0.2],
                                           "spearman_ci_low": [0.8, 0.4, 0.3, 0.7, 0.2, 0.1],
                                           "spearman_ci_high": [0.95, 0.6, 0.5, 0.9, 0.4, 0.3]}), "spearman", "j", "r")
    f = corner.findings
    assert any("edge (alpha = 15" in x for x in f) and any("edge (beta = 0.3" in x for x in f)
    assert any("2 cells cannot be told apart" in x and "(20, 0.3)" in x for x in f)
    negative = vxe.SweepResult(_cells([-0.3, -0.1, -0.2, -0.5], [-0.5, -0.3, -0.4, -0.7], [-0.1, 0.1, 0.0, -0.3]),
                               "spearman", "j", "r")
    assert negative.all_disagree and "every cell disagrees" in negative.findings[0]
    with pytest.raises(ValueError, match="every cell disagrees"):
        negative.best
    weak = vxe.SweepResult(_cells([0.1, 0.2, 0.15, 0.05], [-0.2, -0.1, -0.1, -0.3], [0.3, 0.4, 0.35, 0.3]),
                           "spearman", "j", "r")
    assert any("includes no agreement" in x for x in weak.findings)


def test_sweep_figures(run, swept):
    assert not_blank(viz.plot_sweep_heatmap(swept))
    assert not_blank(viz.plot_sweep_heatmap(swept, metric="pearson"))
    assert not_blank(viz.plot_mask_grid(run, sorted(run.store.cam_ids())[0], ALPHAS, BETAS))
