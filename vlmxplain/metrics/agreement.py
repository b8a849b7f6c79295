"""Judge-vs-human agreement statistics.

Correlations with bootstrap confidence intervals, the human acceptance rate of judge explanations
and the paired comparison of two judge input kinds (masked vs overlay) (the scatter plot is in
:mod:`vlmxplain.viz`); the agreement between annotators, and reading their files, is in
:mod:`.annotations` (re-exported here). Statistics come from scipy.

Degenerate bootstrap resamples: a resample in which judge or human scores are constant has no
correlation (NaN). scipy's interval is then NaN (and BCa also fails when the jackknife or the
bootstrap distribution is degenerate). In that case the percentile interval is taken over the
finite resamples only (conditioning on non-degenerate resamples) and the ``note`` column says how
many were left out; if fewer than ``MIN_VALID_RESAMPLE_SHARE`` of them are finite the CI is NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from ..core.defaults import SCORE_RANGE
from .annotations import (AlphaLevel, InterAnnotatorAgreement, inter_annotator_agreement, krippendorff_alpha,
                          load_annotations_csv, validate_annotations, weighted_kappa)

__all__ = ["SCORE_RANGE", "TooFewPairsError", "AcceptanceRate", "InterAnnotatorAgreement", "PairedComparison",
           "correlations", "krippendorff_alpha", "inter_annotator_agreement", "acceptance_rate",
           "paired_comparison", "agreement_table", "load_annotations_csv", "paired_scores", "validate_annotations",
           "weighted_kappa", "AlphaLevel"]

MIN_VALID_RESAMPLE_SHARE = 0.5
CiMethod = Literal["BCa", "percentile"]
_QUIET = (stats.ConstantInputWarning, stats.DegenerateDataWarning, RuntimeWarning)


class TooFewPairsError(ValueError):
    """Fewer than 3 complete pairs remain after dropping NaNs."""


class AcceptanceRate(NamedTuple):
    """Share of accepted explanations and its Wilson confidence interval ``(low, high)``."""

    rate: float
    ci: tuple[float, float]


# ----------------------------------------------------------------------------- input handling
def paired_scores(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Align two score vectors (by index if both are Series, else by position); drop NaN pairs."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        for s, nm in ((a, names[0]), (b, names[1])):
            if s.index.has_duplicates:
                dup = s.index[s.index.duplicated()][0]
                raise ValueError(f"{nm}: duplicated index label {dup!r}; Series are aligned by index")
        a, b = a.align(b, join="outer")
    arrs = []
    for v, nm in ((a, names[0]), (b, names[1])):
        obj = np.asarray(v, dtype=object)
        if obj.ndim != 1:
            raise ValueError(f"{nm}: expected a 1-D sequence of scores, got shape {obj.shape}")
        try:
            arr = pd.to_numeric(pd.Series(obj)).to_numpy(dtype=float, na_value=np.nan)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{nm}: scores must be numeric ({e})") from None
        if np.isinf(arr).any():
            raise ValueError(f"{nm}: contains infinite values")
        arrs.append(arr)
    x, y = arrs
    if len(x) != len(y):
        raise ValueError(f"length mismatch: {names[0]} has {len(x)} values, {names[1]} has {len(y)}")
    keep = ~(np.isnan(x) | np.isnan(y))
    n_dropped = int((~keep).sum())
    if keep.sum() < 3:
        raise TooFewPairsError(f"need at least 3 complete ({names[0]}, {names[1]}) pairs, got "
                               f"{int(keep.sum())} ({n_dropped} dropped for missing values)")
    return x[keep], y[keep], n_dropped


def _check_ci(n_boot: int, ci: float, ci_method: str) -> None:
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if ci_method not in ("BCa", "percentile"):
        raise ValueError(f"ci_method must be 'BCa' or 'percentile', got {ci_method!r}")


def _bootstrap_ci(data: tuple[np.ndarray, ...], statistic, *, vectorized: bool, n_boot: int,
                  ci: float, ci_method: str, seed: int) -> tuple[float, float, str, str]:
    """scipy bootstrap CI (paired); percentile over finite resamples if scipy's CI is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _QUIET)
        res = stats.bootstrap(data, statistic, paired=True, vectorized=vectorized,
                              n_resamples=n_boot, confidence_level=ci, method=ci_method,
                              rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if np.isfinite(low) and np.isfinite(high):
        return low, high, ci_method, ""
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    n_bad = int((~np.isfinite(dist)).sum())
    if n_bad > (1 - MIN_VALID_RESAMPLE_SHARE) * n_boot:
        return np.nan, np.nan, "", (f"CI undefined: {n_bad} of {n_boot} bootstrap resamples "
                                    "were degenerate (constant scores)")
    a = (1 - ci) / 2
    q = stats.quantile(dist, np.array([a, 1 - a]), nan_policy="omit")
    why = (f"{n_bad} of {n_boot} bootstrap resamples were degenerate and left out" if n_bad
           else f"{ci_method} undefined (degenerate bootstrap or jackknife distribution)")
    return float(q[0]), float(q[1]), "percentile", f"{why}; percentile interval"


def mean_ci(values, *, n_boot: int, ci: float = 0.95, seed: int = 0, min_n: int = 2) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the finite values, with a percentile bootstrap CI. Values without
    spread give the value itself as the interval; fewer than ``min_n`` values or ``n_boot=0`` give
    NaN bounds."""
    v = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan, np.nan
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0]), float(v[0])
    if len(v) < min_n or not n_boot:
        return float(v.mean()), np.nan, np.nan
    low, high, _, _ = _bootstrap_ci((v,), np.mean, vectorized=True, n_boot=n_boot, ci=ci, ci_method="percentile",
                                    seed=seed)
    return float(v.mean()), low, high


def _pearson(x, y, axis=-1):
    return stats.pearsonr(x, y, axis=axis).statistic


def _spearman(x, y, axis=-1):  # Spearman's rho is Pearson's r of the (average) ranks
    return stats.pearsonr(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis).statistic


def _kendall(x, y):
    return stats.kendalltau(x, y, variant="b").statistic


_METHODS = {  # name: (scipy test, bootstrap statistic, vectorized)
    "pearson": (lambda x, y: stats.pearsonr(x, y), _pearson, True),
    "spearman": (lambda x, y: stats.spearmanr(x, y), _spearman, True),
    "kendall": (lambda x, y: stats.kendalltau(x, y, variant="b"), _kendall, False),
}


# ----------------------------------------------------------------------------- correlations
def correlations(judge_scores: Any, human_scores: Any, *, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0, ci_method: CiMethod = "BCa") -> pd.DataFrame:
    """Pearson, Spearman and Kendall tau-b between judge and human scores.

    Inputs are aligned by position, or by index when both are pandas Series; pairs with a NaN are
    dropped (``n_dropped``). Returns one row per method (index ``method``) with ``estimate``,
    ``p_value``, ``ci_low``/``ci_high`` (paired scipy bootstrap, ``n_boot`` resamples, ``seed``;
    ``n_boot=0`` skips it), ``ci_level``, ``ci_method``, ``n``, ``n_dropped`` and ``note``.
    Constant input gives NaN rows with the reason in ``note``. Raises ``ValueError`` on length
    mismatch or non-numeric input and ``TooFewPairsError`` for fewer than 3 pairs.
    """
    _check_ci(n_boot, ci, ci_method)
    names = ("judge_scores", "human_scores")
    x, y, n_dropped = paired_scores(judge_scores, human_scores, names)
    constant = [f"{nm} is constant (all {v[0]:g}): correlation undefined"
                for v, nm in ((x, names[0]), (y, names[1])) if np.ptp(v) == 0]
    rows = []
    for method, (test, statistic, vectorized) in _METHODS.items():
        row = dict(method=method, estimate=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan,
                   ci_level=ci, ci_method="", n=len(x), n_dropped=n_dropped, note="; ".join(constant))
        if not constant:
            res = test(x, y)
            row.update(estimate=float(res.statistic), p_value=float(res.pvalue))
            if n_boot:
                lo, hi, used, note = _bootstrap_ci((x, y), statistic, vectorized=vectorized,
                                                   n_boot=n_boot, ci=ci, ci_method=ci_method, seed=seed)
                row.update(ci_low=lo, ci_high=hi, ci_method=used, note=note)
            else:
                row["note"] = "no bootstrap CI (n_boot=0)"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


# ----------------------------------------------------------------------------- acceptance, paired
def acceptance_rate(accepts: Any, *, ci: float = 0.95) -> AcceptanceRate:
    """Share of judge explanations humans accepted, with a Wilson score interval (scipy binomtest).

    ``accepts``: booleans or 0/1; missing values (None/NaN/pd.NA) are ignored.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    s = pd.Series(np.asarray(accepts, dtype=object).ravel()).dropna()
    bad = ~s.isin([True, False])  # 1/0 and 1.0/0.0 compare equal to True/False
    if bad.any():
        raise ValueError(f"accepts: expected booleans or 0/1, got {s[bad].iloc[0]!r}")
    if len(s) == 0:
        raise ValueError("accepts: no non-missing values")
    k, n = int(s.astype(bool).sum()), len(s)
    interval = stats.binomtest(k, n).proportion_ci(confidence_level=ci, method="wilson")
    return AcceptanceRate(k / n, (float(interval.low), float(interval.high)))


@dataclass
class PairedComparison:
    """Scores of two judge inputs (e.g. masked vs overlay) on the same samples; diff = a - b."""

    n: int
    n_dropped: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci: tuple[float, float]
    ci_level: float
    wilcoxon_statistic: float
    wilcoxon_p: float
    correlation: pd.DataFrame
    note: str = ""
    names: tuple[str, str] = ("a", "b")

    def to_frame(self) -> pd.DataFrame:
        """One-row summary (correlation rows are in ``.correlation``)."""
        row = {k: v for k, v in vars(self).items() if k not in ("correlation", "names", "ci")}
        return pd.DataFrame([dict(a=self.names[0], b=self.names[1], ci_low=self.ci[0], ci_high=self.ci[1], **row)])


def paired_comparison(scores_a: Any, scores_b: Any, *, names: tuple[str, str] = ("a", "b"),
                      n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
                      ci_method: CiMethod = "BCa", zero_method: str = "wilcox") -> PairedComparison:
    """Compare two judges' scores on the same samples (aligned like :func:`correlations`).

    Mean difference ``a - b`` with a bootstrap CI, Wilcoxon signed-rank test (scipy, ``zero_method``
    passed through) and the correlations between the two score vectors.
    """
    _check_ci(n_boot, ci, ci_method)
    a, b, n_dropped = paired_scores(scores_a, scores_b, ("scores_a", "scores_b"))
    d = a - b
    notes, lo, hi = [], np.nan, np.nan
    if n_boot:
        lo, hi, _, note = _bootstrap_ci((d,), np.mean, vectorized=True, n_boot=n_boot, ci=ci,
                                        ci_method=ci_method, seed=seed)
        notes += [f"mean_diff CI: {note}"] if note else []
    if np.all(d == 0):
        w_stat = w_p = np.nan
        notes.append("all differences are zero: Wilcoxon test undefined")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            w = stats.wilcoxon(a, b, zero_method=zero_method)
        w_stat, w_p = float(w.statistic), float(w.pvalue)
    corr = correlations(a, b, n_boot=n_boot, ci=ci, seed=seed, ci_method=ci_method)
    return PairedComparison(len(d), n_dropped, float(a.mean()), float(b.mean()), float(d.mean()),
                            (lo, hi), ci, w_stat, w_p, corr, "; ".join(notes), tuple(names))


# ----------------------------------------------------------------------------- run table join
def agreement_table(run_table: pd.DataFrame, annotations: pd.DataFrame, *, annotator: str | None = None,
                    n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
                    ci_method: CiMethod = "BCa") -> pd.DataFrame:
    """Judge-vs-human correlations per annotator and against the mean human score.

    ``run_table`` has ``id`` (column or index name) and ``score``; rows whose ``judge_status`` is not
    ``"ok"`` are excluded (count in ``.attrs["n_judge_not_ok"]``). Ids are matched as strings.
    Columns: ``rater``, ``rater_kind`` ("annotator"/"mean"), ``method`` and those of
    :func:`correlations`; ``n_dropped`` counts ids scored by only one side. ``mean_human`` (only
    with several annotators) averages the annotators who rated each sample. A rater with fewer
    than 3 pairs gets NaN rows with the reason in ``note``.
    """
    if not isinstance(run_table, pd.DataFrame):
        raise TypeError(f"run_table must be a pandas DataFrame, got {type(run_table).__name__}")
    rt = run_table.reset_index() if "id" not in run_table.columns and run_table.index.name == "id" \
        else run_table
    for col in ("id", "score"):
        if col not in rt.columns:
            raise ValueError(f"run_table: missing {col!r} (need an 'id' column or index, and 'score')")
    ok = rt["judge_status"].eq("ok") if "judge_status" in rt.columns else pd.Series(True, rt.index)
    judge = pd.to_numeric(rt.loc[ok, "score"], errors="coerce")
    judge.index = rt.loc[ok, "id"].astype(str).str.strip()
    if judge.index.has_duplicates:
        raise ValueError(f"run_table: duplicated id {judge.index[judge.index.duplicated()][0]!r}")
    ann = validate_annotations(annotations)
    raters = sorted(ann["annotator"].unique())
    if annotator is not None:
        if str(annotator) not in raters:
            raise ValueError(f"annotator {annotator!r} not in annotations; have {raters}")
        raters = [str(annotator)]
    wide = ann.pivot(index="sample_id", columns="annotator", values="score")
    humans = [(r, "annotator", wide[r]) for r in raters]
    if annotator is None and len(raters) > 1:
        humans.append(("mean_human", "mean", wide.mean(axis=1)))
    frames = []
    for name, kind, human in humans:
        try:
            f = correlations(judge, human.dropna(), n_boot=n_boot, ci=ci, seed=seed, ci_method=ci_method)
        except TooFewPairsError as e:
            f = pd.DataFrame(dict(estimate=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan,
                                  ci_level=ci, ci_method="", n=0, n_dropped=0, note=str(e)),
                             index=pd.Index(list(_METHODS), name="method"))
        frames.append(f.reset_index().assign(rater=name, rater_kind=kind))
    out = pd.concat(frames, ignore_index=True)
    out = out[["rater", "rater_kind", *[c for c in out.columns if c not in ("rater", "rater_kind")]]]
    out.attrs["n_judge_not_ok"] = int((~ok).sum())
    return out
