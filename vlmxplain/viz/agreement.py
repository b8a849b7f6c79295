"""The judge-vs-human agreement scatter and the judge sanity check."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.defaults import SCORE_RANGE
from ..metrics.agreement import correlations, paired_scores


def plot_agreement(judge: Any, human: Any, ax=None, *, jitter: float = 0.15, seed: int = 0,
                   title: str | None = None):
    """Scatter of judge vs human scores (jittered points, linear fit) annotated with r, rho, tau.

    Inputs are aligned like :func:`correlations`. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    x, y, _ = paired_scores(judge, human, ("judge", "human"))
    corr = correlations(x, y, n_boot=0)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.8, 4.5), layout="constrained")
    rng = np.random.default_rng(seed)
    jx, jy = (np.clip(v + rng.uniform(-jitter, jitter, len(v)), *SCORE_RANGE) for v in (x, y))  # stay in 0–5
    sns.scatterplot(x=jx, y=jy, ax=ax, alpha=0.6, s=25, edgecolor="none")
    if np.ptp(x) and np.ptp(y):  # fit on the un-jittered scores
        sns.regplot(x=x, y=y, ax=ax, scatter=False, ci=None, line_kws=dict(color="C3"))
    fmt = lambda v: "n/a" if np.isnan(v) else f"{v:.2f}"  # noqa: E731
    est = corr["estimate"]
    ax.text(1.03, 1.0, f"r = {fmt(est['pearson'])}\nρ = {fmt(est['spearman'])}\n"  # beside the axes, off the points
            f"τ = {fmt(est['kendall'])}\nn = {len(x)}", transform=ax.transAxes, va="top",
            ha="left", fontsize=9, bbox=dict(boxstyle="round", fc="white", alpha=0.8))
    lo = min(SCORE_RANGE[0], x.min(), y.min()) - 0.5
    hi = max(SCORE_RANGE[1], x.max(), y.max()) + 0.5
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="judge score", ylabel="human score", title=title or "")
    return ax.figure


def plot_sanity_check(check, title: str | None = None):
    """The sanity check (:class:`~vlmxplain.metrics.SanityCheck`): win rate of the true CAM over
    each control map with its CI (left; 0.5 is chance), and true vs control scores per sample
    (right; points above the diagonal are wins). Returns the Figure."""
    import matplotlib.pyplot as plt

    s = check.summary
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw=dict(width_ratios=(1, 1.3)))
    err = np.vstack([s["win_rate"] - s["ci_low"], s["ci_high"] - s["win_rate"]])
    colors = [f"C{k}" for k in range(len(s))]
    left.bar(s["control"], s["win_rate"], yerr=err, capsize=6, color=colors, alpha=0.8)
    left.axhline(0.5, color="0.4", ls="--", lw=1)
    for k, r in enumerate(s.itertuples()):
        left.text(k, 0.04, f"{r.wins}/{r.n}", ha="center", color="white", fontsize=9, fontweight="bold")
    left.set(ylim=(0, 1.05), ylabel="share of samples: true CAM scored higher", xlabel="control map",
             title="win rate (95% CI)")
    lo, hi = SCORE_RANGE
    for k, control in enumerate(s["control"]):
        both = check.table[["true", control]].dropna()
        right.scatter(both[control], both["true"], s=18, alpha=0.6, color=colors[k], label=control)
    right.plot([lo, hi], [lo, hi], color="0.4", ls="--", lw=1)
    right.set(xlim=(lo - 0.2, hi + 0.2), ylim=(lo - 0.2, hi + 0.2), xlabel="score of the control map",
              ylabel="score of the true CAM", title="per sample (above the line: a win)")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or f"Sanity check of {check.judge}")
    fig.tight_layout()
    return fig
