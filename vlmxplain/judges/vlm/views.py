"""The image a VLM judge is shown: masked CAM image, overlay, or both side by side, resized."""
from __future__ import annotations

from PIL import Image

from ..base import JudgeInput, png_bytes
from .prompts import InputKind


def resize_longest(image: Image.Image, size: int) -> Image.Image:
    """RGB copy of ``image`` whose longest side is exactly ``size`` pixels (aspect kept)."""
    image = image.convert("RGB")
    w, h = image.size
    if max(w, h) == size:
        return image
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(new, Image.Resampling.LANCZOS)


def judge_view(item: JudgeInput, input_kind: InputKind = "masked", image_size: int = 512) -> Image.Image:
    """The image sent to the judge for ``item``.

    ``both`` puts the masked image (left) and the overlay (right, resized to the masked image's
    size) side by side; the composite's longest side is ``image_size``.
    """
    if input_kind == "masked":
        return resize_longest(item.masked, image_size)
    if input_kind == "overlay":
        return resize_longest(item.overlay, image_size)
    if input_kind == "both":
        left = item.masked.convert("RGB")
        right = item.overlay.convert("RGB")
        if right.size != left.size:
            right = right.resize(left.size, Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (left.width * 2, left.height))
        canvas.paste(left, (0, 0))
        canvas.paste(right, (left.width, 0))
        return resize_longest(canvas, image_size)
    raise ValueError(f"input_kind must be 'masked', 'overlay' or 'both', got {input_kind!r}")


def judge_view_png(item: JudgeInput, input_kind: InputKind = "masked", image_size: int = 512) -> bytes:
    """PNG bytes of :func:`judge_view` (deterministic encoding, see :func:`png_bytes`)."""
    return png_bytes(judge_view(item, input_kind, image_size))
