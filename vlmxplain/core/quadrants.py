"""The quadrant matrix: prediction correct? × judge score ≥ threshold?

Correct-High (right answer, good attention), Correct-Low (right answer, wrong reasons),
Wrong-High (a plausible mistake), Wrong-Low (a failure). A score exactly at the threshold
counts as High. Samples without a valid score, or without a known label, are not in the
matrix; they are counted separately.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import validate_threshold
from .defaults import DEFAULT_THRESHOLD
from .views import get_view

QUADRANTS = ("Correct-High", "Correct-Low", "Wrong-High", "Wrong-Low")
UNJUDGED = "Unjudged"
UNLABELLED = "Unlabelled"
#: Rows outside the matrix carry their judge status as their quadrant.
OUTSIDE = {"pending": "Pending", "skipped": "Skipped"}
#: Every value the quadrant column of a run table can hold.
QUADRANT_VALUES = (*QUADRANTS, UNJUDGED, UNLABELLED, *OUTSIDE.values())


def assign_quadrants(correct: pd.Series, score: pd.Series, threshold: float) -> pd.Series:
    """Quadrant name per row; ``Unjudged`` where the score is missing, ``Unlabelled`` where
    correctness is unknown (no label)."""
    t = validate_threshold(threshold)
    score = pd.to_numeric(score, errors="coerce")
    high = score >= t
    known = correct.notna()
    corr = correct.where(known, False).astype(bool)
    out = np.where(corr, np.where(high, QUADRANTS[0], QUADRANTS[1]), np.where(high, QUADRANTS[2], QUADRANTS[3]))
    out = np.where(score.isna(), UNJUDGED, out)
    out = np.where(~known.to_numpy(), UNLABELLED, out)
    return pd.Series(out, index=correct.index, name="quadrant")


def quadrant_column(table: pd.DataFrame, threshold: float) -> pd.Series:
    """The ``quadrant`` column of a run table (columns ``correct``, ``score``, ``judge_status``):
    :func:`assign_quadrants`, with pending and skipped rows named by their status."""
    out = assign_quadrants(table["correct"], table["score"], threshold)
    status = table["judge_status"]
    for name, label in OUTSIDE.items():
        out = out.mask(status == name, label)
    return out


@dataclass
class QuadrantSummary:
    """Counts and shares of the four quadrants, overall and per class."""

    threshold: float
    counts: pd.Series
    per_class: pd.DataFrame
    unjudged: int
    unlabelled: int

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def shares(self) -> pd.Series:
        return self.counts / self.total if self.total else self.counts.astype(float) * 0.0

    @property
    def matrix(self) -> pd.DataFrame:
        """The 2×2 count matrix: rows Correct/Wrong, columns High/Low."""
        c = self.counts
        return pd.DataFrame(
            [[c["Correct-High"], c["Correct-Low"]], [c["Wrong-High"], c["Wrong-Low"]]],
            index=pd.Index(["Correct", "Wrong"], name="prediction"),
            columns=pd.Index(["High", "Low"], name=f"score ≥ {self.threshold:g}"),
        )

    def plot(self, ax=None, title: str | None = None):
        """The matrix as a figure (:func:`vlmxplain.viz.figures.plot_quadrant_matrix`), shown once
        when it is a cell's value."""
        return get_view("quadrant_matrix")(self, ax=ax, title=title)

    def intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Each quadrant's count and share with its Wilson score interval at ``level`` (columns
        ``count``, ``share``, ``ci_low``, ``ci_high``; NaN when nothing is judged).

        The interval is where the quadrant's share of the population the judged samples come from
        lies, if they are a random sample of it: of the whole dataset for a run stopped early in
        ``explain``'s default shuffled order (not for failures, which need not be random)."""
        from scipy.stats import binomtest

        if not 0 < level < 1:
            raise ValueError(f"level: a confidence level between 0 and 1, got {level!r}")
        bounds = [binomtest(int(self.counts[q]), self.total).proportion_ci(level, method="wilson")
                  if self.total else None for q in QUADRANTS]
        return pd.DataFrame({"count": self.counts, "share": self.shares,
                             "ci_low": [np.nan if b is None else b.low for b in bounds],
                             "ci_high": [np.nan if b is None else b.high for b in bounds]}, index=list(QUADRANTS))

    def over_represented(self, quadrant: str = "Correct-Low", fdr: float = 0.05) -> pd.DataFrame:
        """Classes in which ``quadrant`` is more common than in the other classes (by default: right
        answers for the wrong reasons), among the answers of its row — a Correct quadrant among the
        class's right answers, a Wrong one among its wrong answers — so that a class is not flagged
        for being easy or hard. One-sided Fisher exact test per class (its count in the quadrant and
        out of it against the other classes'), p-values adjusted for the number of classes tested
        (Benjamini-Hochberg: ``q``); ``flagged`` where ``q <= fdr``, so about ``fdr`` of the flagged
        classes are expected to be chance. Columns ``n`` (the class's answers in the row), ``count``,
        ``share``, ``rest_share``, ``p``, ``q``, ``flagged``; one row per class with such answers,
        most over-represented first."""
        from scipy.stats import false_discovery_control, fisher_exact

        if quadrant not in QUADRANTS:
            raise ValueError(f"quadrant: one of {', '.join(QUADRANTS)}, got {quadrant!r}")
        if not 0 < fdr < 1:
            raise ValueError(f"fdr: a false discovery rate between 0 and 1, got {fdr!r}")
        row = [q for q in QUADRANTS if q.split("-")[0] == quadrant.split("-")[0]]
        answers = self.per_class[row].sum(axis=1).astype(int)
        n, k = answers[answers > 0], self.per_class.loc[answers > 0, quadrant].astype(int)
        rest_n, rest_k = int(n.sum()) - n, int(k.sum()) - k
        p = [fisher_exact([[a, b - a], [c, d - c]], alternative="greater").pvalue
             for a, b, c, d in zip(k, n, rest_k, rest_n)]
        out = pd.DataFrame({"n": n, "count": k, "share": k / n,
                            "rest_share": np.where(rest_n > 0, rest_k / rest_n.where(rest_n > 0, 1), np.nan),
                            "p": p}, index=n.index)
        out["q"] = false_discovery_control(out["p"]) if len(out) else out["p"]
        out["flagged"] = out["q"] <= fdr
        return out.sort_values(["p", "share"], ascending=[True, False])

    def to_frame(self) -> pd.DataFrame:
        """:meth:`intervals` at 95 %."""
        return self.intervals()

    def _repr_html_(self) -> str:
        frame = self.intervals()
        rows = "".join(
            f"<tr><th>{q}</th><td>{int(r['count'])}</td><td>{r['share']:.1%}</td>"
            f"<td>{'' if np.isnan(r['ci_low']) else f'{r.ci_low:.1%}–{r.ci_high:.1%}'}</td></tr>"
            for q, r in frame.iterrows()
        )
        extra = f"<p>threshold {self.threshold:g}; {self.total} judged; {self.unjudged} unjudged; {self.unlabelled} unlabelled</p>"
        return f"<table><tr><th></th><th>count</th><th>share</th><th>95 % CI</th></tr>{rows}</table>{extra}"

    def __repr__(self) -> str:
        parts = ", ".join(f"{q}={int(self.counts[q])} ({self.shares[q]:.0%})" for q in QUADRANTS)
        return f"QuadrantSummary(threshold={self.threshold:g}, {parts}, unjudged={self.unjudged})"


def quadrant_summary(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, by: str = "label") -> QuadrantSummary:
    """Quadrant counts from a per-sample table with columns ``correct``, ``score`` and ``by``.

    Per-class rows list every class present in the table, also those with no judged sample
    (all-zero counts, shares 0)."""
    quadrant = assign_quadrants(table["correct"], table["score"], threshold)
    counts = quadrant.value_counts().reindex(QUADRANTS, fill_value=0).astype(int)
    classes = table[by].fillna("").astype(str) if by in table else pd.Series("", index=table.index)
    per = pd.crosstab(classes, quadrant).reindex(columns=list(QUADRANTS), fill_value=0)
    per = per.reindex(sorted(classes.unique()), fill_value=0).astype(int)
    per.index.name = by
    per.columns.name = None
    per["n"] = per[list(QUADRANTS)].sum(axis=1)
    for q in QUADRANTS:
        per[f"{q} share"] = np.where(per["n"] > 0, per[q] / per["n"].where(per["n"] > 0, 1), 0.0)
    return QuadrantSummary(
        threshold=validate_threshold(threshold), counts=counts, per_class=per,
        unjudged=int((quadrant == UNJUDGED).sum()), unlabelled=int((quadrant == UNLABELLED).sum()),
    )
