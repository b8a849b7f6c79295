"""Image plumbing shared by judges, panels and figures: fitting to a longest side, composing
images side by side, and encoding (deterministic PNG, fast JPEG, data URIs)."""
from __future__ import annotations

import base64
import io
from typing import Literal

from PIL import Image

from ..core.defaults import PREVIEW_SIZE

ImageFormat = Literal["png", "jpeg"]
JPEG_QUALITY = 90


def fit_longest(image: Image.Image, size: int, *, upscale: bool = False) -> Image.Image:
    """An RGB copy whose longest side is ``size`` pixels (aspect kept, Lanczos). Smaller images
    are returned at their own size unless ``upscale``."""
    if isinstance(size, bool) or int(size) < 1:
        raise ValueError(f"size: must be >= 1, got {size!r}")
    image = image.convert("RGB")
    w, h = image.size
    if max(w, h) == size or (max(w, h) < size and not upscale):
        return image
    scale = size / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def thumbnail(image: Image.Image, size: int = 160) -> Image.Image:
    """A copy whose longest side is at most ``size`` pixels."""
    return fit_longest(image, size)


def preview_of(image: Image.Image, size: int = PREVIEW_SIZE) -> Image.Image:
    """The stored working copy of an image: longest side at most ``size`` (what judges see)."""
    return fit_longest(image, size)


def side_by_side(*images: Image.Image, gap: int = 4, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Images next to each other at a common height (the tallest one's)."""
    if not images:
        raise ValueError("images: give at least one image")
    height = max(im.height for im in images)
    scaled = [im if im.height == height else im.resize((round(im.width * height / im.height), height),
                                                       Image.Resampling.LANCZOS) for im in images]
    canvas = Image.new("RGB", (sum(im.width for im in scaled) + gap * (len(scaled) - 1), height), background)
    x = 0
    for im in scaled:
        canvas.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return canvas


def encode_image(image: Image.Image, fmt: ImageFormat = "png") -> bytes:
    """PNG (deterministic: same pixels, same bytes) or JPEG (fast, for viewing)."""
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG", optimize=False, compress_level=6)
    elif fmt == "jpeg":
        image.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        raise ValueError(f"fmt: must be 'png' or 'jpeg', got {fmt!r}")
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG encoding (used for cache keys and for what is sent to a VLM)."""
    return encode_image(image, "png")


def data_uri(image: Image.Image, fmt: ImageFormat = "jpeg") -> str:
    """A ``data:`` URI of the image (for static HTML)."""
    return f"data:image/{fmt};base64,{base64.b64encode(encode_image(image, fmt)).decode('ascii')}"
