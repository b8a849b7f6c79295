"""Reference scores to check a judge against: ground-truth localisation, human annotations, and
clearly labelled *simulated* annotators for offline demos.

- :func:`groundtruth_reference` — 5 × the share of the raw CAM's energy on the object (from the
  stored map upsampled to the image; independent of alpha/beta, so it can anchor a sweep).
- :func:`simulate_annotators` — stand-in raters made from a reference score plus noise, named
  ``simulated-*`` and flagged ``simulated=True``. They are never human data; notebooks say so.
- :func:`load_annotations` — human answers from the run store (the Annotator) or a CSV.
- :func:`view_scores` — a judge's scores of the masked image and of the overlay, where the same
  VLM judge was run with both ``input_kind`` values (for the masked-vs-overlay comparison).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from ..masks import saliency as upsample_saliency
from .agreement import SCORE_RANGE, _validate_annotations, load_annotations_csv
from .bias import energy_on_mask

__all__ = ["SIMULATED_PREFIX", "AgreementParams", "as_reference", "describe_source", "groundtruth_reference",
           "load_annotations", "simulate_annotators", "validate_agreement_params", "view_scores"]

SIMULATED_PREFIX = "simulated-"


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


def simulate_annotators(reference: pd.Series, n_annotators: int = 3, noise: float = 0.75, *, seed: int = 0,
                        judge_scores: pd.Series | None = None, accept_within: float = 1.0) -> pd.DataFrame:
    """SIMULATED raters: ``round(reference + N(0, noise))`` clipped to 0–5, one column of noise
    per rater (each rater also gets a small personal bias, N(0, noise / 3)).

    Returns annotations (``sample_id, annotator, score, accept, simulated``); annotators are named
    ``simulated-1``, ``simulated-2``, ... ``accept`` (with ``judge_scores``) says whether the
    judge's score lies within ``accept_within`` of the rater's: a stand-in for "I accept the
    judge's explanation". A stand-in for the human study, not a substitute.
    """
    if isinstance(n_annotators, bool) or not isinstance(n_annotators, (int, np.integer)) or n_annotators < 1:
        raise ValueError(f"n_annotators: must be an integer >= 1, got {n_annotators!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise: must be a finite number >= 0, got {noise!r}")
    ref = pd.to_numeric(pd.Series(reference), errors="coerce").dropna()
    if ref.empty:
        raise ValueError("reference: no numeric scores to simulate annotators from")
    rng = np.random.default_rng(seed)
    lo, hi = SCORE_RANGE
    frames = []
    for k in range(1, int(n_annotators) + 1):
        bias = rng.normal(0.0, noise / 3)
        score = np.clip(np.rint(ref.to_numpy() + bias + rng.normal(0.0, noise, len(ref))), lo, hi)
        frame = pd.DataFrame({"sample_id": ref.index.astype(str), "annotator": f"{SIMULATED_PREFIX}{k}",
                              "score": score})
        if judge_scores is not None:
            judge = pd.to_numeric(pd.Series(judge_scores), errors="coerce").reindex(ref.index)
            frame["accept"] = pd.array(np.where(judge.isna(), pd.NA, (judge - score).abs() <= accept_within),
                                       dtype="boolean")
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["simulated"] = True
    return out


def load_annotations(source: str | os.PathLike, run=None) -> pd.DataFrame:
    """Human annotations: ``"run"`` = the answers saved in ``run``'s store by the Annotator
    (``run.annotate(name)``), else a CSV path (``sample_id, annotator, score[, accept]``).

    Answers without a score (accept/reject only) are dropped from the scores; ``simulated`` is False.
    """
    if str(source) == "run":
        if run is None:
            raise ValueError("annotations: 'run' needs the run whose store holds the Annotator's answers")
        ann = run.store.annotations()
        ann = ann[ann["score"].notna()].drop(columns=["note", "created"], errors="ignore")
        if ann.empty:
            raise ValueError(f"annotations: no scored annotation in {run.run_dir}; annotate with run.annotate('name') "
                             "or give a CSV")
        ann = _validate_annotations(ann.reset_index(drop=True))
        ann["accept"] = ann["accept"].astype("boolean")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"annotations: no such CSV file: {str(source)!r} (or use 'run' / 'simulated')")
        ann = load_annotations_csv(path)
    ann["simulated"] = False
    return ann.reset_index(drop=True)


_INPUT = re.compile(r"\|input=(masked|overlay)\|")


def view_scores(run, judge: str | None = None, alpha: float | None = None,
                beta: float | None = None) -> pd.DataFrame | None:
    """Scores of the same judge shown the masked image and the overlay (columns ``masked``,
    ``overlay``, indexed by sample id), or None unless both views were judged at this alpha/beta."""
    cfg = run.config
    judge = judge or cfg.get("judge")
    a = cfg.get("alpha") if alpha is None else alpha
    b = cfg.get("beta") if beta is None else beta
    j = run.store.judgments(judge, None, a, b)
    if j.empty:
        return None
    j = j[j["judge_status"] == "ok"].copy()
    j["view"] = j["prompt_version"].map(lambda v: (_INPUT.search(str(v)) or [None, None])[1])
    j = j.dropna(subset=["view"]).drop_duplicates(["id", "view"], keep="last")
    if set(j["view"]) != {"masked", "overlay"}:
        return None
    wide = j.pivot(index="id", columns="view", values="score")[["masked", "overlay"]].dropna()
    return wide if len(wide) else None


def describe_source(annotations: pd.DataFrame) -> str:
    """A one-line label for figures and prose: simulated or human, how many raters and samples."""
    simulated = bool(annotations.get("simulated", pd.Series(False)).any())
    kind = "SIMULATED annotators (not human data)" if simulated else "human annotators"
    return f"{kind}: {annotations['annotator'].nunique()} raters, {annotations['sample_id'].nunique()} samples"


def as_reference(annotations: pd.DataFrame) -> pd.Series:
    """Mean score per sample over the annotators (a reference for sweeps and tables)."""
    return annotations.groupby("sample_id")["score"].mean().rename("mean_annotator").rename_axis("id")


@dataclass(frozen=True)
class AgreementParams:
    """Validated settings of the agreement study (the run's own parameters are checked by
    :func:`vlmxplain.params.validate_params`)."""

    annotations: str = "simulated"
    n_annotators: int = 3
    annotator_noise: float = 0.75
    n_boot: int = 1000
    seed: int = 0


def validate_agreement_params(*, annotations: str = "simulated", n_annotators: int = 3, annotator_noise: float = 0.75,
                              n_boot: int = 1000, seed: int = 0) -> AgreementParams:
    """``annotations``: "simulated" (offline stand-in), "run" (the Annotator's answers in the run
    store) or a CSV path; the rest must be in range. Errors name the parameter."""
    if not isinstance(annotations, str) or not annotations.strip():
        raise ValueError(f"annotations: give 'simulated', 'run' or a CSV path, got {annotations!r}")
    if annotations not in ("simulated", "run") and not Path(annotations).expanduser().is_file():
        raise ValueError(f"annotations: {annotations!r} is neither 'simulated', 'run' nor an existing CSV file")
    for name, value, low in (("n_annotators", n_annotators, 2), ("n_boot", n_boot, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")
    try:
        noise = float(annotator_noise)
    except (TypeError, ValueError):
        noise = float("nan")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"annotator_noise: must be a finite number >= 0, got {annotator_noise!r}")
    return AgreementParams(annotations.strip(), int(n_annotators), noise, int(n_boot), int(seed))
