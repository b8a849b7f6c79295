"""References a judge is checked against, read from a run: ground-truth localisation, the same
judge's scores of two views, and agreement with the run's human annotations.

- :func:`groundtruth_reference` — 5 × the share of the raw CAM's energy on the object (from the
  stored map upsampled to the image; independent of alpha/beta).
- :func:`view_scores` — a judge's scores of the masked image and of the overlay, where the same
  VLM judge was run with both ``input_kind`` values (for the masked-vs-overlay comparison).
- :func:`agreement` — judge vs the run's human annotations (correlations with bootstrap CIs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..masks.regions import energy_on_mask
from ..masks.saliency import saliency as upsample_saliency
from ..store import Run
from .agreement import agreement_table

__all__ = ["agreement", "groundtruth_reference", "view_scores"]


def groundtruth_reference(run) -> pd.Series:
    """Per sample id: ``5 × sum(v · object) / sum(v)`` with ``v`` the normalised CAM at image size.

    Only samples with a CAM and an object mask appear; raises ``ValueError`` when no sample of
    the run has an object mask (photos without masks have no ground-truth localisation).
    """
    scores = {}
    for sample_id in sorted(run.store.cam_ids()):
        obj = run.object_mask(sample_id)
        if obj is None:
            continue
        obj = np.asarray(obj, bool)
        v = upsample_saliency(run.cam(sample_id)["map"], (obj.shape[1], obj.shape[0]))
        scores[sample_id] = 5.0 * energy_on_mask(v, obj)
    if not scores:
        raise ValueError(f"reference: no sample in {run.run_dir} has an object mask, so there is no ground-truth "
                         "localisation (use data with masks, e.g. 'shapes', or human annotations)")
    return pd.Series(scores, name="groundtruth_localisation", dtype=float).rename_axis("id")


def view_scores(run: Run, judge: str | None = None, alpha: float | None = None,
                beta: float | None = None) -> pd.DataFrame | None:
    """Scores of the same judge shown the masked image and the overlay (columns ``masked``,
    ``overlay``, indexed by sample id), or None unless both views were judged at this alpha/beta.
    Which view a judgment saw comes from the judge settings recorded in the run."""
    judge = str(judge) if judge else run.judge
    a = run.alpha if alpha is None else alpha
    b = run.beta if beta is None else beta
    j = run.store.judgments(judge, None, a, b)
    if j.empty:
        return None
    kinds = {s.prompt_version: s.input_kind for s in run.store.judge_settings() if s.judge == judge}
    j = j[j["judge_status"] == "ok"].copy()
    j["view"] = j["prompt_version"].map(kinds)
    j = j[j["view"].isin(["masked", "overlay"])].drop_duplicates(["id", "view"], keep="last")
    if set(j["view"]) != {"masked", "overlay"}:
        return None
    wide = j.pivot(index="id", columns="view", values="score")[["masked", "overlay"]].dropna()
    return wide if len(wide) else None


def agreement(run: Run, annotator: str | None = None, **options) -> pd.DataFrame:
    """Judge-vs-human agreement on a run's annotations (Pearson, Spearman, Kendall with bootstrap
    CIs), per annotator and against the mean human; see
    :func:`vlmxplain.metrics.agreement.agreement_table` for ``options``."""
    annotations = run.store.annotations()
    if annotations.empty:
        raise ValueError(f"annotator: no human annotations in {run.run_dir}; collect some with "
                         "vx.Annotator(run, name)")
    return agreement_table(run.table, annotations, annotator=annotator, **options)
