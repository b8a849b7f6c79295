"""Figures: the quadrant matrix, score histograms, galleries of masked images per quadrant."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.quadrants import QUADRANTS, QuadrantSummary
from ..core.text import clean_text
from ..store import Run

QUADRANT_COLORS = {"Correct-High": "#2a9d8f", "Correct-Low": "#e9c46a", "Wrong-High": "#f4a261", "Wrong-Low": "#e76f51"}


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def plot_quadrant_matrix(summary: QuadrantSummary, ax=None, title: str | None = None):
    """The 2×2 matrix as an annotated heat map (count and share per cell)."""
    import seaborn as sns

    fig, ax = _new_axes(ax, (4.6, 3.8))
    matrix = summary.matrix
    total = max(summary.total, 1)
    labels = np.array([[f"{v}\n{v / total:.0%}" for v in row] for row in matrix.to_numpy()])
    sns.heatmap(matrix, annot=labels, fmt="", cmap="Blues", cbar=False, linewidths=1, linecolor="white",
                annot_kws={"fontsize": 13}, ax=ax, vmin=0)
    ax.set_xlabel(f"judge score ≥ {summary.threshold:g}?")
    ax.set_ylabel("prediction")
    ax.set_title(title or f"Quadrant matrix (n = {summary.total})")
    return fig


def plot_score_histogram(table: pd.DataFrame, threshold: float, ax=None, title: str | None = None):
    """Judge scores split by prediction correctness, with the threshold marked."""
    import seaborn as sns

    fig, ax = _new_axes(ax, (5.5, 3.6))
    df = table[table["score"].notna() & table["correct"].notna()].copy()
    df["prediction"] = np.where(df["correct"].astype(bool), "correct", "wrong")
    if len(df):
        sns.histplot(df, x="score", hue="prediction", hue_order=["correct", "wrong"], bins=np.linspace(0, 5, 11),
                     multiple="dodge", shrink=0.85, palette={"correct": "#2a9d8f", "wrong": "#e76f51"}, ax=ax)
    else:
        ax.text(0.5, 0.5, "no judged samples", ha="center", va="center", transform=ax.transAxes)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, 5)
    ax.set_xlabel("judge score (0–5)")
    ax.set_title(title or "Judge scores by correctness")
    return fig


def plot_quadrant_gallery(run: Run, per_quadrant: int = 4, threshold: float | None = None, view: str = "masked",
                          title: str | None = None):
    """A grid: one row per quadrant, up to ``per_quadrant`` masked images (lowest/highest
    scores first where it matters: Correct-Low by ascending score, the others descending)."""
    import matplotlib.pyplot as plt

    table = run.table_for(threshold=threshold)
    rows = []
    for q in QUADRANTS:
        part = table[table["quadrant"] == q].sort_values("score", ascending=q.endswith("Low"))
        rows.append((q, part.head(per_quadrant)))
    fig, axes = plt.subplots(len(QUADRANTS), per_quadrant, figsize=(2.3 * per_quadrant, 2.6 * len(QUADRANTS)),
                             squeeze=False, layout="constrained")
    for r, (q, part) in enumerate(rows):
        for c in range(per_quadrant):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_color(QUADRANT_COLORS[q])
                side.set_linewidth(3)
            if c == 0:
                ax.set_ylabel(f"{q}\n({int((table['quadrant'] == q).sum())})", fontsize=10)
            if c >= len(part):
                ax.set_facecolor("#f4f4f4")
                continue
            row = part.iloc[c]
            item = run.judge_input(row["id"])
            ax.imshow(item.overlay if view == "overlay" else item.masked)
            name = str(row["predicted_name"]).split(",")[0][:18]
            # ids and class names are data: plain text ("$" is not mathtext), no control characters
            ax.set_title(clean_text(f"{row['id'][:16]}\n→ {name}  s={row['score']:.1f}"), fontsize=8, parse_math=False)
    cut = run.threshold if threshold is None else threshold
    fig.suptitle(title or f"{view.capitalize()} CAM images per quadrant (threshold {cut:g})")
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (PNG unless the suffix says otherwise), creating folders; closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def slug(*parts: object) -> str:
    """A file-name-safe tag from parameter values: ``slug("shapes:n=60", "gradcam")`` →
    ``"shapes-n-60-gradcam"``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(str(p) for p in parts)).strip("-")


def show_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (:func:`save_figure`) and display the saved PNG in a notebook (the figure is
    closed, so it is shown once, as written)."""
    from IPython.display import Image, display

    path = save_figure(fig, path, dpi=dpi)
    display(Image(filename=str(path)))
    return path
