"""Annotators for the agreement study: human answers (the Annotator's, or a CSV) and clearly
labelled *simulated* raters for offline demos.

- :func:`simulate_annotators` — stand-in raters made from a reference score plus noise, named
  ``simulated-*`` and flagged ``simulated=True``. They are never human data; notebooks say so.
- :func:`load_annotations` — human answers from the run store (the Annotator) or a CSV.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field

from ..core.defaults import SCORE_RANGE
from ..core.checks import NonNegativeInt, check_int
from ..core.params import ParamsModel
from ..metrics.annotations import load_annotations_csv, validate_annotations

__all__ = ["SIMULATED_PREFIX", "AgreementParams", "as_reference", "describe_source", "load_annotations",
           "simulate_annotators", "validate_agreement_params"]

SIMULATED_PREFIX = "simulated-"


def simulate_annotators(reference: pd.Series, n_annotators: int = 3, noise: float = 0.75, *, seed: int = 0,
                        judge_scores: pd.Series | None = None, accept_within: float = 1.0) -> pd.DataFrame:
    """SIMULATED raters: ``round(reference + N(0, noise))`` clipped to 0–5, one column of noise
    per rater (each rater also gets a small personal bias, N(0, noise / 3)).

    Returns annotations (``sample_id, annotator, score, accept, simulated``); annotators are named
    ``simulated-1``, ``simulated-2``, ... ``accept`` (with ``judge_scores``) says whether the
    judge's score lies within ``accept_within`` of the rater's: a stand-in for "I accept the
    judge's explanation". A stand-in for the human study, not a substitute.
    """
    check_int("n_annotators", n_annotators)
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
    (``vx.Annotator(run, name)``), else a CSV path (``sample_id, annotator, score[, accept]``).

    Answers without a score (accept/reject only) are dropped from the scores; ``simulated`` is False.
    """
    if str(source) == "run":
        if run is None:
            raise ValueError("annotations: 'run' needs the run whose store holds the Annotator's answers")
        ann = run.store.annotations()
        ann = ann[ann["score"].notna()].drop(columns=["note", "created"], errors="ignore")
        if ann.empty:
            raise ValueError(f"annotations: no scored annotation in {run.run_dir}; annotate with vx.Annotator(run, 'name') "
                             "or give a CSV")
        ann = validate_annotations(ann.reset_index(drop=True))
        ann["accept"] = ann["accept"].astype("boolean")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"annotations: no such CSV file: {str(source)!r} (or use 'run' / 'simulated')")
        ann = load_annotations_csv(path)
    ann["simulated"] = False
    return ann.reset_index(drop=True)


def describe_source(annotations: pd.DataFrame) -> str:
    """A one-line label for figures and prose: simulated or human, how many raters and samples."""
    simulated = bool(annotations.get("simulated", pd.Series(False)).any())
    kind = "SIMULATED annotators (not human data)" if simulated else "human annotators"
    return f"{kind}: {annotations['annotator'].nunique()} raters, {annotations['sample_id'].nunique()} samples"


def as_reference(annotations: pd.DataFrame) -> pd.Series:
    """Mean score per sample over the annotators (a reference for sweeps and tables)."""
    return annotations.groupby("sample_id")["score"].mean().rename("mean_annotator").rename_axis("id")


def _annotations(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"annotations: give 'simulated', 'run' or a CSV path, got {value!r}")
    value = value.strip()
    if value not in ("simulated", "run") and not Path(value).expanduser().is_file():
        raise ValueError(f"annotations: {value!r} is neither 'simulated', 'run' nor an existing CSV file")
    return value


class AgreementParams(ParamsModel):
    """Settings of the agreement study: ``annotations`` is "simulated" (offline stand-in), "run"
    (the Annotator's answers in the run store) or a CSV path."""

    annotations: Annotated[str, BeforeValidator(_annotations)] = Field(
        "simulated", description="simulated, run, or a CSV path")
    n_annotators: Annotated[int, Field(ge=2, strict=True)] = Field(3, description="simulated annotators only")
    annotator_noise: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.75, description="simulated annotators only, in score points")
    n_boot: NonNegativeInt = Field(1000, description="bootstrap resamples for the confidence intervals")
    seed: NonNegativeInt = 0


def validate_agreement_params(**params: Any) -> AgreementParams:
    """Check the agreement study's settings; errors name the parameter."""
    return AgreementParams.check(**params)
