"""The judge-reliability figure: spread across repeats and templates per sample, and the
inter-judge agreement matrix (see :func:`vlmxplain.metrics.reliability`)."""
from __future__ import annotations

import numpy as np

from ..core.defaults import SCORE_RANGE
from ..metrics.reliability import Reliability


def plot_reliability(rel: Reliability, statistic: str = "both", title: str | None = None):
    """Up to three panels, each where ``rel`` has the data: per-sample mean ± SD across repeats
    (samples sorted by mean, one colour per setting); per-sample scores under each prompt template
    (a vertical line spans each sample's range); the settings × settings agreement matrix with
    each pair's CI — ``statistic`` ``"both"`` (Krippendorff's alpha below the diagonal, Spearman's
    rho above), ``"alpha"`` or ``"spearman"``. Returns the Figure."""
    if statistic not in ("both", "alpha", "spearman"):
        raise ValueError(f"statistic: 'both', 'alpha' or 'spearman', got {statistic!r}")
    import matplotlib.pyplot as plt

    panels = [p for p, has in (("repeats", len(rel.self_consistency)), ("templates", len(rel.template_spread)),
                                ("judges", len(rel.settings) >= 2)) if has]
    if not panels:
        raise ValueError("reliability: nothing to draw (one judge setting, no repeats, no templates)")
    n_set = len(rel.settings)
    widths = [1.6 if p != "judges" else max(1.2, 0.35 * n_set + 0.6) for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) * 3.4, 4.6 + 0.12 * n_set), squeeze=False,
                             gridspec_kw=dict(width_ratios=widths))
    lo, hi = SCORE_RANGE
    for ax, panel in zip(axes[0], panels):
        if panel == "repeats":
            for k, r in enumerate(rel.self_consistency.itertuples()):
                ps = rel.per_sample[(rel.per_sample["label"] == r.label) & (rel.per_sample["n_answers"] >= 2)]
                ps = ps.sort_values("mean")
                x = np.arange(len(ps)) + (k - (len(rel.self_consistency) - 1) / 2) * 0.2
                ax.errorbar(x, ps["mean"], yerr=ps["sd"].fillna(0), fmt="o", ms=3.5, capsize=2, color=f"C{k}",
                            label=f"{r.label}\nα {r.alpha:.2f}, SD {r.mean_sd:.2f}, flips {r.n_flipped}/{r.n}")
            ax.set(ylim=(lo - 0.3, hi + 0.3), xlabel="sample (sorted by mean score)", ylabel="score: mean ± SD",
                   title="across repeats")
            ax.legend(fontsize=7, loc="upper left")
        elif panel == "templates":
            t = rel.templates
            for k, r in enumerate(rel.template_spread.itertuples()):
                mine = t[t["group"] == r.group].sort_values("sd").reset_index(drop=True)
                names = [c for c in mine.columns if c not in ("id", "group", "sd", "range")
                         and mine[c].notna().any()]
                x = np.arange(len(mine))
                ax.vlines(x, mine[names].min(axis=1), mine[names].max(axis=1), color="0.7", lw=1.5)
                for j, name in enumerate(names):  # side by side, so equal scores stay visible
                    ax.scatter(x + (j - (len(names) - 1) / 2) * 0.12, mine[name], s=16, color=f"C{j}",
                               label=str(name) if k == 0 else None, zorder=3)
                ax.text(0.02, 0.02, f"mean SD {r.mean_sd:.2f} [{r.sd_ci_low:.2f}, {r.sd_ci_high:.2f}]",
                        transform=ax.transAxes, fontsize=8)
            ax.set(ylim=(lo - 0.3, hi + 0.3), xlabel="sample (sorted by spread)", ylabel="score",
                   title="across prompt templates")
            ax.legend(fontsize=7, loc="upper left")
        else:
            _matrix(ax, rel, statistic)
    fig.suptitle(title or "Judge reliability")
    fig.tight_layout()
    return fig


def _matrix(ax, rel: Reliability, statistic: str) -> None:
    import seaborn as sns

    labels_ = list(rel.settings["label"])
    m = rel.matrix("alpha" if statistic == "both" else statistic)
    text = m.map(lambda v: "" if np.isnan(v) else f"{v:.2f}").astype(object)
    for r in rel.judges.itertuples():
        i, j = labels_.index(r.a), labels_.index(r.b)
        cells = {"alpha": (max(i, j), min(i, j)), "spearman": (min(i, j), max(i, j))}  # alpha below, rho above
        for stat in (("alpha", "spearman") if statistic == "both" else (statistic,)):
            value, low, high = (getattr(r, stat), getattr(r, f"{stat}_ci_low"), getattr(r, f"{stat}_ci_high"))
            where = [cells[stat]] if statistic == "both" else [(i, j), (j, i)]
            for row, col in where:
                m.iloc[row, col] = value
                text.iloc[row, col] = ("" if np.isnan(value) else f"{value:.2f}") + (
                    f"\n[{low:.2f}, {high:.2f}]" if np.isfinite(low) and np.isfinite(high) else "")
    short = [s.replace(" [", "\n[", 1) for s in m.index]  # the judge, then its template and temperature
    name = {"both": "α (below the diagonal) · ρ (above)", "alpha": "Krippendorff's α", "spearman": "Spearman's ρ"}
    sns.heatmap(m, annot=text.to_numpy(), fmt="", annot_kws={"fontsize": 7}, cmap="vlag_r", vmin=-1, vmax=1, ax=ax,
                xticklabels=short, yticklabels=short, cbar_kws={"label": name[statistic]})
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)
    ax.tick_params(axis="y", labelsize=7)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_title("between judges (95% CI)")
