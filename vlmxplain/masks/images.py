"""Image plumbing shared by judges, panels and figures: fitting to a longest side, composing
images side by side, and encoding (deterministic fast PNG, lossless WebP previews, JPEG, data URIs).

Encoding is the costliest step of an offline run, so every image is encoded once, at the cheapest
setting that keeps it exact: PNG at zlib level 1 for what a VLM is sent (its bytes are the cache
key), lossless WebP for stored previews (or no encoding at all: a JPEG file's own bytes, when they
decode to exactly the preview), and raw pixels (no encoding at all) for cache keys of judges that
are not sent an image.
"""
from __future__ import annotations

import base64
import io
from typing import Literal

from PIL import Image

from ..core.defaults import PREVIEW_SIZE
from ..datasets.loading import SOURCE_JPEG

try:
    from PIL import features as _features

    _HAS_WEBP = bool(_features.check("webp"))
except Exception:  # pragma: no cover - Pillow built without WebP
    _HAS_WEBP = False

ImageFormat = Literal["png", "jpeg", "webp"]
JPEG_QUALITY = 90
#: zlib level of every PNG written: 1 is ~4x faster than the default 6 for ~10% more bytes
PNG_LEVEL = 1


def as_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode: itself when it already is (not a copy)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def fit_longest(image: Image.Image, size: int, *, upscale: bool = False) -> Image.Image:
    """An RGB image whose longest side is ``size`` pixels (aspect kept, Lanczos). Smaller images
    are returned at their own size unless ``upscale`` (an RGB image that already fits is returned
    as is, not copied: treat the result as read-only)."""
    if isinstance(size, bool) or int(size) < 1:
        raise ValueError(f"size: must be >= 1, got {size!r}")
    image = as_rgb(image)
    w, h = image.size
    if max(w, h) == size or (max(w, h) < size and not upscale):
        return image
    scale = size / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def thumbnail(image: Image.Image, size: int = 160) -> Image.Image:
    """An image whose longest side is at most ``size`` pixels (see :func:`fit_longest`)."""
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
    """PNG (deterministic: same pixels, same bytes), lossless WebP (fastest exact format with
    compression) or JPEG (lossy, for viewing)."""
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG", optimize=False, compress_level=PNG_LEVEL)
    elif fmt == "webp":
        as_rgb(image).save(buf, format="WEBP", lossless=True, quality=0, method=0, exact=True)
    elif fmt == "jpeg":
        as_rgb(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        raise ValueError(f"fmt: must be 'png', 'webp' or 'jpeg', got {fmt!r}")
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG encoding (what is sent to a VLM; its bytes form the cache key)."""
    return encode_image(image, "png")


def preview_bytes(image: Image.Image) -> bytes:
    """The stored encoding of a preview, which decodes to exactly its pixels: the JPEG file it was
    decoded from when those bytes still decode to them (checked: a decode is ~5x cheaper than an
    encode, and the file ~5x smaller), else lossless WebP (PNG without WebP support)."""
    source = image.info.get(SOURCE_JPEG)
    if isinstance(source, bytes) and _decodes_to(source, image):
        return source
    return encode_image(image, "webp" if _HAS_WEBP else "png")


def _decodes_to(data: bytes, image: Image.Image) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as decoded:
            return decoded.size == image.size and decoded.mode == image.mode and decoded.tobytes() == image.tobytes()
    except Exception:  # noqa: BLE001 - unreadable bytes are simply not a preview
        return False


def pixel_bytes(image: Image.Image) -> bytes:
    """The raw pixels with their mode and size: an exact, encoding-free identity of an image
    (cache keys of judges that are not sent an encoded image)."""
    header = f"{image.mode}:{image.width}x{image.height}:".encode("ascii")
    return header + image.tobytes()


def data_uri(image: Image.Image, fmt: ImageFormat = "jpeg") -> str:
    """A ``data:`` URI of the image (for static HTML)."""
    return f"data:image/{fmt};base64,{base64.b64encode(encode_image(image, fmt)).decode('ascii')}"
