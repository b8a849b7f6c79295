"""Preprocessing and reshape transforms shared by every classifier source (no model code here)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

Preprocess = Callable[[Image.Image], torch.Tensor]


# --------------------------------------------------------------------------- preprocessing


def make_preprocess(
    size: int | tuple[int, int] = 224,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    interpolation: str = "bicubic",
) -> Preprocess:
    """Resize the whole image to ``size`` (no crop, so the CAM covers the whole image) with
    PIL's antialiased filter (as timm's eval transforms do), scale to [0, 1] and normalise."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    filters = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
               "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
    if interpolation not in filters:
        raise ValueError(f"interpolation: one of {sorted(filters)}, got {interpolation!r}")
    resample = filters[interpolation]
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(3, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)]).view(3, 1, 1)

    def preprocess(image: Image.Image) -> torch.Tensor:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        resized = rgb.resize((hw[1], hw[0]), resample)
        pixels = torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1)
        return pixels.float() * scale - shift

    preprocess.size = hw  # type: ignore[attr-defined]
    return preprocess


# --------------------------------------------------------------------------- target layers


class TokensToGrid:
    """Reshape transform for ViT/DeiT tokens: drop prefix (class/distillation) tokens and fold
    the rest into an N×C×h×w grid."""

    def __init__(self, grid: tuple[int, int], prefix_tokens: int = 1) -> None:
        self.grid = tuple(grid)
        self.prefix_tokens = prefix_tokens

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        n, t, c = tokens.shape
        h, w = self.grid
        if t - self.prefix_tokens != h * w:
            raise ValueError(f"{t} tokens do not fold into a {h}×{w} grid with {self.prefix_tokens} prefix tokens")
        return tokens[:, self.prefix_tokens :, :].reshape(n, h, w, c).permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return f"TokensToGrid(grid={self.grid}, prefix_tokens={self.prefix_tokens})"


class ChannelsLastToFirst:
    """Reshape transform for Swin-style N×H×W×C feature maps."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return "ChannelsLastToFirst()"


