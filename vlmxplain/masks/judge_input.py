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


class _DrawnOnFirstUse:
    """Descriptor of :attr:`JudgeInput.overlay`: drawn from ``raw_map`` the first time it is read
    (a masked-image judge never reads it: ~10 ms saved per 500-px photo); given, it is kept as is."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Image.Image | None:
        if obj is None:
            return None  # the dataclass field's default
        value = obj.__dict__.get(self.slot)
        if value is None and obj.raw_map is not None:
            value = obj.__dict__[self.slot] = overlay(obj.image, obj.raw_map)
        return value

    def __set__(self, obj: Any, value: Image.Image | None) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class JudgeInput:
    """Everything a judge may look at for one sample.

    ``saliency`` is the min-max normalised CAM at image resolution (float32, H×W, in [0, 1]);
    ``mask`` the sigmoid mask derived from it with the run's alpha/beta; ``masked`` is
    image × mask (what the paper's judge sees) and ``overlay`` the classic heat-map overlay
    (given, or drawn from ``raw_map`` when first read).
    """

    sample_id: str
    image: Image.Image
    masked: Image.Image
    saliency: np.ndarray
    mask: np.ndarray
    predicted_class: int
    predicted_name: str
    confidence: float
    overlay: Image.Image | None = _DrawnOnFirstUse()
    raw_map: np.ndarray | None = None
    label_name: str = ""
    object_mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.__dict__.get("_overlay") is None and self.raw_map is None:
            raise ValueError("JudgeInput: give overlay= or raw_map= (the raw CAM it is drawn from)")


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
        sample_id=sample_id, image=image, masked=apply_mask(image, m), raw_map=np.asarray(cam["map"]),
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
