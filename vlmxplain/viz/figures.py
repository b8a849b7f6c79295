"""Figures: the quadrant matrix, score histograms, galleries of masked images per quadrant."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.quadrants import QUADRANTS, QuadrantSummary
from ..core.text import clean_text
from ..store import Run

QUADRANT_COLORS = {"Correct-High": "#2a9d8f", "Correct-Low": "#e9c46a", "Wrong-High": "#f4a261", "Wrong-Low": "#e76f51"}


@lru_cache(maxsize=1)
def figure_class() -> type:
    """A matplotlib ``Figure`` that pyplot does not manage and that renders itself as PNG: a
    returned figure is shown exactly once in a notebook (no second copy from pyplot's inline
    flush), also where the backend is Agg, and it is freed when no longer referenced."""
    import io

    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=100, bbox_inches="tight")
            return buf.getvalue()

    return NotebookFigure


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, *, squeeze: bool = True, **subplot_kw):
    """``(figure, axes)`` like ``plt.subplots``, but the figure is not pyplot's: see
    :func:`figure_class`."""
    fig = figure_class()(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    return new_figure(figsize)


def share_text(count: int, total: int) -> str:
    """A share for a label that never rounds a non-empty cell to "0%" nor a partial one to "100%":
    ``0.3%``, ``<0.1%``, ``12%``, ``99.7%``, ``>99.9%``."""
    if total <= 0 or count == 0:
        return "0%"
    if count >= total:
        return "100%"
    share = count / total
    if 0.095 <= share < 0.995:  # whole percent, never rounding up to 100%
        return f"{share:.0%}"
    if 0.001 <= share < 0.9995:
        return f"{share:.1%}"
    return "<0.1%" if share < 0.5 else ">99.9%"


def interval_text(low: float, high: float) -> str:
    """A share's interval for a label, in percent: whole percents (one decimal below 10 %), with as
    many more decimals as keep a bound above 0 from reading 0 and one below 100 % from reading 100."""

    def digits(v: float) -> int:
        d = 0
        while d < 3 and ((round(100 * v, d) == 0 and v > 0) or (round(100 * v, d) == 100 and v < 1)):
            d += 1
        return d

    d = max(digits(low), digits(high), 1 if high < 0.095 else 0)
    return f"{100 * low:.{d}f}–{100 * high:.{d}f}%"


def plot_quadrant_matrix(summary: QuadrantSummary, ax=None, title: str | None = None):
    """The 2×2 matrix as an annotated heat map: count, share and the share's 95 % Wilson interval
    per cell (a small non-empty cell reads e.g. ``2 / 0.3% / 95% CI 0.1–1.2%``, never ``0%``)."""
    import seaborn as sns

    fig, ax = _new_axes(ax, (4.6, 3.8))
    matrix = summary.matrix
    total = max(summary.total, 1)
    ci = summary.intervals()
    cells = [["Correct-High", "Correct-Low"], ["Wrong-High", "Wrong-Low"]]
    labels = np.array([[f"{ci.at[q, 'count']}\n{share_text(int(ci.at[q, 'count']), total)}"
                        + ("" if summary.total == 0 else f"\n95% CI {interval_text(ci.at[q, 'ci_low'], ci.at[q, 'ci_high'])}")
                        for q in row] for row in cells])
    sns.heatmap(matrix, annot=labels, fmt="", cmap="Blues", cbar=False, linewidths=1, linecolor="white",
                annot_kws={"fontsize": 12}, ax=ax, vmin=0)
    ax.set_xlabel(f"judge score ≥ {summary.threshold:g}?")
    ax.set_ylabel("prediction")
    ax.set_title(title or f"Quadrant matrix (n = {summary.total})")
    return fig


def plot_per_class_matrix(summary: QuadrantSummary, max_classes: int = 40, ax=None, title: str | None = None):
    """One row per class, one column per quadrant: the class's count in each cell, shaded by its
    share of the class (so a class's Correct-Low or Wrong-High stands out whatever its size); a
    class marked ``*`` has more Correct-Low per right answer than the others beyond chance
    (:meth:`~vlmxplain.core.quadrants.QuadrantSummary.over_represented`). The ``max_classes``
    classes with most samples are shown."""
    import seaborn as sns

    per = summary.per_class
    per = per[per["n"] > 0].sort_values("n", ascending=False).head(max_classes).sort_index()
    shares = per[[f"{q} share" for q in QUADRANTS]].set_axis(list(QUADRANTS), axis=1)
    counts = per[list(QUADRANTS)].astype(int)
    fig, ax = _new_axes(ax, (6.4, 0.42 * max(len(per), 1) + 1.6))
    flagged = set(summary.over_represented().query("flagged").index) if summary.total else set()
    if len(per):
        labels = np.array([[f"{c}" for c in row] for row in counts.to_numpy()])
        sns.heatmap(shares, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, cbar_kws={"label": "share of the class"},
                    linewidths=1, linecolor="white", ax=ax,
                    yticklabels=[f"{c} (n={int(n)}){' *' if c in flagged else ''}" for c, n in per["n"].items()])
        ax.set_ylabel("true class")
    else:
        ax.text(0.5, 0.5, "no judged samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title or f"Quadrants per class (threshold {summary.threshold:g})")
    if flagged & set(per.index):
        ax.set_xlabel("* more Correct-Low per right answer than the other classes (Fisher, FDR 5 %)")
    return fig


PREDICTION_COLORS = {"correct": "#2a9d8f", "wrong": "#e76f51"}


def plot_score_histogram(table: pd.DataFrame, threshold: float, ax=None, title: str | None = None,
                         bin_width: float = 0.5):
    """Judge scores split by prediction correctness, with the threshold marked.

    Bins are ``bin_width`` wide and centred on the scores they hold (0, 0.5, 1, ... for the
    default), the correct and wrong bars of a bin stand side by side around its centre, each
    non-empty bar carries its count (so a handful of wrong predictions next to hundreds of
    correct ones stays visible), and the count axis has integer ticks.
    """
    from matplotlib.ticker import MaxNLocator

    fig, ax = _new_axes(ax, (5.8, 3.6))
    df = table[table["score"].notna() & table["correct"].notna()]
    centres = np.arange(0.0, 5.0 + bin_width / 2, bin_width)
    edges = np.append(centres - bin_width / 2, centres[-1] + bin_width / 2)
    width = bin_width * 0.42
    if len(df):
        correct = df["correct"].astype(bool).to_numpy()
        scores = df["score"].to_numpy(dtype=float)
        for offset, name, mask in ((-width / 2, "correct", correct), (width / 2, "wrong", ~correct)):
            counts, _ = np.histogram(scores[mask], bins=edges)
            bars = ax.bar(centres + offset, counts, width=width, color=PREDICTION_COLORS[name],
                          label=f"{name} ({int(mask.sum())})", edgecolor="white", linewidth=0.5, gid=name)
            ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], fontsize=7, padding=1)
        ax.legend(title="prediction", fontsize=8, title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no judged samples", ha="center", va="center", transform=ax.transAxes)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xticks(np.arange(0, 6))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.12)
    ax.set_xlabel("judge score (0–5)")
    ax.set_ylabel("samples")
    ax.set_title(title or "Judge scores by correctness")
    return fig


def caption(label: object, predicted: object, score: float, width: int = 24) -> str:
    """A gallery caption: ``true → predicted`` (first synonym of each, wrapped, not cut) and the score."""
    import textwrap

    def first(name: object) -> str:
        return "?" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name).split(",")[0]

    text = textwrap.fill(f"{first(label)} → {first(predicted)}", width=width, break_long_words=False)
    return f"{text}\nscore {score:.1f}" if pd.notna(score) else text


def plot_quadrant_gallery(run: Run, per_quadrant: int = 4, threshold: float | None = None, view: str = "masked",
                          title: str | None = None, table: pd.DataFrame | None = None):
    """A grid: one row per non-empty quadrant, up to ``per_quadrant`` masked images (lowest/highest
    scores first where it matters: Correct-Low by ascending score, the others descending), each
    captioned ``true label → prediction`` and its score. Empty quadrants are named in the title,
    and a row with fewer samples leaves no empty boxes. ``table`` (a subset of the run's table,
    e.g. one class) chooses the samples."""
    table = run.table_for(threshold=threshold) if table is None else table
    rows = []
    for q in QUADRANTS:
        part = table[table["quadrant"] == q].sort_values("score", ascending=q.endswith("Low"))
        if len(part):
            rows.append((q, part.head(per_quadrant)))
    cut = run.threshold if threshold is None else threshold
    empty = [q for q in QUADRANTS if not (table["quadrant"] == q).any()]
    heading = title or f"{view.capitalize()} CAM images per quadrant (threshold {cut:g})"
    if empty:
        heading += f"\nno samples in: {', '.join(empty)}"
    ncols = max([len(part) for _, part in rows] or [1])
    fig, axes = new_figure((2.4 * ncols + 0.4, 2.9 * max(len(rows), 1) + 0.5), max(len(rows), 1), ncols,
                           squeeze=False)
    for r, (q, part) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(part):
                ax.set_axis_off()
                continue
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_color(QUADRANT_COLORS[q])
                side.set_linewidth(3)
            if c == 0:
                ax.set_ylabel(f"{q}\n({int((table['quadrant'] == q).sum())})", fontsize=10)
            row = part.iloc[c]
            item = run.judge_input(row["id"])
            ax.imshow(item.overlay if view == "overlay" else item.masked)
            # ids and class names are data: plain text ("$" is not mathtext), no control characters
            ax.set_title(clean_text(caption(row["label"], row["predicted_name"], row["score"])), fontsize=8,
                         parse_math=False)
    if not rows:
        axes[0, 0].set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no judged samples", ha="center", va="center", transform=axes[0, 0].transAxes)
    fig.suptitle(heading)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (PNG unless the suffix says otherwise), creating folders; closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)  # a pyplot figure is freed; ours are not pyplot's (a no-op)
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
