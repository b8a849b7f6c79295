"""Perturbing an image by its saliency, batched on the classifier: the shared core of the
faithfulness metrics (:mod:`vlmxplain.metrics.faithfulness`) and the offline judges.

Pixels are ranked by the saliency map (at the classifier's input resolution; ties broken by a
seeded random key, never by raster order). *Deletion* replaces the top ``k/steps`` share with a
baseline; *insertion* starts from the baseline and puts the top share back (Petsiuk et al. 2018,
RISE). The *soft* view blends image and baseline by the map itself (Grad-CAM++'s "explanation
map": ``x · v + b · (1 - v)``).

Baselines (what a removed pixel becomes), all computed in the classifier's input space:

* ``blur_noise`` (default) — the blurred image plus Gaussian noise with the image's own
  high-frequency level (per channel, the std of image − blur; seeded): a removed region keeps the
  texture statistics of the image, so the model cannot read "here was something" from a smooth
  patch. Measured (shapes, ShapesNet, GradCAM vs the inverted map): insertion > deletion on
  100% of 60 images, against 63% with ``blur``, 68% with ``mean`` and 83% with ``black``;
* ``blur`` — a strong Gaussian blur of the image (sigma = 1/20 of the longest side);
* ``mean`` — the image's mean colour;
* ``black`` — a black image (out of distribution: the classifier may change its mind for reasons
  unrelated to attention; kept for comparison with the literature).

The whole image is perturbed in the preprocessed tensor, which covers the whole image (vlmxplain's
preprocessing resizes without cropping), so the saliency map aligns with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from ..models.classifiers import Classifier
from .saliency import saliency as upsample

Baseline = Literal["blur_noise", "blur", "mean", "black"]
BASELINES: tuple[str, ...] = ("blur_noise", "blur", "mean", "black")
DEFAULT_BASELINE: Baseline = "blur_noise"
#: Seed of the noise of ``blur_noise`` and of the tie-breaking of pixel ranks (one for every sample,
#: so a value never depends on where a sample sits in a batch).
SEED = 0
DEFAULT_STEPS = 20
#: The blur baseline's Gaussian sigma, as a share of the longest side.
BLUR_SIGMA = 1 / 20


def check_baseline(baseline: str) -> str:
    if baseline not in BASELINES:
        raise ValueError(f"baseline: must be one of {', '.join(BASELINES)}, got {baseline!r}")
    return baseline


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 2 <= int(steps) <= 1000:
        raise ValueError(f"steps: must be an integer in 2..1000, got {steps!r}")
    return int(steps)


def baseline_tensor(classifier: Classifier, image: Image.Image, x: torch.Tensor, baseline: str) -> torch.Tensor:
    """The baseline for one preprocessed image ``x`` (C×H×W)."""
    check_baseline(baseline)
    if baseline == "mean":
        return x.mean(dim=(1, 2), keepdim=True).expand_as(x).clone()
    if baseline == "black":
        return classifier.preprocess(Image.new("RGB", image.size, (0, 0, 0))).to(x.device, x.dtype)
    arr = x.detach().cpu().permute(1, 2, 0).numpy().astype(np.float32)
    sigma = max(arr.shape[:2]) * BLUR_SIGMA
    blurred = cv2.GaussianBlur(arr, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    if blurred.ndim == 2:
        blurred = blurred[..., None]
    out = torch.from_numpy(blurred).permute(2, 0, 1)
    if baseline == "blur_noise":
        level = (x.detach().cpu().float() - out).std(dim=(1, 2), keepdim=True)
        noise = torch.randn(out.shape, generator=torch.Generator().manual_seed(SEED))
        out = out + level * noise
    return out.to(x.device, x.dtype)


def pixel_ranks(v: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Rank of every pixel by saliency, 0 = most salient (ties broken by a seeded random key)."""
    flat = np.asarray(v, dtype=np.float64).ravel()
    tie = np.random.default_rng(seed).random(flat.size)
    order = np.lexsort((tie, -flat))
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(np.shape(v))


def input_saliency(classifier: Classifier, raw_map: np.ndarray, x: torch.Tensor) -> np.ndarray:
    """The normalised map at the input tensor's resolution (H×W in [0, 1])."""
    return upsample(raw_map, (int(x.shape[-1]), int(x.shape[-2])))


@dataclass
class Curves:
    """Target-class probabilities along the perturbation paths, one row per sample.

    ``fractions`` (steps + 1) is the share of pixels removed (deletion) or inserted (insertion);
    ``full`` is the probability on the intact image, ``base`` on the baseline alone and ``soft``
    on the soft explanation map (``x · v + b · (1 - v)``).
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    full: np.ndarray
    base: np.ndarray
    soft: np.ndarray

    @staticmethod
    def auc(curve: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        """Area under each curve over [0, 1] (trapezoid rule)."""
        return np.trapezoid(curve, fractions, axis=-1)

    @property
    def deletion_auc(self) -> np.ndarray:
        return self.auc(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> np.ndarray:
        return self.auc(self.insertion, self.fractions)


def _views(x: torch.Tensor, b: torch.Tensor, v: np.ndarray, steps: int, seed: int) -> Iterator[torch.Tensor]:
    """Deletion steps 0..K, insertion steps 0..K, then the soft view (2K + 3 tensors)."""
    ranks = torch.from_numpy(pixel_ranks(v, seed)).to(x.device)
    n = ranks.numel()
    counts = [round(n * k / steps) for k in range(steps + 1)]
    for c in counts:  # deletion: the top c pixels become baseline
        m = (ranks < c).to(x.dtype)
        yield x * (1 - m) + b * m
    for c in counts:  # insertion: the top c pixels come back onto the baseline
        m = (ranks < c).to(x.dtype)
        yield b * (1 - m) + x * m
    soft = torch.from_numpy(np.asarray(v, dtype=np.float32)).to(x.device, x.dtype)
    yield x * soft + b * (1 - soft)


@torch.inference_mode()
def perturbation_curves(
    classifier: Classifier, images: Sequence[Image.Image], maps: Sequence[np.ndarray], targets: Sequence[int], *,
    baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS, batch_size: int = 64, seed: int = SEED,
) -> Curves:
    """Deletion and insertion curves, and the soft-map probability, for each (image, map, target).

    ``maps`` are non-negative saliency maps at any resolution (raw CAMs or normalised maps); each
    is upsampled and min-max normalised to the input tensor. All perturbed views of all images go
    through the model in batches of ``batch_size``.
    """
    check_baseline(baseline)
    steps = check_steps(steps)
    if not (len(images) == len(maps) == len(targets)):
        raise ValueError(f"images, maps, targets: lengths differ ({len(images)}, {len(maps)}, {len(targets)})")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    per = 2 * (steps + 1) + 1
    probs = np.empty((len(images), per), dtype=np.float64)
    full = np.empty(len(images))
    pending: list[torch.Tensor] = []
    slots: list[tuple[int, int]] = []
    model = classifier.model

    def flush() -> None:
        if not pending:
            return
        xb = torch.stack(pending).contiguous(memory_format=torch.channels_last)
        with classifier.lock:  # CAM hooks of a concurrent stage never see this forward pass
            p = torch.softmax(model(xb).float(), dim=1).cpu().numpy()
        for (i, j), row in zip(slots, p):
            probs[i, j] = row[targets[i]]
        pending.clear()
        slots.clear()

    for i, (image, raw, target) in enumerate(zip(images, maps, targets)):
        if not 0 <= int(target) < classifier.num_classes:
            raise ValueError(f"targets: class index {target} is outside 0..{classifier.num_classes - 1}")
        x = classifier.batch([image])[0]
        v = input_saliency(classifier, raw, x)
        b = baseline_tensor(classifier, image, x, baseline)
        for j, view in enumerate(_views(x, b, v, steps, seed)):
            pending.append(view)
            slots.append((i, j))
            if len(pending) >= batch_size:
                flush()
    flush()
    k = steps + 1
    deletion, insertion = probs[:, :k], probs[:, k : 2 * k]
    full[:] = deletion[:, 0]
    return Curves(fractions=np.linspace(0.0, 1.0, k), deletion=deletion, insertion=insertion, full=full,
                  base=insertion[:, 0], soft=probs[:, -1])


def inverted(raw_map: np.ndarray) -> np.ndarray:
    """The control map that points everywhere the map does not: ``1 - normalised map``."""
    v = np.asarray(raw_map, dtype=np.float32)
    lo, hi = float(v.min()), float(v.max())
    return (hi - v) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(v)


def is_blank_map(raw_map: np.ndarray, rel_tol: float = 1e-6) -> bool:
    """True for a map without contrast (all zero, constant, or not finite): it shows no attention,
    so no judge should be asked about it."""
    v = np.asarray(raw_map, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        return True
    lo, hi = float(v.min()), float(v.max())
    return hi - lo <= rel_tol * max(abs(hi), abs(lo))


def shows_no_attention(item) -> bool:
    """True when a judge input's map has no contrast (see :func:`is_blank_map`): it is recorded
    with status ``no_attention`` and never sent to a judge."""
    return is_blank_map(item.saliency)
