"""The alpha × beta sweep: at which mask settings does the judge agree best with a reference?

For each grid cell the run is judged again from its stored CAMs (:func:`~vlmxplain.pipeline.rejudge`:
CAMs are never recomputed, judgments are committed to the run store and the cross-run cache, so
an interrupted sweep resumes). The judge's scores are compared with a reference that is *not a
function of the quantity the sweep tunes*:

- ``"faithfulness"`` (default, offline) — the insertion − deletion AUC gap of the *unmasked* map
  (:func:`vlmxplain.metrics.evaluate`, stored in the run): how much the prediction depends on the
  region the CAM ranks first, measured by the classifier, never by the sigmoid mask;
- ``"run"`` — the mean human score from the run store (the Annotator), or a CSV path of
  annotations (``sample_id, annotator, score``); or any ``pandas.Series`` of scores by sample id.

The ground-truth localisation of the map itself is refused as a reference: with the ground-truth
judge it only measures how closely the sigmoid approximates the map (its optimum sat on the
grid's corner in 500/500 bootstrap resamples, and moved further out as the grid widened).

Agreement per cell: Pearson, Spearman, Kendall with bootstrap CIs (scipy, via
:func:`~vlmxplain.metrics.agreement.correlations`) and, for references on the 0–5 score scale, the
mean absolute difference (``mae``). :attr:`SweepResult.findings` says when the optimum is on the
grid's edge, when every cell disagrees (then there is no best cell), and which cells cannot be told
apart from the best (their CIs overlap). The paper's grid: alpha 15–30, beta 0.3–0.7.
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
from ..metrics.evaluate import evaluate
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


CIRCULAR = ("reference: 'groundtruth' is circular here — the ground-truth formula applied to the map itself "
            "only measures how closely the sigmoid approximates the map; use 'faithfulness' (the unmasked map's "
            "insertion - deletion gap), 'run' (human annotations) or a CSV of annotations")


def _reference(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"reference: give 'faithfulness', 'run' or a CSV path of annotations, got {value!r}")
    if value == "groundtruth":
        raise ValueError(CIRCULAR)
    if value not in ("faithfulness", "run") and not Path(value).expanduser().is_file():
        raise ValueError(f"reference: {value!r} is neither 'faithfulness', 'run' nor an existing CSV file")
    return value


AlphaGrid = _grid("alphas", check_alpha)
BetaGrid = _grid("betas", check_beta)
Reference = Annotated[str, BeforeValidator(_reference)]


class SweepParams(ParamsModel):
    """The sweep's grid, reference and agreement metric (validated; errors name the parameter)."""

    alphas: AlphaGrid = PAPER_ALPHAS
    betas: BetaGrid = PAPER_BETAS
    reference: Reference = Field("faithfulness", description="faithfulness, run, or a CSV path of annotations")
    metric: Metric = Field("spearman", description="spearman, pearson, kendall or mae")


def validate_sweep_params(**params: Any) -> SweepParams:
    """Check the grid (alpha > 0, beta in [0, 1]), the reference and the metric."""
    return SweepParams.check(**params)


def resolve_reference(reference: str | pd.Series, run, classifier=None,
                      progress: bool = False) -> tuple[pd.Series, str, bool]:
    """The reference scores (by sample id), a label saying what they are, and whether they are on
    the judge's 0–5 scale (only then is ``mae`` defined)."""
    if isinstance(reference, pd.Series):
        ref = pd.to_numeric(reference, errors="coerce").dropna()
        return ref, str(reference.name or "reference"), bool(ref.between(0, 5).all())
    _reference(reference)
    if reference == "faithfulness":
        evaluate(run, ["insertion_auc", "deletion_auc"], classifier=classifier, progress=progress)
        t = run.table
        gap = (t["insertion_auc"] - t["deletion_auc"]).dropna()
        return gap.rename("insertion - deletion"), "faithfulness of the unmasked map (insertion - deletion AUC)", False
    ann = load_annotations(reference, run)
    where = "run store" if reference == "run" else str(reference)
    return as_reference(ann), f"mean human score ({ann['annotator'].nunique()} annotators, {where})", True


@dataclass
class SweepResult:
    """One row per (alpha, beta) cell in ``table`` (with ``<metric>_ci_low/high``); ``best`` is
    the winning row; ``findings`` says how far to trust it."""

    table: pd.DataFrame
    metric: str
    judge: str
    reference_label: str

    def _ranked(self) -> pd.Series:
        col = self.table[self.metric]
        if col.notna().sum() == 0:
            raise ValueError(f"metric: {self.metric} is undefined in every cell (constant scores, or mae against a "
                             "reference that is not on the 0-5 score scale)")
        return col

    @property
    def all_disagree(self) -> bool:
        """Every defined cell has a correlation <= 0 (never for ``mae``)."""
        col = self.table[self.metric].dropna()
        return self.metric != "mae" and len(col) > 0 and bool((col <= 0).all())

    @property
    def best(self) -> pd.Series:
        """The best cell; ``ValueError`` when every cell disagrees with the reference."""
        col = self._ranked()
        if self.all_disagree:
            raise ValueError(f"no best cell: every cell disagrees with the reference ({self.metric} <= 0 "
                             f"everywhere, max {col.max():.3f})")
        return self.table.loc[col.idxmin() if self.metric == "mae" else col.idxmax()]

    @property
    def indistinguishable(self) -> pd.DataFrame:
        """Cells whose CI overlaps the best cell's (they cannot be told apart from it), best first."""
        best = self.best
        lo, hi = f"{self.metric}_ci_low", f"{self.metric}_ci_high"
        t = self.table
        if self.metric == "mae":
            mask = t[lo] <= best[hi]
        else:
            mask = t[hi] >= best[lo]
        out = t[mask.fillna(False)]
        return out.sort_values(self.metric, ascending=self.metric == "mae")

    @property
    def findings(self) -> list[str]:
        """What to make of the best cell, in words."""
        try:
            best = self.best
        except ValueError as err:
            return [str(err)]
        notes = []
        for axis in ("alpha", "beta"):
            values = sorted(self.table[axis].unique())
            if len(values) > 1 and best[axis] in (values[0], values[-1]):
                side = "smallest" if best[axis] == values[0] else "largest"
                notes.append(f"the optimum is on the grid's edge ({axis} = {best[axis]:g}, the {side} value): "
                             "widen the grid before trusting it")
        tied = self.indistinguishable
        if len(tied) > 1:
            cells = ", ".join(f"({r.alpha:g}, {r.beta:g})" for r in tied.itertuples())
            notes.append(f"{len(tied)} cells cannot be told apart from the best (their CIs overlap): {cells}")
        if self.metric != "mae" and not best[f"{self.metric}_ci_low"] > 0:
            notes.append("even the best cell's CI includes no agreement (<= 0)")
        return notes or [f"a clear optimum inside the grid: alpha = {best['alpha']:g}, beta = {best['beta']:g}"]

    def grid(self, metric: str | None = None) -> pd.DataFrame:
        """The metric as an alpha (rows) × beta (columns) frame."""
        metric = metric or self.metric
        if metric not in self.table:
            raise ValueError(f"metric: {metric!r} is not a column of the sweep table")
        return self.table.pivot(index="alpha", columns="beta", values=metric)


def _mae_ci(diff: np.ndarray, n_boot: int, ci: float, seed: int) -> tuple[float, float]:
    if len(diff) < 2 or not n_boot:
        return np.nan, np.nan
    from scipy import stats

    res = stats.bootstrap((diff,), np.mean, n_resamples=n_boot, confidence_level=ci, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def alpha_beta_sweep(run, alphas: Sequence[float] = PAPER_ALPHAS, betas: Sequence[float] = PAPER_BETAS, *,
                     judge: str | None = None, reference: str | pd.Series = "faithfulness", metric: str = "spearman",
                     classifier=None, threshold: float | None = None, n_boot: int = 1000, ci: float = 0.95,
                     seed: int = 0, max_cost: float | None = None, progress: bool = False) -> SweepResult:
    """Judge ``run`` at every alpha × beta and measure agreement with ``reference`` (see module doc).

    ``judge`` defaults to the run's judge; judges and references that re-run the classifier use
    ``classifier`` (or the run's own, rebuilt from its record). ``threshold`` (default: the run's)
    sets the ``low_share`` column (share scored below it). ``max_cost`` (USD, VLM judges) caps what
    the judge spends in the run over the whole sweep: cells after the cap is reached are judged in
    part or not at all (their ``n_judged`` says so), and a call with a larger cap judges the rest.
    """
    checked = validate_sweep_params(alphas=list(alphas), betas=list(betas),
                                    reference="faithfulness" if isinstance(reference, pd.Series) else reference,
                                    metric=metric)
    judge = str(check_judge(judge or run.judge))
    cut = validate_threshold(run.threshold if threshold is None else threshold)
    ref, label, on_scale = resolve_reference(reference, run, classifier, progress)
    if checked.metric == "mae" and not on_scale:
        raise ValueError(f"metric: mae needs a reference on the 0-5 score scale; {label} is not (use a correlation)")
    rows = []
    for a in checked.alphas:
        for b in checked.betas:
            rejudge(run, judge=judge, alpha=a, beta=b, classifier=classifier, progress=progress, make_current=False,
                    max_cost=max_cost)
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
            diff = (scores[common] - ref[common]).abs().to_numpy()
            row["mae"] = float(diff.mean()) if len(common) and on_scale else np.nan
            row["mae_ci_low"], row["mae_ci_high"] = _mae_ci(diff, n_boot, ci, seed) if on_scale else (np.nan, np.nan)
            try:
                c = correlations(scores, ref, n_boot=n_boot, ci=ci, seed=seed)
                for m in ("pearson", "spearman", "kendall"):
                    row.update({m: float(c.loc[m, "estimate"]), f"{m}_ci_low": float(c.loc[m, "ci_low"]),
                                f"{m}_ci_high": float(c.loc[m, "ci_high"])})
                note = str(c.loc[checked.metric if checked.metric != "mae" else "pearson", "note"])
                row["note"] = "" if note == "no bootstrap CI (n_boot=0)" else note
            except TooFewPairsError as err:
                for m in ("pearson", "spearman", "kendall"):
                    row.update({m: np.nan, f"{m}_ci_low": np.nan, f"{m}_ci_high": np.nan})
                row["note"] = str(err)
            rows.append(row)
    cols = ["alpha", "beta", "n", "pearson", "spearman", "kendall", "mae", "mean_score", "low_share", "n_judged",
            "n_failed", "note"]
    cols += [f"{m}_ci_{side}" for m in ("pearson", "spearman", "kendall", "mae") for side in ("low", "high")]
    return SweepResult(pd.DataFrame(rows)[cols], checked.metric, judge, label)
