"""Robust image and mask loading: every input becomes an RGB PIL image or a clear skip reason.

``load_image`` accepts a path, raw bytes, a binary file object, a PIL image or a numpy array and
returns a fully decoded ``RGB`` image with its EXIF orientation applied. Inputs that cannot be used
raise :class:`InputSkipped` with a specific reason (missing, empty, text, truncated, too large,
too small, unsupported mode, ...). The header size is checked *before* pixels are decoded, and
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed, so a truncated file is reported, not
silently padded with grey.

Mode conversion rules:

* 16-bit grey (``I;16*``, and ``I`` with values above 255) is scaled by 255/65535, not clipped;
* ``F`` (float) in [0, 1] is scaled by 255, in [0, 255] kept, anything else min-max normalised;
* anything with transparency (``RGBA``, ``LA``, ``PA``, palette or grey with a ``tRNS`` entry)
  is composited over white;
* ``CMYK`` uses the embedded ICC profile when there is one, PIL's conversion otherwise;
* ``1``, ``L``, ``P``, ``YCbCr`` and friends go through ``Image.convert("RGB")``.

Given ``at_least`` (a :class:`DecodeSize`: what the consumer will use of the image), a JPEG larger
than that is decoded at 1/2, 1/4 or 1/8 scale by the decoder itself (DCT scaling: ~4× less decode
time for a 12-megapixel photo, and every resize after it ~10× cheaper), never below what is
needed; its full size is kept in ``image.info[FULL_SIZE]``. Other formats decode fully.

An RGB JPEG file that needed no change and fits a preview (longest side at most
:data:`~vlmxplain.core.defaults.PREVIEW_SIZE`) keeps its own bytes in ``image.info[SOURCE_JPEG]``:
a run stores them as the sample's preview when they decode to exactly its pixels (no encoding,
several times smaller than a lossless copy; see :func:`vlmxplain.masks.images.preview_bytes`).
"""
from __future__ import annotations

import io
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.defaults import PREVIEW_SIZE

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "FULL_SIZE",
    "DecodeSize",
    "ImageSource",
    "InputSkipped",
    "SOURCE_JPEG",
    "Skipped",
    "load_image",
    "load_mask",
]

DEFAULT_MAX_PIXELS = 40_000_000
#: ``Image.info`` key of a decoded JPEG's own file bytes (see the module docstring)
SOURCE_JPEG = "vlmxplain.source_jpeg"
DEFAULT_MIN_SIDE = 8
#: ``Image.info`` key of a reduced decode's full (width, height), EXIF orientation applied
FULL_SIZE = "vlmxplain.full_size"
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]


class InputSkipped(ValueError):
    """An input that cannot be used; ``reason`` says why, ``id``/``path`` say which input."""

    def __init__(self, reason: str, id: str | None = None, path: str | None = None) -> None:
        super().__init__(reason, id, path)
        self.reason = reason
        self.id = id or ""
        self.path = path

    def __str__(self) -> str:
        who = self.id or self.path
        return f"{who}: {self.reason}" if who else self.reason

    def with_context(self, id: str | None, path: str | None) -> "InputSkipped":
        """The same reason, attributed to dataset item ``id`` at ``path``."""
        return InputSkipped(self.reason, id=id or self.id, path=path or self.path)


@dataclass(frozen=True)
class DecodeSize:
    """What a consumer uses of an image: its longest side scaled to ``longest`` pixels (a smaller
    image whole) and at least ``at_least`` (width, height) pixels (e.g. a model's input size)."""

    longest: int
    at_least: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if isinstance(self.longest, bool) or not isinstance(self.longest, numbers.Integral) or self.longest < 1:
            raise ValueError(f"longest: a positive number of pixels, got {self.longest!r}")
        if len(self.at_least) != 2 or any(not isinstance(v, numbers.Integral) or v < 0 for v in self.at_least):
            raise ValueError(f"at_least: (width, height) in pixels, got {self.at_least!r}")

    def box(self, size: tuple[int, int]) -> tuple[int, int]:
        """The least (width, height) an image of ``size`` must keep (never more than ``size``)."""
        w, h = size
        scale = min(1.0, self.longest / max(w, h))
        return (min(w, max(math.ceil(w * scale), self.at_least[0])),
                min(h, max(math.ceil(h * scale), self.at_least[1])))


@dataclass(frozen=True)
class Skipped:
    """What ``Dataset.iter_samples`` yields instead of a Sample for an unusable input."""

    id: str
    path: str | None
    reason: str


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    at_least: DecodeSize | None = None,
) -> Image.Image:
    """Decode ``source`` into a new ``RGB`` image (EXIF orientation applied): fully, or for a JPEG
    file larger than ``at_least`` needs, at a reduced scale that still covers it.

    ``max_pixels`` (None: no own limit; PIL's ``Image.MAX_IMAGE_PIXELS`` bomb check still applies)
    and ``min_side`` are checked on the header before decoding. Raises :class:`InputSkipped`.
    """
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        if isinstance(source, np.ndarray):
            img = _array_to_image(source)
            _check_size(img.size, max_pixels, min_side)
            return _to_rgb(img)
        if isinstance(source, Image.Image):
            _check_size(source.size, max_pixels, min_side)
            img = source.copy()  # never mutate the caller's image
            img = _exif_transpose(img)
            return _to_rgb(img)
        return _decode(source, path, max_pixels, min_side, at_least)
    except InputSkipped as e:
        raise e.with_context(None, path) from None
    except MemoryError:
        raise InputSkipped("out of memory while decoding", path=path) from None


def _decode(source: Any, path: str | None, max_pixels: int | None, min_side: int,
            at_least: DecodeSize | None = None) -> Image.Image:
    if path is not None:
        if not os.path.exists(path):
            raise InputSkipped("file not found")
        if os.path.isdir(path):
            raise InputSkipped("is a directory, not an image file")
        if os.path.getsize(path) == 0:
            raise InputSkipped("empty file (0 bytes)")
        fp: Any = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputSkipped("empty data (0 bytes)")
        fp = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        fp = source
    else:
        raise TypeError(
            f"image source must be a path, bytes, a file object, a PIL image or a numpy array, "
            f"not {type(source).__name__}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise InputSkipped(f"image too large (decompression-bomb check): {e}") from None
        except UnidentifiedImageError:
            raise InputSkipped(_unidentified_reason(source, path)) from None
        except Exception as e:  # noqa: BLE001 - any decoder failure is a property of this input
            raise InputSkipped(f"cannot read image header: {type(e).__name__}: {e}") from None
        try:
            _check_size(img.size, max_pixels, min_side)
            full = img.size
            if at_least is not None and img.format in ("JPEG", "MPO"):  # MPO: cameras' JPEG + previews
                _reduce(img, at_least)
            try:
                img.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise InputSkipped(f"image too large (decompression-bomb check): {e}") from None
            except OSError as e:
                msg = str(e)
                kind = "truncated image" if "truncated" in msg.lower() else "corrupt image data"
                raise InputSkipped(f"{kind} ({img.format or 'unknown'}): {msg}") from None
            except Exception as e:  # noqa: BLE001
                raise InputSkipped(f"corrupt image data ({img.format or 'unknown'}): {type(e).__name__}: {e}") from None
            try:
                out = _to_rgb(_exif_transpose(img))
            except InputSkipped:
                raise
            except Exception as e:  # noqa: BLE001
                raise InputSkipped(f"cannot convert mode {img.mode} to RGB: {e}") from None
            out = img.copy() if out is img else out
            if img.size != full:  # a reduced decode: its full size, as displayed
                out.info[FULL_SIZE] = full if out.size == img.size else full[::-1]
            elif img.format == "JPEG" and img.mode == "RGB" and out.size == img.size and max(img.size) <= PREVIEW_SIZE:
                encoded = _source_bytes(source, path)  # checked against the pixels before it is stored
                if encoded is not None:
                    out.info[SOURCE_JPEG] = encoded
            return out
        finally:
            img.close()


def _reduce(img: Image.Image, at_least: DecodeSize) -> None:
    """Ask the JPEG decoder for the smallest scale (1/2, 1/4, 1/8) that still covers what
    ``at_least`` needs of the image as displayed (an EXIF rotation by 90° swaps the axes)."""
    try:
        turned = img.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - malformed EXIF: the orientation is not applied either
        turned = False
    shown = img.size[::-1] if turned else img.size
    need = at_least.box(shown)
    if need != shown:
        try:
            img.draft(None, need[::-1] if turned else need)
        except Exception:  # noqa: BLE001 - an optimisation only: a decoder that cannot scale decodes fully
            pass


def _source_bytes(source: Any, path: str | None) -> bytes | None:
    """The encoded bytes of a path or bytes source (``None`` for a stream, which is not read twice)."""
    if path is not None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None
    return bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else None


def _unidentified_reason(source: Any, path: str | None) -> str:
    head = b""
    try:
        if path is not None:
            with open(path, "rb") as f:
                head = f.read(512)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            head = bytes(source[:512])
    except OSError:
        pass
    if head and _looks_like_text(head):
        return "not an image: the content looks like text"
    return "not an image: unrecognised or corrupt image format"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def _check_size(size: tuple[int, int], max_pixels: int | None, min_side: int) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise InputSkipped(f"image too large: {w}x{h} = {w * h:,} pixels > max_pixels={max_pixels:,}")
    if min(w, h) < min_side:
        raise InputSkipped(f"image too small: {w}x{h} (min_side={min_side})")


def _exif_transpose(img: Image.Image) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - malformed EXIF: keep the stored orientation
        return img
    return img if out is None else out


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(np.repeat(_scale_to_uint8(img)[..., None], 3, axis=2), "RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "CMYK" and img.info.get("icc_profile"):
        converted = _icc_to_srgb(img)
        if converted is not None:
            return converted
    return img.convert("RGB")


def _icc_to_srgb(img: Image.Image) -> Image.Image | None:
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - a broken profile falls back to PIL's plain conversion
        return None


def _scale_to_uint8(img: Image.Image) -> np.ndarray:
    """Grey ``I;16*``/``I``/``F`` pixels -> uint8, scaling (not clipping) the value range."""
    a = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
        return _uint16_to_uint8(a.astype(np.uint16))
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if img.mode == "I":
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return _uint16_to_uint8(a.astype(np.uint16))
    elif lo >= 0 and hi <= 1:
        return np.round(a * 255).astype(np.uint8)
    elif lo >= 0 and hi <= 255:
        return np.round(a).astype(np.uint8)
    span = hi - lo
    return np.zeros(a.shape, np.uint8) if span == 0 else np.round((a - lo) * (255 / span)).astype(np.uint8)


def _uint16_to_uint8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _array_to_image(a: np.ndarray) -> Image.Image:
    """HxW, HxWxC or CxHxW (C in 1, 3, 4) arrays of bool, uint8, uint16, int or float -> PIL."""
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise InputSkipped(f"array of shape {a.shape} is not an image (need HxW, HxWx3 or HxWx4)")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = _uint16_to_uint8(a)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputSkipped(f"integer array values span [{a.min()}, {a.max()}], outside [0, 255]")
        a = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputSkipped("float array contains NaN or infinity")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise InputSkipped(f"float array values span [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
        a = np.round(a * 255 if hi <= 1 else a).astype(np.uint8)
    else:
        raise InputSkipped(f"array dtype {a.dtype} is not an image type")
    return Image.fromarray(np.ascontiguousarray(a))


def load_mask(source: ImageSource, size: tuple[int, int] | None = None) -> np.ndarray:
    """A bool HxW object mask from a mask image/array (True where brighter than half its maximum).

    Masks with transparency use their alpha channel. ``size`` (W, H) is the image size the mask
    must match; a mismatch raises :class:`InputSkipped`.
    """
    if isinstance(source, np.ndarray) and source.ndim == 2 and source.dtype == bool:
        m = source.copy()
    else:
        if isinstance(source, np.ndarray):
            img = _array_to_image(source)
        elif isinstance(source, Image.Image):
            img = source
        else:
            try:
                img = _open_mask(source)
            except InputSkipped as e:
                raise InputSkipped(f"mask {e.reason}", path=e.path) from None
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            a = np.asarray(img.convert("RGBA"))[..., 3].astype(np.float64)
        elif img.mode.startswith("I") or img.mode == "F":
            a = np.asarray(img).astype(np.float64)
        else:
            a = np.asarray(img.convert("L")).astype(np.float64)
        top = a.max() if a.size else 0.0
        m = a > top / 2 if top > 0 else np.zeros(a.shape, bool)
    if size is not None and (m.shape[1], m.shape[0]) != tuple(size):
        raise InputSkipped(f"mask size {m.shape[1]}x{m.shape[0]} does not match image size {size[0]}x{size[1]}")
    return m


def _open_mask(source: Any) -> Image.Image:
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        return _decode_raw(source, path)
    except InputSkipped as e:
        raise e.with_context(None, path) from None


def _decode_raw(source: Any, path: str | None) -> Image.Image:
    """Decode without any mode conversion (for masks)."""
    if path is not None and not os.path.isfile(path):
        raise InputSkipped("file not found")
    try:
        with Image.open(path if path is not None else io.BytesIO(bytes(source))) as img:
            img.load()
            return _exif_transpose(img).copy()
    except Exception as e:  # noqa: BLE001
        raise InputSkipped(f"cannot be read: {type(e).__name__}: {e}") from None
