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

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, get_args

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field

from ..core.checks import check_alpha, check_beta, validate_threshold
from ..core.defaults import PAPER_ALPHAS, PAPER_BETAS
from ..core.params import ParamsModel
from ..judges.registry import check_judge
from ..metrics.agreement import TooFewPairsError, correlations
from ..metrics.reference import groundtruth_reference
from ..pipeline import rejudge
from .annotators import as_reference, load_annotations

__all__ = ["METRICS", "PAPER_ALPHAS", "PAPER_BETAS", "SweepParams", "SweepResult", "alpha_beta_sweep",
           "resolve_reference", "validate_sweep_params"]

Metric = Literal["spearman", "pearson", "kendall", "mae"]
METRICS = get_args(Metric)


def _grid(name: str, check):
    def parse(values: Any) -> tuple[float, ...]:
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

    return Annotated[tuple[float, ...], BeforeValidator(parse)]


def _reference(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"reference: give 'groundtruth', 'run' or a CSV path of annotations, got {value!r}")
    if value not in ("groundtruth", "run") and not Path(value).expanduser().is_file():
        raise ValueError(f"reference: {value!r} is neither 'groundtruth', 'run' nor an existing CSV file")
    return value


AlphaGrid = _grid("alphas", check_alpha)
BetaGrid = _grid("betas", check_beta)
Reference = Annotated[str, BeforeValidator(_reference)]


class SweepParams(ParamsModel):
    """The sweep's grid, reference and agreement metric (validated; errors name the parameter)."""

    alphas: AlphaGrid = PAPER_ALPHAS
    betas: BetaGrid = PAPER_BETAS
    reference: Reference = Field("groundtruth", description="groundtruth, run, or a CSV path of annotations")
    metric: Metric = Field("spearman", description="spearman, pearson, kendall or mae")


def validate_sweep_params(**params: Any) -> SweepParams:
    """Check the grid (alpha > 0, beta in [0, 1]), the reference and the metric."""
    return SweepParams.check(**params)


def resolve_reference(reference: str | pd.Series, run) -> tuple[pd.Series, str]:
    """The reference scores (by sample id) and a label saying what they are."""
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
    checked = validate_sweep_params(alphas=list(alphas), betas=list(betas),
                                    reference="groundtruth" if isinstance(reference, pd.Series) else reference,
                                    metric=metric)
    judge = str(check_judge(judge or run.judge))
    cut = validate_threshold(run.threshold if threshold is None else threshold)
    ref, label = resolve_reference(reference, run)
    rows = []
    for a in checked.alphas:
        for b in checked.betas:
            rejudge(run, judge=judge, alpha=a, beta=b, classifier=classifier, progress=progress, make_current=False)
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
