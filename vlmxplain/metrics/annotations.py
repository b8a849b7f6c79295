"""Human annotations: reading and checking them, and how far annotators agree with each other.

Krippendorff's alpha (which neither scipy nor scikit-learn has: the coincidence-matrix definition,
Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") and weighted Cohen's kappa over
score distances; :mod:`.agreement` compares the annotators with the judge.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..core.defaults import SCORE_RANGE

__all__ = ["ANNOTATION_COLUMNS", "AlphaLevel", "InterAnnotatorAgreement", "inter_annotator_agreement",
           "krippendorff_alpha", "load_annotations_csv", "validate_annotations", "weighted_kappa"]

ANNOTATION_COLUMNS = ("sample_id", "annotator", "score")
AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]


# ----------------------------------------------------------------------------- Krippendorff's alpha
def _alpha(matrix: np.ndarray, level: str) -> tuple[float, str]:
    """Krippendorff's alpha of a units x coders matrix (NaN = missing) and a reason if undefined."""
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    values = np.unique(matrix[~np.isnan(matrix)])
    counts = (matrix[:, :, None] == values[None, None, :]).sum(axis=1).astype(float)  # n_uc
    m_u = counts.sum(axis=1)
    counts, m_u = counts[m_u >= 2], m_u[m_u >= 2]
    if len(m_u) == 0:
        return np.nan, "no sample was rated by at least 2 annotators"
    w = counts / (m_u - 1)[:, None]
    o = w.T @ counts - np.diag(w.sum(axis=0))  # coincidence matrix o_ck
    n_c = o.sum(axis=0)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    elif level == "ratio":
        s = values[:, None] + values[None, :]
        delta = np.divide((values[:, None] - values[None, :]) ** 2, s ** 2,
                          out=np.zeros((len(values),) * 2), where=s != 0)
    else:  # ordinal: (sum_{g=c..k} n_g - (n_c + n_k)/2)^2
        cs = np.cumsum(n_c)
        idx = np.arange(len(values))
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        delta = (cs[hi] - cs[lo] + n_c[lo] - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return np.nan, "no variation in the pairable ratings: alpha undefined"
    return float(1 - (n - 1) * (o * delta).sum() / expected), ""


def krippendorff_alpha(reliability_data: Any, level: AlphaLevel = "interval") -> float:
    """Krippendorff's alpha of a units x annotators matrix (rows = samples, NaN = missing).

    ``level`` picks the difference metric: nominal, ordinal, interval or ratio. Returns NaN when
    alpha is undefined (no sample rated twice, or no variation at all).
    """
    matrix = np.asarray(reliability_data, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"reliability_data must be 2-D (samples x annotators), got shape {matrix.shape}")
    return _alpha(matrix, level)[0]


# ----------------------------------------------------------------------------- annotations
def validate_annotations(df: Any, where=lambda i: f"row {i!r}") -> pd.DataFrame:
    """Check columns, score range and uniqueness; return a clean copy (sample_id/annotator as str)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"annotations must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in ANNOTATION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"annotations: missing column(s) {missing}; have {list(df.columns)}")
    out = df.copy()
    for col in ("sample_id", "annotator"):
        bad = out[col].isna() | (out[col].astype(str).str.strip() == "")
        if bad.any():
            raise ValueError(f"annotations {where(out.index[bad][0])}, column {col!r}: empty value")
        out[col] = out[col].astype(str).str.strip()
    score = pd.to_numeric(out["score"], errors="coerce")
    lo, hi = SCORE_RANGE
    bad = score.isna() | (score < lo) | (score > hi)
    if bad.any():
        i = out.index[bad][0]
        v = df.loc[i, "score"]
        what = "empty value" if pd.isna(v) else f"{str(v)!r} is not a number in {lo:g}-{hi:g}"
        raise ValueError(f"annotations {where(i)}, column 'score': {what}")
    out["score"] = score.astype(float)
    dup = out.duplicated(["sample_id", "annotator"])
    if dup.any():
        i = out.index[dup][0]
        raise ValueError(f"annotations {where(i)}: annotator {out.loc[i, 'annotator']!r} rated "
                         f"sample {out.loc[i, 'sample_id']!r} more than once")
    return out


_TRUE = {"true", "1", "1.0", "yes", "y", "t", "accept", "accepted"}
_FALSE = {"false", "0", "0.0", "no", "n", "f", "reject", "rejected"}


def load_annotations_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a CSV with columns ``sample_id, annotator, score[, accept]``.

    ``score`` must be a number in 0-5; ``accept`` (optional) true/false/yes/no/1/0 or empty.
    Errors name the file line and the column. ``sample_id`` and ``annotator`` are read as strings.
    """
    df = pd.read_csv(path, dtype={"sample_id": str, "annotator": str}, skipinitialspace=True)
    where = lambda i: f"{os.fspath(path)} line {int(i) + 2}"  # noqa: E731 (header is line 1)
    out = validate_annotations(df, where)
    if "accept" in out.columns:
        raw = out["accept"].astype("string").str.strip().str.lower()
        bad = raw.notna() & ~raw.isin(_TRUE | _FALSE)
        if bad.any():
            i = out.index[bad][0]
            raise ValueError(f"annotations {where(i)}, column 'accept': {str(df.loc[i, 'accept'])!r} is "
                             "not one of true/false/yes/no/1/0")
        out["accept"] = raw.map(lambda v: pd.NA if pd.isna(v) else v in _TRUE).astype("boolean")
    return out


@dataclass
class InterAnnotatorAgreement:
    """Krippendorff's alpha per level and pairwise quadratic-weighted Cohen's kappa."""

    alpha: dict[str, float]
    alpha_notes: dict[str, str]
    kappa: pd.DataFrame  # annotator_a, annotator_b, kappa, n_common, note
    n_annotators: int
    n_samples: int  # samples rated by at least 2 annotators

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per alpha level and per annotator pair."""
        rows = [dict(metric="krippendorff_alpha", level=lvl, pair="", value=v,
                     n=self.n_samples, note=self.alpha_notes.get(lvl, "")) for lvl, v in self.alpha.items()]
        rows += [dict(metric="cohen_kappa", level="quadratic", pair=f"{r.annotator_a} vs {r.annotator_b}",
                      value=r.kappa, n=r.n_common, note=r.note) for r in self.kappa.itertuples()]
        return pd.DataFrame(rows)


def weighted_kappa(a: Any, b: Any, weights: Literal["linear", "quadratic"] = "quadratic") -> float:
    """Weighted Cohen's kappa of two raters' scores, with weights by score *distance*
    (``|x - y|`` or ``(x - y)²``) over the observed values, so half points (2.5) are fine. Equals
    scikit-learn's ``cohen_kappa_score`` on integer scores with the full integer scale as labels;
    NaN when it is undefined (no variation)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"scores: expected two equal-length 1-D sequences, got shapes {x.shape} and {y.shape}")
    if weights not in ("linear", "quadratic"):
        raise ValueError(f"weights: 'linear' or 'quadratic', got {weights!r}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores: must be finite (drop missing pairs first)")
    values = np.unique(np.concatenate([x, y]))
    ix, iy = np.searchsorted(values, x), np.searchsorted(values, y)
    k = len(values)
    observed = np.zeros((k, k))
    np.add.at(observed, (ix, iy), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(observed.sum(), 1.0)
    dist = np.abs(values[:, None] - values[None, :])
    w = dist if weights == "linear" else dist ** 2
    denom = float((w * expected).sum())
    return float(1.0 - (w * observed).sum() / denom) if denom > 0 else float("nan")


def inter_annotator_agreement(annotations: pd.DataFrame, *,
                              levels: tuple[AlphaLevel, ...] = ("ordinal", "interval"),
                              ) -> InterAnnotatorAgreement:
    """Agreement between human annotators (columns ``sample_id, annotator, score``).

    Krippendorff's alpha uses every sample rated by at least two annotators (missing ratings are
    allowed); Cohen's kappa (quadratic weights, :func:`weighted_kappa`) uses each pair's common
    samples, with weights following score distances (half points included).
    """
    ann = validate_annotations(annotations)
    wide = ann.pivot(index="sample_id", columns="annotator", values="score")
    if wide.shape[1] < 2:
        raise ValueError(f"annotations: need at least 2 annotators, got {list(wide.columns)}")
    matrix = wide.to_numpy(dtype=float)
    alpha, notes = {}, {}
    for lvl in levels:
        alpha[lvl], note = _alpha(matrix, lvl)
        if note:
            notes[lvl] = note
    rows = []
    for a, b in combinations(wide.columns, 2):
        both = wide[[a, b]].dropna()
        k, note = np.nan, ""
        if len(both) < 2:
            note = f"only {len(both)} common sample(s)"
        else:
            k = weighted_kappa(both[a], both[b])
            if np.isnan(k):
                note = "kappa undefined (no variation)"
        rows.append(dict(annotator_a=a, annotator_b=b, kappa=k, n_common=len(both), note=note))
    n_samples = int((wide.notna().sum(axis=1) >= 2).sum())
    return InterAnnotatorAgreement(alpha, notes, pd.DataFrame(rows), wide.shape[1], n_samples)
