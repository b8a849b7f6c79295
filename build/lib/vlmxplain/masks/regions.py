"""How much of a map lies on a region: the share of saliency (or mask) mass on an object mask or
inside a box. Used by the ground-truth judge, the shortcut-bias experiment and localisation
references alike."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def energy_on_mask(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the saliency mass on a region: ``sum(v * mask) / sum(v)`` (0 for an all-zero map)."""
    v = np.asarray(saliency, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    if v.shape != m.shape:
        raise ValueError(f"mask: shape {m.shape} does not match the saliency map's {v.shape}")
    if (v < 0).any():
        raise ValueError("saliency: must be non-negative (a normalised CAM)")
    total = v.sum()
    return float((v * m).sum() / total) if total > 0 else 0.0


def energy_in_box(saliency: np.ndarray, box: Sequence[int], margin: int = 0) -> float:
    """Share of the saliency mass inside ``box = (x0, y0, x1, y1)`` (exclusive ends, image pixels),
    grown by ``margin`` pixels on each side and clipped to the image."""
    v = np.asarray(saliency)
    if v.ndim != 2:
        raise ValueError(f"saliency: expected a 2-D map, got shape {v.shape}")
    if len(box) != 4:
        raise ValueError(f"box: expected (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (int(b) for b in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box: empty box {box!r} (need x1 > x0 and y1 > y0)")
    h, w = v.shape
    region = np.zeros((h, w), bool)
    region[max(0, y0 - margin):min(h, y1 + margin), max(0, x0 - margin):min(w, x1 + margin)] = True
    return energy_on_mask(v, region)
