"""Figures of the alpha × beta sweep: the agreement heat map and the masked images over the grid."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BETA
from ..experiments.sweep import SweepResult


def plot_sweep_heatmap(result: SweepResult, metric: str | None = None, ax=None, title: str | None = None):
    """Heat map of the agreement metric over alpha × beta, each cell with its CI; the best cell
    outlined (none when every cell disagrees), cells indistinguishable from it dashed, the paper's
    default (alpha 25, beta 0.6) marked with a dot when it is in the grid. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    metric = metric or result.metric
    grid = result.grid(metric)
    lo_col, hi_col = f"{metric}_ci_low", f"{metric}_ci_high"
    labels = grid.map(lambda v: "n/a" if np.isnan(v) else f"{v:.2f}").astype(object)
    if lo_col in result.table:
        lo, hi = result.grid(lo_col), result.grid(hi_col)
        for a in grid.index:
            for b in grid.columns:
                if np.isfinite(lo.loc[a, b]) and np.isfinite(hi.loc[a, b]):
                    labels.loc[a, b] = f"{grid.loc[a, b]:.2f}\n[{lo.loc[a, b]:.2f}, {hi.loc[a, b]:.2f}]"
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 * len(grid.columns) + 2.4, 0.8 * len(grid.index) + 1.8), layout="constrained")
    lower_better = metric == "mae"
    sns.heatmap(grid, annot=labels.to_numpy(), fmt="", annot_kws={"fontsize": 7}, cmap="rocket" if lower_better else "rocket_r",
                ax=ax, cbar_kws={"label": metric + (" (lower is better)" if lower_better else "")},
                xticklabels=[f"{b:g}" for b in grid.columns], yticklabels=[f"{a:g}" for a in grid.index])
    rows, cols = list(grid.index), list(grid.columns)
    headline = "cyan: best; dashed: indistinguishable"
    try:
        best = result.best if metric == result.metric else None
    except ValueError:
        best, headline = None, "EVERY CELL DISAGREES: no best cell"
    if best is not None:
        for r in result.indistinguishable.itertuples():
            ax.add_patch(Rectangle((cols.index(r.beta), rows.index(r.alpha)), 1, 1, fill=False, edgecolor="cyan",
                                   lw=1.2, ls="--"))
        ax.add_patch(Rectangle((cols.index(best["beta"]), rows.index(best["alpha"])), 1, 1, fill=False,
                               edgecolor="cyan", lw=3))
        if any("edge" in f for f in result.findings):
            headline += "; OPTIMUM ON THE GRID'S EDGE"
    if DEFAULT_ALPHA in grid.index and DEFAULT_BETA in grid.columns:
        ax.plot(cols.index(DEFAULT_BETA) + 0.5, rows.index(DEFAULT_ALPHA) + 0.5, "o",
                markersize=30, markerfacecolor="none", markeredgecolor="white", markeredgewidth=1.5,
                gid="paper-setting")  # a ring centred on the paper's cell, around its value
    ax.set(xlabel="beta (sigmoid midpoint)", ylabel="alpha (sigmoid steepness)")
    ax.set_title(title or f"{result.judge} vs {result.reference_label}\n{metric} per cell with 95% CI "
                 f"({headline}; ring: paper's 25 / 0.6)", fontsize=9)
    return ax.figure


def plot_mask_grid(run, sample_id: str, alphas: Sequence[float], betas: Sequence[float], title: str | None = None):
    """What the judge sees for one sample at every alpha × beta (masked CAM images). Returns the Figure."""
    import matplotlib.pyplot as plt

    alphas, betas = sorted(alphas), sorted(betas)
    fig, axes = plt.subplots(len(alphas), len(betas), figsize=(1.45 * len(betas) + 0.6, 1.45 * len(alphas) + 0.6),
                             squeeze=False, layout="constrained")
    for r, a in enumerate(alphas):
        for c, b in enumerate(betas):
            ax = axes[r, c]
            item = run.judge_input(sample_id, a, b)
            ax.imshow(item.masked)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"β = {b:g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"α = {a:g}", fontsize=9)
    fig.suptitle(title or f"Masked CAM image of {sample_id} over the grid", fontsize=10)
    return fig
