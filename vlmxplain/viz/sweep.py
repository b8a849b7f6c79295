"""Figures of the alpha × beta sweep: the agreement heat map and the masked images over the grid."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BETA
from ..experiments.sweep import SweepResult
from ..store import Run


def plot_sweep_heatmap(result: SweepResult, metric: str | None = None, ax=None, title: str | None = None):
    """Heat map of the agreement metric over alpha × beta; the best cell outlined, the paper's
    default (alpha 25, beta 0.6) marked with a dot when it is in the grid. Returns the Figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    metric = metric or result.metric
    grid = result.grid(metric)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(grid.columns) + 2.4, 0.7 * len(grid.index) + 1.8), layout="constrained")
    lower_better = metric == "mae"
    sns.heatmap(grid, annot=True, fmt=".2f", cmap="rocket" if lower_better else "rocket_r", ax=ax,
                cbar_kws={"label": metric + (" (lower is better)" if lower_better else "")},
                xticklabels=[f"{b:g}" for b in grid.columns], yticklabels=[f"{a:g}" for a in grid.index])
    values = grid.to_numpy(float)
    if np.isfinite(values).any():
        r, c = np.unravel_index(np.nanargmin(values) if lower_better else np.nanargmax(values), values.shape)
        ax.add_patch(Rectangle((c, r), 1, 1, fill=False, edgecolor="cyan", lw=3))
    if DEFAULT_ALPHA in grid.index and DEFAULT_BETA in grid.columns:
        ax.plot(list(grid.columns).index(DEFAULT_BETA) + 0.5, list(grid.index).index(DEFAULT_ALPHA) + 0.5, "o",
                markersize=30, markerfacecolor="none", markeredgecolor="white", markeredgewidth=1.5,
                gid="paper-setting")  # a ring centred on the paper's cell, around its value
    ax.set(xlabel="beta (sigmoid midpoint)", ylabel="alpha (sigmoid steepness)")
    ax.set_title(title or f"{result.judge} vs {result.reference_label}\n{metric} per cell "
                 "(cyan: best; ring: paper's 25 / 0.6)", fontsize=9)
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
