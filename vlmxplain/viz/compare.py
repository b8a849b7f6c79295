"""Figures comparing two runs: where samples moved between quadrants, and score against score."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.defaults import SCORE_RANGE
from .figures import QUADRANT_COLORS, new_figure


def plot_transition_matrix(transitions: pd.DataFrame, label_a: str = "run A", label_b: str = "run B", ax=None,
                           title: str | None = None):
    """The quadrant transition table (rows: run A's quadrant, columns: run B's) as an annotated
    heat map; the diagonal (samples that stayed) is outlined."""
    import seaborn as sns
    from matplotlib.patches import Rectangle

    if ax is None:
        fig, ax = new_figure((1.25 * len(transitions.columns) + 2.6, 0.75 * len(transitions.index) + 1.8))
    else:
        fig = ax.figure
    sns.heatmap(transitions, annot=True, fmt="d", cmap="Blues", cbar=False, linewidths=1, linecolor="white", ax=ax,
                vmin=0)
    for i, q in enumerate(transitions.index):
        if q in transitions.columns:
            ax.add_patch(Rectangle((list(transitions.columns).index(q), i), 1, 1, fill=False, edgecolor="black",
                                   lw=1.5, gid="stayed"))
    moved = int(transitions.to_numpy().sum() - sum(transitions.loc[q, q] for q in transitions.index
                                                  if q in transitions.columns))
    ax.set(xlabel=f"quadrant in {label_b}", ylabel=f"quadrant in {label_a}")
    ax.set_title(title or f"Quadrant transitions ({moved} of {int(transitions.to_numpy().sum())} samples moved)")
    return fig


def plot_score_scatter(scores_a: pd.Series, scores_b: pd.Series, quadrant_a: pd.Series | None = None,
                       label_a: str = "run A", label_b: str = "run B", ax=None, title: str | None = None):
    """Each sample's score in run A against run B (colour: its quadrant in run A), with the
    diagonal of equal scores."""
    if ax is None:
        fig, ax = new_figure((5.6, 4.6))
    else:
        fig = ax.figure
    a, b = pd.to_numeric(scores_a, errors="coerce"), pd.to_numeric(scores_b, errors="coerce")
    ok = a.notna() & b.notna()
    groups = quadrant_a[ok] if quadrant_a is not None else pd.Series("sample", index=a[ok].index)
    for name in pd.unique(groups):
        sel = groups == name
        ax.scatter(a[ok][sel], b[ok][sel], s=22, alpha=0.75, color=QUADRANT_COLORS.get(name, "#555"),
                   label=f"{name} ({int(sel.sum())})", edgecolor="none")
    lo, hi = SCORE_RANGE
    ax.plot([lo, hi], [lo, hi], color="#888", linestyle="--", linewidth=1, gid="diagonal")
    ax.set(xlim=(lo - 0.2, hi + 0.2), ylim=(lo - 0.2, hi + 0.2), xlabel=f"score in {label_a}",
           ylabel=f"score in {label_b}")
    if ok.any():
        diff = float(np.mean(b[ok] - a[ok]))
        ax.set_title(title or f"Scores: mean change {diff:+.2f} (n = {int(ok.sum())})")
        ax.legend(title=f"quadrant in {label_a}", fontsize=8, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig
