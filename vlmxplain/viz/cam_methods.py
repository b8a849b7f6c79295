"""Figures of a CAM-method comparison (:func:`vlmxplain.experiments.compare_cams`): per-method
metric bars with CI error bars, the method × quadrant share heat map, and the quadrant transitions
of one pair of methods."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..experiments.cam_methods import GAP, SCORE, CamComparison
from .compare import plot_transition_matrix
from .figures import new_figure

#: What each bar panel shows by default, with its axis label.
PANELS = {SCORE: "mean judge score (0-5)", GAP: "insertion - deletion AUC", "deletion_auc": "deletion AUC",
          "insertion_auc": "insertion AUC"}


def _label(metric: str, result: CamComparison) -> str:
    text = PANELS.get(metric, metric.replace("_", " "))
    return f"{text} ({'higher' if result.higher_is_better(metric) else 'lower'} is better)"


def plot_cam_metrics(result: CamComparison, metrics: Sequence[str] = (SCORE, GAP, "deletion_auc", "insertion_auc"),
                     title: str | None = None):
    """One panel per metric: each method's mean with its bootstrap CI as an error bar. The best
    method is drawn dark; methods whose paired CI against it includes 0 (indistinguishable) are
    hatched; the others are light. Returns the Figure."""
    metrics = [m for m in metrics if m in result.table and result.table[m].notna().any()]
    if not metrics:
        raise ValueError("metrics: none of them was measured in this comparison")
    labels = result.labels
    fig, axes = new_figure((max(3.2, 0.7 * len(labels) + 1.4) * len(metrics), 3.6), 1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        t = result.table.loc[labels]
        mean = t[metric].to_numpy(float)
        err = np.vstack([mean - t[f"{metric}_ci_low"].to_numpy(float), t[f"{metric}_ci_high"].to_numpy(float) - mean])
        best = result.best(metric)
        tied = set(result.indistinguishable(metric)) if len(labels) > 1 else {best}
        colors = ["#1d3557" if lab == best else "#457b9d" if lab in tied else "#a8dadc" for lab in labels]
        bars = ax.bar(range(len(labels)), mean, color=colors, yerr=np.nan_to_num(err), capsize=4,
                      error_kw={"elinewidth": 1.2})
        for bar, lab in zip(bars, labels):
            bar.set_gid(f"bar-{lab}")
            if lab in tied and lab != best:
                bar.set_hatch("//")
        ax.axhline(0, color="#888", lw=0.8)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(_label(metric, result), fontsize=8)
    fig.suptitle(title or f"CAM methods on {result.samples['id'].nunique()} samples, mean with "
                 f"{result.ci:.0%} bootstrap CI\n(dark: best; hatched: not distinguishable from it by a paired CI)",
                 fontsize=9)
    return fig


def plot_quadrant_shares(result: CamComparison, ax=None, title: str | None = None):
    """Methods (rows) × quadrants (columns): the share of samples in each quadrant, annotated."""
    import seaborn as sns

    shares = result.quadrant_shares.loc[result.labels]
    if ax is None:
        fig, ax = new_figure((1.3 * shares.shape[1] + 2.8, 0.5 * shares.shape[0] + 1.6))
    else:
        fig = ax.figure
    sns.heatmap(shares, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, cbar_kws={"label": "share of samples"},
                linewidths=1, linecolor="white", ax=ax)
    ax.set(xlabel="quadrant", ylabel="method")
    ax.set_title(title or f"Quadrant shares by CAM method (judge {result.judge}, threshold {result.threshold:g})",
                 fontsize=9)
    return fig


def plot_cam_transitions(result: CamComparison, a: str, b: str, ax=None, title: str | None = None):
    """Where samples move between quadrants from method ``a`` to method ``b``."""
    tr = result.transitions(a, b)
    stayed = sum(int(tr.loc[q, q]) for q in tr.index if q in tr.columns)
    total = int(tr.to_numpy().sum())
    return plot_transition_matrix(tr, a, b, ax=ax, title=title or f"Quadrant transitions {a} -> {b} "
                                  f"({total - stayed} of {total} samples moved)")
