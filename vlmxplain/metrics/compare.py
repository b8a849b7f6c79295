"""``vx.compare(run_a, run_b)``: what changed between two runs of the same samples.

It serves every kind of comparison (CAM method, model, judge, prompt, alpha/beta): samples are
matched by id, and the comparison gives the quadrant transition table (which samples moved
where), the score scatter, and per-class differences. It lives with the measurements so that
experiments (e.g. :func:`vlmxplain.experiments.compare_cams`) can build on it; its figures come
from :mod:`vlmxplain.viz` through the view registry (:mod:`vlmxplain.core.views`).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.quadrants import QUADRANT_VALUES, QUADRANTS
from ..core.text import clean_text
from ..core.views import get_view
from ..store import Run, open_run

_KEEP = ["label", "predicted_name", "correct", "score", "quadrant"]


def describe(run: Run) -> str:
    """A short name of what defines a run: ``"<classifier> · <cam> → <judge> (a, b)"``."""
    v = run.view
    return f"{run.config.classifier.name} · {run.config.cam} → {v.judge.judge} (α {v.alpha:g}, β {v.beta:g})"


@dataclass
class Comparison:
    """Two runs matched by sample id (``table``: one row per shared sample, ``_a``/``_b`` columns)."""

    run_a: Run
    run_b: Run
    table: pd.DataFrame
    label_a: str
    label_b: str

    @property
    def transitions(self) -> pd.DataFrame:
        """Counts of samples by (quadrant in A, quadrant in B), every present value in order."""
        order = [q for q in QUADRANT_VALUES if q in set(self.table["quadrant_a"]) | set(self.table["quadrant_b"])]
        ct = pd.crosstab(self.table["quadrant_a"], self.table["quadrant_b"])
        return ct.reindex(index=order, columns=order, fill_value=0).rename_axis(index="A", columns="B")

    @property
    def moved(self) -> pd.DataFrame:
        """The samples whose quadrant changed, with both quadrants and scores."""
        t = self.table
        return t[t["quadrant_a"] != t["quadrant_b"]]

    @property
    def per_class(self) -> pd.DataFrame:
        """Per true class: samples, accuracy, mean score and each quadrant's share in A and B, and
        the differences B − A."""
        t = self.table[self.table["label"].notna()]
        rows = {}
        for label, g in t.groupby("label", sort=True):
            row = {"n": len(g)}
            for side in ("a", "b"):
                row[f"accuracy_{side}"] = float(g[f"correct_{side}"].astype(float).mean())
                row[f"mean_score_{side}"] = float(pd.to_numeric(g[f"score_{side}"], errors="coerce").mean())
                for q in QUADRANTS:
                    row[f"{q}_{side}"] = float((g[f"quadrant_{side}"] == q).mean())
            row["accuracy_diff"] = row["accuracy_b"] - row["accuracy_a"]
            row["mean_score_diff"] = row["mean_score_b"] - row["mean_score_a"]
            for q in QUADRANTS:
                row[f"{q}_diff"] = row[f"{q}_b"] - row[f"{q}_a"]
            rows[label] = row
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("label")

    @property
    def score_change(self) -> pd.Series:
        """Score in B − score in A per shared sample judged in both."""
        d = pd.to_numeric(self.table["score_b"], errors="coerce") - pd.to_numeric(self.table["score_a"], errors="coerce")
        return d.dropna()

    def plot_transitions(self, ax=None, title: str | None = None):
        """The transition table as a figure."""
        return get_view("transition_matrix")(self.transitions, "A", "B", ax=ax, title=title)

    def plot_scores(self, ax=None, title: str | None = None):
        """Score in A against score in B, coloured by the quadrant in A."""
        t = self.table
        return get_view("score_scatter")(t["score_a"], t["score_b"], t["quadrant_a"], "A", "B", ax=ax, title=title)

    def _repr_html_(self) -> str:
        def esc(text: str) -> str:
            return html.escape(clean_text(text), quote=True)

        change = self.score_change
        mean = f"{change.mean():+.2f}" if len(change) else "—"
        return (f"<p><b>A</b>: {esc(self.label_a)}<br><b>B</b>: {esc(self.label_b)}<br>{len(self.table)} shared "
                f"samples, {len(self.moved)} moved quadrant, mean score change {mean}</p>"
                f"{self.transitions.to_html(border=0)}")

    def __repr__(self) -> str:
        return f"Comparison(A={self.label_a!r}, B={self.label_b!r}, shared={len(self.table)}, moved={len(self.moved)})"


def compare(run_a: "Run | str | Path", run_b: "Run | str | Path", *, threshold: float | None = None) -> Comparison:
    """Compare two runs over the samples they share (matched by id). ``threshold`` sets both runs'
    High/Low cut (default: each run's own)."""
    a = run_a if isinstance(run_a, Run) else open_run(run_a)
    b = run_b if isinstance(run_b, Run) else open_run(run_b)
    ta, tb = a.table_for(threshold=threshold), b.table_for(threshold=threshold)
    shared = ta.index.intersection(tb.index)
    if len(shared) == 0:
        raise ValueError(f"compare: {a.run_dir} and {b.run_dir} share no sample id (runs of different data?)")
    joined = pd.concat([ta.loc[shared, _KEEP].add_suffix("_a"), tb.loc[shared, _KEEP].add_suffix("_b")], axis=1)
    labels_a, labels_b = joined.pop("label_a"), joined.pop("label_b")
    joined.insert(0, "label", labels_a.where(labels_a.notna(), labels_b))
    joined.insert(0, "id", shared)
    for side in ("a", "b"):
        joined[f"correct_{side}"] = joined[f"correct_{side}"].astype("boolean")
    joined["score_change"] = (pd.to_numeric(joined["score_b"], errors="coerce")
                              - pd.to_numeric(joined["score_a"], errors="coerce")).astype(float)
    joined["moved"] = joined["quadrant_a"] != joined["quadrant_b"]
    return Comparison(a, b, joined, describe(a), describe(b))
