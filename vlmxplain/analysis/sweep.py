"""The alpha × beta sweep: at which mask settings does the judge agree best with a reference?

For each grid cell the run is judged again from its stored CAMs (:func:`~vlmxplain.pipeline.rejudge`:
CAMs are never recomputed, judgments are committed to the run store and the cross-run cache, so
an interrupted sweep resumes). The judge's scores are compared with a reference that does not
depend on alpha/beta:

- ``"groundtruth"`` — ground-truth localisation: 5 × the share of the raw CAM's energy on the
  object (needs object masks: the shapes set offline);
- ``"run"`` — the mean human score from the run store (the Annotator), or a CSV path of
  annotations (``sample_id, annotator, score``); or any ``pandas.Series`` of scores by sample id.

Agreement per cell: Pearson, Spearman, Kendall (scipy, via :func:`~.agreement.correlations`)
and the mean absolute difference (``mae``, score points). The best cell maximises the chosen
metric (minimises ``mae``). The paper's grid: alpha 15–30, beta 0.3–0.7.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .agreement import TooFewPairsError, correlations

__all__ = ["METRICS", "PAPER_ALPHAS", "PAPER_BETAS", "SweepParams", "SweepResult", "alpha_beta_sweep",
           "plot_mask_grid", "plot_sweep_heatmap", "resolve_reference", "validate_sweep_params"]

PAPER_ALPHAS = (15.0, 20.0, 25.0, 30.0)
PAPER_BETAS = (0.3, 0.4, 0.5, 0.6, 0.7)
METRICS = ("spearman", "pearson", "kendall", "mae")


@dataclass(frozen=True)
class SweepParams:
    """Validated sweep settings."""

    alphas: tuple[float, ...] = PAPER_ALPHAS
    betas: tuple[float, ...] = PAPER_BETAS
    reference: str = "groundtruth"
    metric: str = "spearman"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grid_values(name: str, values: Any, check) -> tuple[float, ...]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name}: give a non-empty list of numbers, got {values!r}")
    out = []
    for v in values:
        try:
            out.append(check(v))
        except ValueError as err:
            raise ValueError(f"{name}: {v!r} is not valid ({err})") from None
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: values must be distinct, got {list(values)!r}")
    return tuple(sorted(out))


def validate_sweep_params(*, alphas: Any = PAPER_ALPHAS, betas: Any = PAPER_BETAS, reference: str = "groundtruth",
                          metric: str = "spearman") -> SweepParams:
    """Check the grid (alpha > 0, beta in [0, 1]), the reference and the metric; errors name the parameter."""
    from pathlib import Path

    from ..masks import validate_mask_params

    alphas = _grid_values("alphas", alphas, lambda a: validate_mask_params(a, 0.5)[0])
    betas = _grid_values("betas", betas, lambda b: validate_mask_params(1.0, b)[1])
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError(f"reference: give 'groundtruth', 'run' or a CSV path of annotations, got {reference!r}")
    if reference not in ("groundtruth", "run") and not Path(reference).expanduser().is_file():
        raise ValueError(f"reference: {reference!r} is neither 'groundtruth', 'run' nor an existing CSV file")
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {METRICS}, got {metric!r}")
    return SweepParams(alphas, betas, reference, metric)


def resolve_reference(reference: str | pd.Series, run) -> tuple[pd.Series, str]:
    """The reference scores (by sample id) and a label saying what they are."""
    from .reference import as_reference, groundtruth_reference, load_annotations

    if isinstance(reference, pd.Series):
        return pd.to_numeric(reference, errors="coerce").dropna(), str(reference.name or "reference")
    if reference == "groundtruth":
        return groundtruth_reference(run), "ground-truth localisation (CAM energy on the object × 5)"
    ann = load_annotations(reference, run)
    where = "run store" if reference == "run" else str(reference)
    return as_reference(ann), f"mean human score ({ann['annotator'].nunique()} annotators, {where})"


@dataclass
class SweepResult:
    """One row per (alpha, beta) cell in ``table``; ``best`` is the winning row."""

    table: pd.DataFrame
    metric: str
    judge: str
    reference_label: str

    @property
    def best(self) -> pd.Series:
        col = self.table[self.metric]
        if col.notna().sum() == 0:
            raise ValueError(f"metric: {self.metric} is undefined in every cell (constant scores?)")
        return self.table.loc[col.idxmin() if self.metric == "mae" else col.idxmax()]

    def grid(self, metric: str | None = None) -> pd.DataFrame:
        """The metric as an alpha (rows) × beta (columns) frame."""
        metric = metric or self.metric
        if metric not in self.table:
            raise ValueError(f"metric: {metric!r} is not a column of the sweep table")
        return self.table.pivot(index="alpha", columns="beta", values=metric)


def alpha_beta_sweep(run, alphas: Sequence[float] = PAPER_ALPHAS, betas: Sequence[float] = PAPER_BETAS, *,
                     judge: str | None = None, reference: str | pd.Series = "groundtruth", metric: str = "spearman",
                     classifier=None, threshold: float | None = None, progress: bool = False) -> SweepResult:
    """Judge ``run`` at every alpha × beta and measure agreement with ``reference`` (see module doc).

    ``judge`` defaults to the run's judge; ``offline:faithfulness`` needs ``classifier``.
    ``threshold`` (default: the run's) sets the ``low_share`` column (share scored below it).
    """
    from ..judges.registry import parse_judge_spec
    from ..pipeline import rejudge
    from .quadrants import validate_threshold

    checked = validate_sweep_params(alphas=list(alphas), betas=list(betas),
                                    reference="groundtruth" if isinstance(reference, pd.Series) else reference,
                                    metric=metric)
    judge = judge or run.config.get("judge")
    parse_judge_spec(judge)
    cut = validate_threshold(run.threshold if threshold is None else threshold)
    ref, label = resolve_reference(reference, run)
    rows = []
    for a in checked.alphas:
        for b in checked.betas:
            rejudge(run, judge=judge, alpha=a, beta=b, classifier=classifier, progress=progress)
            t = run.table_for(judge=judge, alpha=a, beta=b)
            ok = t[t["judge_status"] == "ok"]
            scores = pd.Series(ok["score"].to_numpy(float), index=ok["id"].astype(str))
            row: dict[str, Any] = {
                "alpha": a, "beta": b, "n_judged": len(ok), "n_failed": int((t["judge_status"] == "failed").sum()),
                "mean_score": float(scores.mean()) if len(scores) else np.nan,
                "low_share": float((scores < cut).mean()) if len(scores) else np.nan,
            }
            common = scores.index.intersection(ref.index)
            row["n"] = len(common)
            row["mae"] = float((scores[common] - ref[common]).abs().mean()) if len(common) else np.nan
            try:
                c = correlations(scores, ref, n_boot=0)
                row.update({m: float(c.loc[m, "estimate"]) for m in ("pearson", "spearman", "kendall")})
                row["note"] = str(c["note"].iloc[0]) if c["note"].iloc[0] != "no bootstrap CI (n_boot=0)" else ""
            except TooFewPairsError as err:
                row.update(pearson=np.nan, spearman=np.nan, kendall=np.nan, note=str(err))
            rows.append(row)
    cols = ["alpha", "beta", "n", "pearson", "spearman", "kendall", "mae", "mean_score", "low_share", "n_judged",
            "n_failed", "note"]
    return SweepResult(pd.DataFrame(rows)[cols], checked.metric, judge, label)


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
    if 25.0 in grid.index and 0.6 in grid.columns:
        ax.plot(list(grid.columns).index(0.6) + 0.88, list(grid.index).index(25.0) + 0.15, "o", color="white",
                markersize=5, markeredgecolor="black")
    ax.set(xlabel="beta (sigmoid midpoint)", ylabel="alpha (sigmoid steepness)")
    ax.set_title(title or f"{result.judge} vs {result.reference_label}\n{metric} per cell "
                 "(cyan: best; dot: paper's 25 / 0.6)", fontsize=9)
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
