"""What a judge sees for one sample, derived from an image and its raw CAM (cheap, on demand).

:func:`make_judge_input` builds the :class:`JudgeInput` (saliency, sigmoid mask, masked image,
overlay) for any alpha/beta from a stored CAM record; :func:`judge_view` is the picture a VLM is
shown (masked image, overlay, or both side by side) at the size it is sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..core.defaults import PREVIEW_SIZE
from .images import fit_longest, png_bytes, side_by_side
from .saliency import apply_mask, overlay, saliency, sigmoid_mask

from ..core.catalog import INPUT_KINDS, InputKind  # noqa: F401  (what a VLM judge is shown; re-exported)


@dataclass
class JudgeInput:
    """Everything a judge may look at for one sample.

    ``saliency`` is the min-max normalised CAM at image resolution (float32, H×W, in [0, 1]);
    ``mask`` the sigmoid mask derived from it with the run's alpha/beta; ``masked`` is
    image × mask (what the paper's judge sees) and ``overlay`` the classic heat-map overlay.
    """

    sample_id: str
    image: Image.Image
    masked: Image.Image
    overlay: Image.Image
    saliency: np.ndarray
    mask: np.ndarray
    predicted_class: int
    predicted_name: str
    confidence: float
    label_name: str = ""
    object_mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def make_judge_input(
    sample_id: str, image: Image.Image, cam: Mapping[str, Any], alpha: float, beta: float,
    class_names: Sequence[str], *, label: str = "", object_mask: np.ndarray | None = None,
) -> JudgeInput:
    """Derive everything a judge sees from an image and its stored raw CAM record
    (``map``, ``prediction``, ``confidence``)."""
    v = saliency(cam["map"], image.size)
    m = sigmoid_mask(v, alpha, beta)
    if object_mask is not None and object_mask.shape != m.shape:
        object_mask = np.asarray(
            Image.fromarray(np.asarray(object_mask, bool).astype(np.uint8) * 255).resize(image.size, Image.NEAREST)
        ) > 127
    prediction = int(cam["prediction"])
    return JudgeInput(
        sample_id=sample_id, image=image, masked=apply_mask(image, m), overlay=overlay(image, cam["map"]),
        saliency=v, mask=m, predicted_class=prediction, predicted_name=class_names[prediction],
        confidence=float(cam["confidence"]), label_name=label, object_mask=object_mask,
    )


def judge_view(item: JudgeInput, input_kind: InputKind = "masked", image_size: int = PREVIEW_SIZE) -> Image.Image:
    """The image sent to a VLM judge for ``item``, longest side ``image_size``.

    ``both`` puts the masked image (left) and the overlay (right) side by side.
    """
    if input_kind == "masked":
        picture = item.masked
    elif input_kind == "overlay":
        picture = item.overlay
    elif input_kind == "both":
        picture = side_by_side(item.masked, item.overlay, gap=0)
    else:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    return fit_longest(picture, image_size, upscale=True)


def judge_view_png(item: JudgeInput, input_kind: InputKind = "masked", image_size: int = PREVIEW_SIZE) -> bytes:
    """PNG bytes of :func:`judge_view` (deterministic encoding, see :func:`png_bytes`)."""
    return png_bytes(judge_view(item, input_kind, image_size))
