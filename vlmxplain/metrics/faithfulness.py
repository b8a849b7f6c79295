"""Faithfulness and localisation of a saliency map, per sample: does the model's prediction depend
on the region the map points at, and does the map sit on the object?

Faithfulness (the classifier re-scores perturbed copies; the target is the class the map
explains, usually the prediction; probabilities are softmax probabilities):

* ``deletion_auc`` — area under the target probability as the most salient pixels are replaced
  by the baseline (0 → 100% of the pixels, ``steps`` steps). Lower is better.
* ``insertion_auc`` — area as the most salient pixels are put back onto the baseline. Higher is better.
* ``aopc`` — area over the MoRF perturbation curve (Samek et al. 2016):
  ``mean_k (p(x) - p(x with the top k/steps removed))``. Higher is better.
* ``average_drop`` — ``100 · max(0, p - o) / p`` with ``o`` the probability on the explanation
  map ``x · v + b · (1 - v)`` (Chattopadhay et al. 2018, Grad-CAM++). Lower is better.
* ``increase_in_confidence`` — 1 when ``o > p``, else 0 (its mean is the paper's percentage).
* ``road`` — ROAD (Rong et al. 2022) as pytorch-grad-cam ships it (``ROADCombined``: noisy
  linear imputation, percentiles 10..90, ``(LeRF - MoRF) / 2``). Higher is better. Slow (a sparse
  solve per percentile): opt-in.

Localisation (needs an object mask; no model):

* ``pointing_game`` — 1 when the map's maximum lies on the object (Zhang et al. 2016; ``tolerance``
  pixels of slack).
* ``energy_on_object`` — share of the map's mass on the object (energy-based pointing game).

A map without contrast (all zero or constant) has status ``no_attention`` and no value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..masks.perturbation import (
    DEFAULT_BASELINE, DEFAULT_STEPS, check_baseline, check_steps, input_saliency, is_blank_map, perturbation_curves,
)
from ..masks.regions import energy_on_mask
from ..masks.saliency import saliency as upsample
from ..models.classifiers import Classifier


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    kind: str  # "curve" (baseline-dependent), "road" or "localisation"
    description: str


METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    MetricInfo("deletion_auc", False, "curve", "area under the probability as the top pixels are deleted"),
    MetricInfo("insertion_auc", True, "curve", "area under the probability as the top pixels are inserted"),
    MetricInfo("aopc", True, "curve", "area over the MoRF perturbation curve"),
    MetricInfo("average_drop", False, "curve", "% confidence lost on the explanation map"),
    MetricInfo("increase_in_confidence", True, "curve", "1 if the explanation map raises the confidence"),
    MetricInfo("road", True, "road", "ROAD combined (LeRF - MoRF) / 2, pytorch-grad-cam"),
    MetricInfo("pointing_game", True, "localisation", "1 if the map's peak lies on the object"),
    MetricInfo("energy_on_object", True, "localisation", "share of the map's mass on the object"),
]}
#: Computed by default (ROAD is opt-in: slow).
DEFAULT_METRICS: tuple[str, ...] = ("deletion_auc", "insertion_auc", "aopc", "average_drop", "increase_in_confidence",
                                    "pointing_game", "energy_on_object")
ROAD_PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def check_metrics(metrics: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validate metric names (``None`` → the defaults, ``"all"`` → every metric)."""
    if metrics is None:
        return DEFAULT_METRICS
    if metrics == "all":
        return tuple(METRICS)
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics: unknown {unknown or 'empty list'}; known: {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def variant_of(metric: str, baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS) -> str:
    """The settings a stored value depends on: ``"blur_noise"``, ``"black,steps=10"``; ``""`` for ROAD and
    localisation metrics (no baseline)."""
    if METRICS[metric].kind != "curve":
        return ""
    return baseline if steps == DEFAULT_STEPS else f"{baseline},steps={steps}"


def pointing_game(v: np.ndarray, obj: np.ndarray, tolerance: int = 0) -> float:
    """1.0 when the map's (first) maximum lies on the object or within ``tolerance`` pixels of it."""
    obj = np.asarray(obj, bool)
    y, x = np.unravel_index(int(np.argmax(v)), np.shape(v))
    t = int(tolerance)
    window = obj[max(0, y - t): y + t + 1, max(0, x - t): x + t + 1]
    return float(window.any())


def localisation(raw_map: np.ndarray, obj: np.ndarray, tolerance: int = 0) -> dict[str, float]:
    """Pointing game and energy on the object for a raw map and a boolean object mask."""
    obj = np.asarray(obj, bool)
    v = upsample(raw_map, (obj.shape[1], obj.shape[0]))
    return {"pointing_game": pointing_game(v, obj, tolerance), "energy_on_object": energy_on_mask(v, obj)}


def road_scores(classifier: Classifier, images: Sequence[Image.Image], maps: Sequence[np.ndarray],
                targets: Sequence[int], *, percentiles: Sequence[int] = ROAD_PERCENTILES, batch_size: int = 16,
                seed: int = 0) -> np.ndarray:
    """ROAD (combined) per sample with pytorch-grad-cam's implementation (softmax target); the
    imputer's noise is seeded, so the values are reproducible."""
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    metric = ROADCombined(percentiles=list(percentiles))
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch_size):
            chunk = slice(start, start + batch_size)
            x = classifier.batch(images[chunk]).contiguous()
            cams = np.stack([input_saliency(classifier, m, x[0]) for m in maps[chunk]]).astype(np.float32)
            tgt = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets[chunk]]
            with classifier.lock:
                out.append(np.asarray(metric(x, cams, tgt, classifier.model), dtype=np.float64).reshape(-1))
    return np.concatenate(out) if out else np.empty(0)


def faithfulness(
    classifier: Classifier, images: Sequence[Image.Image], maps: Sequence[np.ndarray], targets: Sequence[int], *,
    metrics: Sequence[str] | str | None = None, baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS,
    object_masks: Sequence[np.ndarray | None] | None = None, tolerance: int = 0, batch_size: int = 64,
) -> pd.DataFrame:
    """The chosen metrics for each (image, raw map, target class): one row per sample, one column
    per metric, plus ``status`` (``ok`` or ``no_attention``), and the deletion / insertion curves
    (``deletion_curve``, ``insertion_curve``) when a curve metric was asked for.

    A localisation metric is NaN for a sample without an object mask.
    """
    names = check_metrics(metrics)
    check_baseline(baseline)
    steps = check_steps(steps)
    n = len(images)
    if not (n == len(maps) == len(targets)):
        raise ValueError(f"images, maps, targets: lengths differ ({n}, {len(maps)}, {len(targets)})")
    masks = list(object_masks) if object_masks is not None else [None] * n
    if len(masks) != n:
        raise ValueError(f"object_masks: got {len(masks)} for {n} images")
    blank = np.array([is_blank_map(m) for m in maps], dtype=bool)
    frame = pd.DataFrame({"status": np.where(blank, "no_attention", "ok")})
    for name in names:
        frame[name] = np.nan
    live = np.flatnonzero(~blank)
    pick = lambda seq: [seq[i] for i in live]  # noqa: E731
    if any(METRICS[m].kind == "curve" for m in names) and len(live):
        c = perturbation_curves(classifier, pick(images), pick(maps), pick(targets), baseline=baseline, steps=steps,
                                batch_size=batch_size)
        p = np.maximum(c.full, 1e-12)
        values = {
            "deletion_auc": c.deletion_auc, "insertion_auc": c.insertion_auc,
            "aopc": np.mean(c.full[:, None] - c.deletion, axis=1),
            "average_drop": 100.0 * np.maximum(0.0, c.full - c.soft) / p,
            "increase_in_confidence": (c.soft > c.full).astype(float),
        }
        for name in names:
            if name in values:
                frame.loc[live, name] = values[name]
        frame["deletion_curve"] = None
        frame["insertion_curve"] = None
        frame["deletion_curve"] = frame["deletion_curve"].astype(object)
        frame["insertion_curve"] = frame["insertion_curve"].astype(object)
        for k, i in enumerate(live):
            frame.at[i, "deletion_curve"] = np.round(c.deletion[k], 6).tolist()
            frame.at[i, "insertion_curve"] = np.round(c.insertion[k], 6).tolist()
    if "road" in names and len(live):
        frame.loc[live, "road"] = road_scores(classifier, pick(images), pick(maps), pick(targets),
                                              batch_size=max(1, batch_size // 4))
    if {"pointing_game", "energy_on_object"} & set(names):
        for i in live:
            if masks[i] is None:
                continue
            loc = localisation(maps[i], masks[i], tolerance)
            for name in ("pointing_game", "energy_on_object"):
                if name in names:
                    frame.at[i, name] = loc[name]
    return frame
