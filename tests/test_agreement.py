"""Tests for vlmxplain.metrics.agreement: values checked against scipy, sklearn and published numbers."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402

from vlmxplain.metrics.agreement import (  # noqa: E402
    InterAnnotatorAgreement,
    TooFewPairsError,
    acceptance_rate,
    agreement_table,
    correlations,
    inter_annotator_agreement,
    krippendorff_alpha,
    load_annotations_csv,
    paired_comparison,
    weighted_kappa,
)
from vlmxplain.viz import plot_agreement  # noqa: E402

NB = 300  # bootstrap resamples in tests: enough for the properties checked, keeps the file fast

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data matrix
# (coders A-D x 12 units, "." = missing) with published alphas.
_N = np.nan
PAPER = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _N, _N, _N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _N, 3],
    [_N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _N],
]).T  # -> units x coders
PAPER_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def _long(matrix: np.ndarray, coders=None) -> pd.DataFrame:
    coders = coders or [f"c{j}" for j in range(matrix.shape[1])]
    rows = [dict(sample_id=f"u{i}", annotator=coders[j], score=matrix[i, j])
            for i in range(matrix.shape[0]) for j in range(matrix.shape[1]) if not np.isnan(matrix[i, j])]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- correlations
def test_perfect_and_anti_correlation():
    x = np.arange(30.0)
    pos = correlations(x, 2 * x + 1, n_boot=NB)
    neg = correlations(x, 5 - 0.5 * x, n_boot=NB)
    np.testing.assert_allclose(pos["estimate"], 1.0)
    np.testing.assert_allclose(neg["estimate"], -1.0)
    np.testing.assert_allclose(pos[["ci_low", "ci_high"]].to_numpy(), 1.0)
    np.testing.assert_allclose(neg[["ci_low", "ci_high"]].to_numpy(), -1.0)
    assert list(pos.index) == ["pearson", "spearman", "kendall"]
    assert (pos["n"] == 30).all() and (pos["n_dropped"] == 0).all()
    assert pos.loc["kendall", "p_value"] == pytest.approx(stats.kendalltau(x, 2 * x + 1).pvalue)


def test_zero_correlation_orthogonal_case():
    x = np.array([-2.0, -1, 0, 1, 2])
    res = correlations(x, x ** 2, n_boot=0)  # symmetric: covariance, rank covariance, S all 0
    np.testing.assert_allclose(res["estimate"], 0.0, atol=1e-12)
    assert (res["p_value"] > 0.99).all()
    assert res["ci_low"].isna().all() and (res["note"] == "no bootstrap CI (n_boot=0)").all()


def test_values_match_scipy_with_ties_tau_b():
    x = np.array([1, 2, 2, 3, 3, 3, 4, 5, 5, 0, 1, 4])
    y = np.array([2, 1, 3, 3, 4, 2, 5, 5, 4, 0, 2, 3])
    res = correlations(x, y, n_boot=0)
    tau_b = stats.kendalltau(x, y, variant="b")
    assert res.loc["kendall", "estimate"] == pytest.approx(tau_b.statistic, abs=1e-12)
    assert res.loc["kendall", "p_value"] == pytest.approx(tau_b.pvalue, abs=1e-12)
    assert res.loc["kendall", "estimate"] != pytest.approx(stats.kendalltau(x, y, variant="c").statistic)
    assert res.loc["spearman", "estimate"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert res.loc["pearson", "estimate"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_bootstrap_ci_contains_true_value_and_matches_scipy():
    rho, n = 0.6, 400
    rng = np.random.default_rng(12345)
    xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    res = correlations(xy[:, 0], xy[:, 1], n_boot=500, seed=7)
    truth = {"pearson": rho, "spearman": 6 / math.pi * math.asin(rho / 2),
             "kendall": 2 / math.pi * math.asin(rho)}
    for m, t in truth.items():
        lo, hi = res.loc[m, ["ci_low", "ci_high"]]
        assert lo < t < hi, (m, lo, t, hi)
        assert lo < res.loc[m, "estimate"] < hi and hi - lo < 0.25
    assert (res["ci_method"] == "BCa").all()
    direct = stats.bootstrap((xy[:, 0], xy[:, 1]), lambda a, b, axis: stats.pearsonr(a, b, axis=axis).statistic,
                             paired=True, n_resamples=500, method="BCa", rng=np.random.default_rng(7))
    assert res.loc["pearson", "ci_low"] == pytest.approx(direct.confidence_interval.low)
    assert res.loc["pearson", "ci_high"] == pytest.approx(direct.confidence_interval.high)
    assert res.loc["pearson", "ci_level"] == 0.95


def test_degenerate_resamples_are_left_out_not_nan_poisoned():
    x = np.array([0, 0, 1, 0, 5, 3, 0, 0])
    y = np.array([0, 1, 1, 0, 5, 2, 0, 0])
    res = correlations(x, y, n_boot=NB, seed=3)
    # count the degenerate resamples scipy itself produces for the same seed
    with pytest.warns(stats.DegenerateDataWarning):  # scipy alone gives a NaN CI here
        d = stats.bootstrap((x, y), lambda a, b, axis: stats.pearsonr(a, b, axis=axis).statistic, paired=True,
                            n_resamples=NB, method="percentile", rng=np.random.default_rng(3))
    n_bad = int(np.isnan(d.bootstrap_distribution).sum())
    assert n_bad > 0 and np.isnan(d.confidence_interval.low)
    for m in ("pearson", "spearman", "kendall"):
        lo, hi = res.loc[m, ["ci_low", "ci_high"]]
        assert -1 <= lo <= res.loc[m, "estimate"] <= hi <= 1
        assert res.loc[m, "ci_method"] == "percentile"
    assert f"{n_bad} of {NB} bootstrap resamples were degenerate" in res.loc["pearson", "note"]
    finite = d.bootstrap_distribution[np.isfinite(d.bootstrap_distribution)]
    assert res.loc["pearson", "ci_low"] == pytest.approx(np.quantile(finite, 0.025))


def test_mostly_degenerate_resamples_give_nan_ci_with_reason():
    # both vectors have a single non-zero entry at different positions: most resamples are constant
    res = correlations([0, 0, 0, 0, 5, 0], [5, 0, 0, 0, 0, 0], n_boot=NB)
    assert res["estimate"].notna().all() and res["ci_low"].isna().all()
    assert res["note"].str.startswith("CI undefined").all()


def test_constant_input_gives_nan_with_reason():
    res = correlations([1, 2, 3, 4], [3, 3, 3, 3], n_boot=NB)
    assert res[["estimate", "p_value", "ci_low", "ci_high"]].isna().all().all()
    assert res["note"].str.contains("human_scores is constant").all()


def test_input_errors_and_nan_dropping():
    with pytest.raises(ValueError, match="length mismatch: judge_scores has 4 values, human_scores has 3"):
        correlations([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(TooFewPairsError, match="got 2 .*2 dropped"):
        correlations([1, 2, np.nan, 4], [1, 2, 3, np.nan])
    with pytest.raises(ValueError, match="human_scores: scores must be numeric"):
        correlations([1, 2, 3], ["a", "b", "c"])
    with pytest.raises(ValueError, match="duplicated index label 'a'"):
        correlations(pd.Series([1, 2, 3], index=list("aab")), pd.Series([1, 2, 3], index=list("abc")))
    with pytest.raises(ValueError, match="ci must be in"):
        correlations([1, 2, 3], [1, 2, 3], ci=95)
    res = correlations([1, 2, np.nan, 4, 5, 7], [2, np.nan, 3, 3, 5, 6], n_boot=0)
    assert (res["n"] == 4).all() and (res["n_dropped"] == 2).all()
    assert res.loc["pearson", "estimate"] == pytest.approx(stats.pearsonr([1, 4, 5, 7], [2, 3, 5, 6]).statistic)


def test_series_are_aligned_by_index():
    judge = pd.Series([1.0, 2, 3, 4, 5], index=["a", "b", "c", "d", "e"])
    human = pd.Series([5.0, 4, 3, 2, 1, 0], index=["e", "d", "c", "b", "a", "zz"])  # same order by label
    res = correlations(judge, human, n_boot=0)
    np.testing.assert_allclose(res["estimate"], 1.0)
    assert (res["n_dropped"] == 1).all()  # "zz" has no judge score
    positional = correlations(judge.to_numpy(), human.to_numpy()[:5], n_boot=0)
    np.testing.assert_allclose(positional["estimate"], -1.0)


# ----------------------------------------------------------------------------- Krippendorff / kappa
@pytest.mark.parametrize("level", list(PAPER_ALPHA))
def test_krippendorff_alpha_published_values(level):
    assert krippendorff_alpha(PAPER, level) == pytest.approx(PAPER_ALPHA[level], abs=5e-4)


def test_krippendorff_alpha_constructed_cases():
    perfect = np.array([[0, 0, 0], [2, 2, np.nan], [5, 5, 5], [3, np.nan, 3]])
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(perfect, level) == pytest.approx(1.0)
    # two coders always swapping 1 and 2: o_12 = o_21 = n/2 -> alpha = 1 - (n-1)*n/(n/2*n/2*2) = -0.5 at n=4
    swapped = np.array([[1, 2], [2, 1]])
    assert krippendorff_alpha(swapped, "interval") == pytest.approx(-0.5)
    assert krippendorff_alpha(np.tile(swapped, (10, 1)), "nominal") < -0.9
    rng = np.random.default_rng(0)
    random = rng.integers(0, 6, size=(3000, 3)).astype(float)
    assert abs(krippendorff_alpha(random, "interval")) < 0.03
    assert math.isnan(krippendorff_alpha([[3, 3], [3, 3]], "interval"))
    with pytest.raises(ValueError, match="level must be"):
        krippendorff_alpha(PAPER, "cardinal")


def test_krippendorff_alpha_matches_pairwise_definition_with_missing_values():
    rng = np.random.default_rng(5)
    m = rng.integers(0, 6, size=(40, 4)).astype(float) + rng.integers(0, 2, size=(40, 1))
    m[rng.random(m.shape) < 0.3] = np.nan
    metrics = {"interval": lambda a, b: (a - b) ** 2, "nominal": lambda a, b: float(a != b),
               "ratio": lambda a, b: 0.0 if a + b == 0 else ((a - b) / (a + b)) ** 2}
    units = [row[~np.isnan(row)] for row in m if (~np.isnan(row)).sum() >= 2]
    pooled = np.concatenate(units)
    n = len(pooled)
    for level, delta in metrics.items():
        d_o = sum(sum(delta(u[i], u[j]) for i in range(len(u)) for j in range(len(u)) if i != j) / (len(u) - 1)
                  for u in units) / n
        d_e = sum(delta(pooled[i], pooled[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        assert krippendorff_alpha(m, level) == pytest.approx(1 - d_o / d_e, abs=1e-12), level
    # invariances: interval alpha under affine maps, ordinal alpha under monotone maps
    assert krippendorff_alpha(3 * m + 7, "interval") == pytest.approx(krippendorff_alpha(m, "interval"))
    assert krippendorff_alpha(np.exp(m), "ordinal") == pytest.approx(krippendorff_alpha(m, "ordinal"))
    assert krippendorff_alpha(np.exp(m), "interval") != pytest.approx(krippendorff_alpha(m, "interval"))


def test_inter_annotator_agreement_from_long_table():
    res = inter_annotator_agreement(_long(PAPER, list("ABCD")), levels=("nominal", "ordinal", "interval"))
    assert isinstance(res, InterAnnotatorAgreement)
    for level in ("nominal", "ordinal", "interval"):
        assert res.alpha[level] == pytest.approx(PAPER_ALPHA[level], abs=5e-4)
    assert res.n_annotators == 4 and res.n_samples == 11  # unit 12 has one rating only
    assert len(res.kappa) == 6
    ab = res.kappa.set_index(["annotator_a", "annotator_b"]).loc[("A", "B")]
    both = ~np.isnan(PAPER[:, 0]) & ~np.isnan(PAPER[:, 1])
    assert ab["n_common"] == both.sum() == 9
    assert ab["kappa"] == pytest.approx(cohen_kappa_score(PAPER[both, 0], PAPER[both, 1], weights="quadratic"))
    frame = res.to_frame()
    assert len(frame) == 3 + 6 and set(frame["metric"]) == {"krippendorff_alpha", "cohen_kappa"}


def test_weighted_kappa_uses_score_distances_and_handles_missing():
    # value-distance quadratic kappa = 1 - mean((a-b)^2) / E_indep[(A-B)^2] = 1 - 4 / 9.875
    ann = pd.DataFrame(dict(sample_id=["1", "2", "3", "4"] * 2 + ["5"], annotator=["a"] * 4 + ["b"] * 4 + ["c"],
                            score=[0, 1, 5, 5, 0, 1, 5, 1, 2]))
    res = inter_annotator_agreement(ann)
    k = res.kappa.set_index(["annotator_a", "annotator_b"])
    assert k.loc[("a", "b"), "kappa"] == pytest.approx(1 - 4 / 9.875)
    assert np.isnan(k.loc[("a", "c"), "kappa"]) and "0 common" in k.loc[("a", "c"), "note"]
    with pytest.raises(ValueError, match="at least 2 annotators"):
        inter_annotator_agreement(ann[ann["annotator"] == "a"])
    flat = inter_annotator_agreement(pd.DataFrame(dict(sample_id=["1", "1", "2", "2"], annotator=["a", "b"] * 2,
                                                       score=[3, 3, 3, 3])))
    assert np.isnan(flat.alpha["interval"]) and "no variation" in flat.alpha_notes["interval"]
    assert np.isnan(flat.kappa["kappa"].iloc[0]) and flat.kappa["note"].iloc[0]


# ----------------------------------------------------------------------------- acceptance, paired
@pytest.mark.parametrize("k,n,lo,hi", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                       (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)])
def test_acceptance_rate_wilson_published_values(k, n, lo, hi):
    # Newcombe (1998), Stat Med 17:857, Table I, Wilson score interval without continuity correction
    rate, (low, high) = acceptance_rate([True] * k + [False] * (n - k))
    assert rate == pytest.approx(k / n)
    assert (low, high) == pytest.approx((lo, hi), abs=6e-5)


def test_acceptance_rate_inputs():
    rate, ci = acceptance_rate(pd.Series([1, 0, None, True, np.nan, 1], dtype=object))
    assert rate == 0.75 and ci[0] < 0.75 < ci[1]
    with pytest.raises(ValueError, match="accepts: expected booleans or 0/1, got 'maybe'"):
        acceptance_rate([True, "maybe"])
    with pytest.raises(ValueError, match="no non-missing"):
        acceptance_rate([None, np.nan])


def test_paired_comparison_sign_and_tests():
    rng = np.random.default_rng(2)
    overlay = rng.integers(0, 4, 60).astype(float)
    masked = np.clip(overlay + rng.choice([0, 1, 1, 2], 60), 0, 5)
    res = paired_comparison(masked, overlay, names=("masked", "overlay"), n_boot=NB)
    d = masked - overlay
    assert res.mean_diff == pytest.approx(d.mean()) and res.mean_diff > 0
    assert 0 < res.ci[0] < res.mean_diff < res.ci[1]
    w = stats.wilcoxon(masked, overlay)
    assert res.wilcoxon_p == pytest.approx(w.pvalue) and res.wilcoxon_p < 1e-6
    assert res.correlation.loc["pearson", "estimate"] == pytest.approx(stats.pearsonr(masked, overlay).statistic)
    rev = paired_comparison(overlay, masked, n_boot=NB)
    assert rev.mean_diff == pytest.approx(-res.mean_diff) and rev.ci[1] < 0
    row = res.to_frame().iloc[0]
    assert row["a"] == "masked" and row["n"] == 60


def test_paired_comparison_identical_scores():
    x = np.array([1.0, 2, 3, 4, 5])
    res = paired_comparison(x, x, n_boot=NB)
    assert res.mean_diff == 0 and res.ci == (0.0, 0.0)
    assert np.isnan(res.wilcoxon_p) and "all differences are zero" in res.note
    assert res.correlation.loc["pearson", "estimate"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="scores_a has 5 values, scores_b has 4"):
        paired_comparison(x, x[:4])


# ----------------------------------------------------------------------------- run table join, CSV
def _run_and_annotations():
    rng = np.random.default_rng(8)
    ids = [str(i) for i in range(30)]
    judge = rng.integers(0, 6, 30).astype(float)
    status = np.where(np.arange(30) % 7 == 3, "failed", "ok")
    run = pd.DataFrame(dict(id=ids, score=np.where(status == "ok", judge, np.nan), judge_status=status))
    run.loc[5, "score"] = 4.0  # a failed row that still carries a score must be ignored
    run.loc[5, "judge_status"] = "failed"
    rows = []
    for name, sl, noise in (("alice", slice(0, 30), 1), ("bob", slice(10, 30), 2)):
        for i in range(30)[sl]:
            rows.append(dict(sample_id=int(i), annotator=name,
                             score=float(np.clip(judge[i] + rng.integers(-noise, noise + 1), 0, 5))))
    rows.append(dict(sample_id=99, annotator="carol", score=2.0))
    return run, pd.DataFrame(rows)


def test_agreement_table_per_annotator_and_mean_human():
    run, ann = _run_and_annotations()
    table = agreement_table(run.set_index("id"), ann, n_boot=100)
    assert list(table.columns[:3]) == ["rater", "rater_kind", "method"]
    assert set(table["rater"]) == {"alice", "bob", "carol", "mean_human"} and len(table) == 12
    ok = run[run["judge_status"] == "ok"].set_index("id")["score"]
    human = ann.assign(sample_id=ann["sample_id"].astype(str)).pivot(index="sample_id", columns="annotator",
                                                                    values="score")
    for rater, h in (("alice", human["alice"]), ("bob", human["bob"]), ("mean_human", human.mean(axis=1))):
        j, hh = ok.align(h.dropna(), join="inner")
        row = table[(table["rater"] == rater) & (table["method"] == "kendall")].iloc[0]
        assert row["n"] == len(j)
        assert row["estimate"] == pytest.approx(stats.kendalltau(j, hh).statistic)
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    carol = table[table["rater"] == "carol"]
    assert carol["estimate"].isna().all() and carol["note"].str.contains("at least 3").all()
    assert table.attrs["n_judge_not_ok"] == int((run["judge_status"] != "ok").sum())
    only = agreement_table(run, ann, annotator="bob", n_boot=0)
    assert set(only["rater"]) == {"bob"} and len(only) == 3
    with pytest.raises(ValueError, match="annotator 'dave' not in annotations"):
        agreement_table(run, ann, annotator="dave")
    with pytest.raises(ValueError, match="run_table: duplicated id '1'"):
        agreement_table(pd.concat([run, run.iloc[[1]]]), ann)
    with pytest.raises(ValueError, match="run_table: missing 'score'"):
        agreement_table(run.drop(columns="score"), ann)


def test_load_annotations_csv(tmp_path):
    good = tmp_path / "ann.csv"
    good.write_text("sample_id,annotator,score,accept\n007,alice,4,yes\n8,alice,2.5,\n007,bob,5,False\n")
    df = load_annotations_csv(good)
    assert list(df["sample_id"]) == ["007", "8", "007"]  # ids stay strings (leading zeros kept)
    assert df["score"].tolist() == [4.0, 2.5, 5.0]
    assert df["accept"].dtype == "boolean"
    assert df["accept"].iloc[0] and pd.isna(df["accept"].iloc[1]) and not df["accept"].iloc[2]
    cases = {
        "sample_id,annotator,score\n1,alice,4\n2,alice,7\n": r"line 3, column 'score': '7' is not a number in 0-5",
        "sample_id,annotator,score\n1,alice,4\n2,alice,abc\n": r"line 3, column 'score': 'abc'",
        "sample_id,annotator,score\n1,,4\n": r"line 2, column 'annotator': empty value",
        "sample_id,annotator,score\n1,bob,\n": r"line 2, column 'score': empty value",
        "sample_id,annotator\n1,alice\n": r"missing column\(s\) \['score'\]",
        "sample_id,annotator,score\n1,alice,4\n1,alice,3\n": r"line 3: annotator 'alice' rated sample '1' more",
        "sample_id,annotator,score,accept\n1,alice,4,perhaps\n": r"line 2, column 'accept': 'perhaps'",
    }
    for i, (text, msg) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.csv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_annotations_csv(bad)


# ----------------------------------------------------------------------------- plot
def test_plot_agreement_returns_annotated_figure():
    judge = np.array([0, 1, 2, 3, 4, 5, 5, 3, 2, 1], dtype=float)
    human = np.array([1, 1, 2, 4, 4, 5, 4, 3, 1, 0], dtype=float)
    fig = plot_agreement(judge, human, title="judge vs alice")
    try:
        ax = fig.axes[0]
        text = "\n".join(t.get_text() for t in ax.texts)
        assert f"r = {stats.pearsonr(judge, human).statistic:.2f}" in text
        assert f"τ = {stats.kendalltau(judge, human).statistic:.2f}" in text and "n = 10" in text
        offsets = ax.collections[0].get_offsets()
        assert len(offsets) == 10 and not np.allclose(offsets[:, 0], judge)  # jittered
        assert np.abs(offsets[:, 0] - judge).max() <= 0.15
        assert len(ax.lines) == 1 and ax.get_title() == "judge vs alice"
    finally:
        plt.close(fig)
    fig2, ax2 = plt.subplots()
    try:
        assert plot_agreement(judge, np.full(10, 3.0), ax=ax2) is fig2
        assert "r = n/a" in ax2.texts[0].get_text() and len(ax2.lines) == 0  # no fit on constant data
    finally:
        plt.close(fig2)


def test_weighted_kappa_equals_scikit_learn_and_takes_half_points():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 40)
    b = np.clip(a + rng.integers(-1, 2, 40), 0, 5)
    for w in ("linear", "quadratic"):
        ref = cohen_kappa_score(a, b, labels=np.arange(6), weights=w)
        assert weighted_kappa(a, b, w) == pytest.approx(ref, abs=1e-12)
    half_a, half_b = a / 2 + 2.5, b / 2 + 2.5  # half-point scores: the same ratings on a finer scale
    assert weighted_kappa(half_a, half_b) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    with pytest.raises(ValueError):
        cohen_kappa_score(half_a, half_b, weights="quadratic")  # what used to raise
    ann = pd.DataFrame({"sample_id": [f"s{i}" for i in range(40)] * 2, "annotator": ["x"] * 40 + ["y"] * 40,
                        "score": np.concatenate([half_a, half_b])})
    iaa = inter_annotator_agreement(ann)
    assert iaa.kappa["kappa"].iloc[0] == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    assert np.isnan(weighted_kappa([2, 2, 2], [2, 2, 2]))
