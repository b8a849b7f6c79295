"""``validate_judge(run)``: one call that says how far a judge's scores can be trusted —
agreement (correlations with bootstrap CIs) with (a) the run's human annotations, (b) the
faithfulness metrics of the unmasked map, (c) another judge on the same run, and (d) the sanity
check (true CAM vs inverted and model-randomised maps, win rates with Wilson CIs).

Each part that cannot be computed (no annotations, no second judge) says why instead of failing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..models import Classifier
from ..store import Run
from .agreement import TooFewPairsError, agreement_table, correlations
from .evaluate import evaluate
from .faithfulness import METRICS
from .sanity import SanityCheck, sanity_check

#: The metrics a judge is compared with by default (the insertion - deletion gap is added).
VALIDATION_METRICS: tuple[str, ...] = ("insertion_auc", "deletion_auc")


@dataclass
class JudgeValidation:
    """The parts of :func:`validate_judge`; :meth:`to_frame` puts them in one table."""

    judge: str
    human: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    other: pd.DataFrame | None = None
    sanity: SanityCheck | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per (reference, statistic): estimate, ci_low, ci_high, n, note."""
        rows = []
        if self.human is not None:
            for r in self.human.itertuples():
                rows.append(dict(part="human", reference=r.rater, statistic=r.method, estimate=r.estimate,
                                 ci_low=r.ci_low, ci_high=r.ci_high, n=r.n, note=r.note))
        for part, frame in (("metrics", self.metrics), ("other judge", self.other)):
            if frame is not None:
                for r in frame.reset_index().itertuples():
                    rows.append(dict(part=part, reference=r.reference, statistic=r.method, estimate=r.estimate,
                                     ci_low=r.ci_low, ci_high=r.ci_high, n=r.n, note=r.note))
        if self.sanity is not None:
            for r in self.sanity.summary.itertuples():
                rows.append(dict(part="sanity", reference=f"true > {r.control}", statistic="win rate",
                                 estimate=r.win_rate, ci_low=r.ci_low, ci_high=r.ci_high, n=r.n,
                                 note=f"{r.ties} ties; {r.n_missing} without a score"))
        for part, why in self.notes.items():
            rows.append(dict(part=part, reference="", statistic="", estimate=np.nan, ci_low=np.nan, ci_high=np.nan,
                             n=0, note=why))
        return pd.DataFrame(rows, columns=["part", "reference", "statistic", "estimate", "ci_low", "ci_high", "n",
                                           "note"])

    def __repr__(self) -> str:
        parts = [p for p in ("human", "metrics", "other", "sanity") if getattr(self, p) is not None]
        return f"JudgeValidation({self.judge}: {', '.join(parts) or 'nothing computed'}; .to_frame())"


def _tagged(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    return frame.assign(reference=reference)


def validate_judge(
    run: Run, judge: str | None = None, *, annotator: str | None = None,
    metrics: Sequence[str] | None = VALIDATION_METRICS, other_judge: str | None = None, sanity: bool = True,
    classifier: Classifier | None = None, judge_options: dict | None = None, n_boot: int = 2000, ci: float = 0.95,
    seed: int = 0, limit: int | None = None, progress: bool = True,
) -> JudgeValidation:
    """Validate ``judge`` (default: the run's) on ``run`` at the run's alpha/beta.

    ``metrics`` are computed with :func:`~vlmxplain.metrics.evaluate` where the run lacks them
    (needs ``classifier`` or a run that records how to rebuild it); ``None`` skips them.
    ``other_judge`` must have judged the run at the same alpha/beta (see ``vx.rejudge``).
    """
    spec = str(judge) if judge else run.judge
    table = run.table_for(spec)
    scores = table["score"]
    out = JudgeValidation(spec)
    if scores.notna().sum() < 3:
        raise ValueError(f"judge: {spec} has fewer than 3 scores in {run.run_dir} at alpha={run.alpha:g}, "
                         f"beta={run.beta:g}; judge the run with it first (vx.rejudge)")
    annotations = run.store.annotations()
    if annotations.empty:
        out.notes["human"] = "no human annotations in this run (collect some with vx.Annotator(run, name))"
    else:
        out.human = agreement_table(table, annotations, annotator=annotator, n_boot=n_boot, ci=ci, seed=seed)
    if metrics:
        names = list(metrics)
        missing = [m for m in names if m not in table.columns]
        if missing:
            evaluate(run, missing, classifier=classifier, progress=progress)
            table = run.table_for(spec)
        frames = []
        refs = {m: table[m] for m in names}
        if {"insertion_auc", "deletion_auc"} <= set(names):
            refs["insertion - deletion"] = table["insertion_auc"] - table["deletion_auc"]
        for ref, values in refs.items():
            frame = correlations(scores, values, n_boot=n_boot, ci=ci, seed=seed)
            if ref in METRICS and not METRICS[ref].higher_is_better:
                frame["note"] = (frame["note"] + "; lower is better: a faithful judge correlates negatively").str.strip("; ")
            frames.append(_tagged(frame, ref))
        out.metrics = pd.concat(frames)
    if other_judge:
        other = run.table_for(str(other_judge))["score"]
        try:
            out.other = _tagged(correlations(scores, other, n_boot=n_boot, ci=ci, seed=seed), str(other_judge))
        except TooFewPairsError as err:
            out.notes["other judge"] = f"{other_judge}: {err} (judge the run with it: vx.rejudge)"
    if sanity:
        out.sanity = sanity_check(run, spec, classifier=classifier, judge_options=judge_options, seed=seed,
                                  limit=limit, ci=ci, progress=progress)
    return out
