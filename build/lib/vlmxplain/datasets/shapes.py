"""The synthetic shapes set: exact object masks, an optional planted shortcut, optional label noise.

Every image is generated on demand from ``(seed, index)``, so any ``n`` costs no memory and
``shapes(n=10)[3]`` equals ``shapes(n=5000)[3]``. Three independent random streams per index
(object, shortcut, label) mean that two datasets with the same seed and different shortcut or
label-noise settings show the *same* objects: a clean split and a dotted split are paired
image by image, which is what the shortcut ("red dot") bias experiment needs.

Shortcut knobs: ``shortcut_on`` says which images may carry the dot ("class": only images of
``shortcut_class``; "others": only images of the other classes; "all"; "none"), and
``shortcut_rate`` is the probability that an eligible image gets it. ``shortcut_position``
moves it ("top-left", "top-right", "bottom-left", "bottom-right", "corner" = "top-left",
"random-corner", "random" = anywhere off the object, or an explicit ``(x, y)``).
Boxes are ``(x0, y0, x1, y1)`` with exclusive ends: ``img[y0:y1, x0:x1]``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..core.checks import check_int
from .core import Dataset, Sample, SampleRef
from .loading import InputSkipped

__all__ = ["SHAPE_NAMES", "ShapesConfig", "ShapesDataset", "shapes", "to_tensors"]

SHAPE_NAMES = ("circle", "square", "triangle", "star", "cross")
_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
_POSITIONS = (*_CORNERS, "corner", "random-corner", "random")
_SHORTCUT_ON = ("none", "class", "others", "all")
_EDGE = 2  # gap between a corner dot and the image border


@dataclass(frozen=True)
class ShapesConfig:
    """Every parameter of a shapes dataset (recorded so a run can say exactly what it used)."""

    n: int = 600
    size: int = 64
    classes: tuple[str, ...] = ("circle", "square", "triangle")
    shortcut_class: str | None = None
    shortcut_on: str = "none"
    shortcut_rate: float = 1.0
    shortcut_position: str | tuple[int, int] = "top-left"
    shortcut_size: int = 5
    shortcut_color: tuple[int, int, int] = (255, 0, 0)
    label_noise: float = 0.0
    noise: float = 20.0
    seed: int = 0


def shapes(
    n: int = 600,
    *,
    size: int = 64,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    shortcut_class: str | None = None,
    shortcut_on: str | None = None,
    shortcut_rate: float = 1.0,
    shortcut_position: str | tuple[int, int] = "top-left",
    shortcut_size: int = 5,
    shortcut_color: tuple[int, int, int] = (255, 0, 0),
    label_noise: float = 0.0,
    noise: float = 20.0,
    seed: int = 0,
    name: str | None = None,
) -> "ShapesDataset":
    """Synthetic shapes on noisy backgrounds with exact masks (see the module docstring).

    ``shortcut_on`` defaults to "class" when ``shortcut_class`` is given, else "none".
    ``label_noise`` is the probability that an image's label is replaced by a different class
    (the true class stays in ``meta["true_label"]``). ``noise`` is the background noise sigma.
    """
    if shortcut_on is None:
        shortcut_on = "class" if shortcut_class is not None else "none"
    position = tuple(int(v) for v in shortcut_position) if not isinstance(shortcut_position, str) else shortcut_position
    cfg = ShapesConfig(
        n=n, size=size, classes=tuple(classes), shortcut_class=shortcut_class, shortcut_on=shortcut_on,
        shortcut_rate=float(shortcut_rate), shortcut_position=position, shortcut_size=shortcut_size,
        shortcut_color=tuple(int(c) for c in shortcut_color), label_noise=float(label_noise),
        noise=float(noise), seed=seed,
    )
    return ShapesDataset(cfg, name=name)


def _check(cfg: ShapesConfig) -> None:
    def bad(param: str, msg: str) -> None:
        raise ValueError(f"shapes: {param} {msg}")

    for param, value, minimum in (("n", cfg.n, 0), ("size", cfg.size, 16), ("seed", cfg.seed, 0)):
        try:
            check_int(param, value, minimum)
        except ValueError as err:
            raise ValueError(f"shapes: {err}") from None
    unknown = [c for c in cfg.classes if c not in SHAPE_NAMES]
    if unknown or len(cfg.classes) < 2 or len(set(cfg.classes)) != len(cfg.classes):
        bad("classes", f"must be 2+ distinct names from {SHAPE_NAMES}, got {cfg.classes!r}")
    if cfg.shortcut_on not in _SHORTCUT_ON:
        bad("shortcut_on", f"must be one of {_SHORTCUT_ON}, got {cfg.shortcut_on!r}")
    if cfg.shortcut_on in ("class", "others") and cfg.shortcut_class not in cfg.classes:
        bad("shortcut_class", f"must be one of {cfg.classes} when shortcut_on={cfg.shortcut_on!r}, "
            f"got {cfg.shortcut_class!r}")
    if cfg.shortcut_class is not None and cfg.shortcut_class not in cfg.classes:
        bad("shortcut_class", f"must be one of {cfg.classes}, got {cfg.shortcut_class!r}")
    for param, v in (("shortcut_rate", cfg.shortcut_rate), ("label_noise", cfg.label_noise)):
        if not 0.0 <= v <= 1.0:
            bad(param, f"must be in [0, 1], got {v!r}")
    if not 1 <= cfg.shortcut_size <= cfg.size // 4:
        bad("shortcut_size", f"must be in [1, size/4 = {cfg.size // 4}], got {cfg.shortcut_size!r}")
    pos = cfg.shortcut_position
    if isinstance(pos, str):
        if pos not in _POSITIONS:
            bad("shortcut_position", f"must be one of {_POSITIONS} or (x, y), got {pos!r}")
    elif len(pos) != 2 or not all(0 <= v <= cfg.size - cfg.shortcut_size for v in pos):
        bad("shortcut_position", f"(x, y) must lie in [0, {cfg.size - cfg.shortcut_size}], got {pos!r}")
    if len(cfg.shortcut_color) != 3 or not all(0 <= c <= 255 for c in cfg.shortcut_color):
        bad("shortcut_color", f"must be an (r, g, b) triple in [0, 255], got {cfg.shortcut_color!r}")
    if cfg.noise < 0:
        bad("noise", f"must be >= 0, got {cfg.noise!r}")
    if _radius_range(cfg)[0] < 3:
        bad("size", f"{cfg.size} leaves no room for objects with shortcut_size={cfg.shortcut_size}")


def _margin(cfg: ShapesConfig) -> int:
    """Objects keep this far from the border, so corner dots never touch them."""
    return _EDGE + cfg.shortcut_size + 2


def _radius_range(cfg: ShapesConfig) -> tuple[float, float]:
    room = (cfg.size - 2 * _margin(cfg)) / 2
    return min(0.18 * cfg.size, room), min(0.32 * cfg.size, room)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        radii, k = [r] * 4, 4
    elif shape == "triangle":
        radii, k = [r] * 3, 3
    elif shape == "star":
        radii, k = [r, 0.45 * r] * 5, 10
    else:  # cross: 12 vertices of a plus sign with arm half-width r/3
        w = r / 3
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
               (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    return [(cx + rad * math.cos(angle + 2 * math.pi * j / k), cy + rad * math.sin(angle + 2 * math.pi * j / k))
            for j, rad in enumerate(radii)]


def _pick_color(rng: np.random.Generator, away_from: Sequence[np.ndarray], min_dist: float) -> np.ndarray:
    """The first of 16 random colours at least ``min_dist`` from every colour in ``away_from``."""
    cands = rng.integers(0, 256, size=(16, 3)).astype(np.float64)
    dists = np.min([np.linalg.norm(cands - a, axis=1) for a in away_from], axis=0)
    ok = np.flatnonzero(dists >= min_dist)
    return cands[ok[0] if ok.size else int(np.argmax(dists))]


class ShapesDataset(Dataset):
    """Lazily generated shapes; ``config`` holds every parameter."""

    def __init__(self, config: ShapesConfig, *, name: str | None = None) -> None:
        _check(config)
        self.config = config
        super().__init__(name or self._auto_name(), config.classes)

    def _auto_name(self) -> str:
        c = self.config
        parts = ["shapes", f"s{c.seed}"]
        if c.shortcut_on != "none" and c.shortcut_rate > 0:
            pos = c.shortcut_position
            pos = pos if isinstance(pos, str) else "at-{}-{}".format(*pos)
            who = c.shortcut_on if c.shortcut_on == "all" else f"{c.shortcut_on}-{c.shortcut_class}"
            parts.append(f"dot-{who}-{c.shortcut_rate:g}-{pos}")
        if c.label_noise > 0:
            parts.append(f"noise{c.label_noise:g}")
        return "-".join(parts)

    def __len__(self) -> int:
        return self.config.n

    def _id(self, i: int) -> str:
        return f"shapes-{i:05d}"

    def _rng(self, i: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, i, stream])

    def _labels(self, i: int) -> tuple[int, int, bool]:
        """(true class, recorded class, flipped?) for index ``i``."""
        k = len(self.config.classes)
        true = i % k
        rng = self._rng(i, 2)
        flip = bool(rng.random() < self.config.label_noise)
        other = int(rng.integers(k - 1))
        shown = (other if other < true else other + 1) if flip else true
        return true, shown, flip

    def _ref(self, i: int) -> SampleRef:
        true, shown, flip = self._labels(i)
        meta = {"true_label": self.config.classes[true], "label_flipped": flip}
        return SampleRef(id=self._id(i), path=None, label=self.config.classes[shown], targets=(shown,), meta=meta)

    def _load(self, i: int) -> Sample:
        c = self.config
        true, shown, flip = self._labels(i)
        shape = c.classes[true]
        size, margin = c.size, _margin(c)
        dot_color = np.array(c.shortcut_color, np.float64)

        rng = self._rng(i, 0)  # object stream: same draws whatever the shortcut/label settings
        r_lo, r_hi = _radius_range(c)
        r = rng.uniform(r_lo, r_hi)
        cx, cy = rng.uniform(margin + r, size - margin - r, size=2)
        angle = rng.uniform(0, 2 * math.pi)
        bg = _pick_color(rng, [dot_color], 110.0)
        fg = _pick_color(rng, [bg], 130.0)
        field = rng.normal(0.0, c.noise, size=(size, size, 3)) if c.noise > 0 else np.zeros((size, size, 3))

        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            draw.polygon(_polygon(shape, cx, cy, r, angle), fill=255)
        mask = np.asarray(canvas) > 0
        pixels = np.where(mask[..., None], fg + 0.4 * field, bg + field)

        box = self._dot_box(i, true, mask)
        if box is not None:
            x0, y0, x1, y1 = box
            pixels[y0:y1, x0:x1] = dot_color
            mask[y0:y1, x0:x1] = False  # the mask stays the visible object
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            raise InputSkipped("the shortcut covers the whole object", id=self._id(i))
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
        meta = {
            "shape": shape, "true_label": shape, "label_flipped": flip, "shortcut": box is not None,
            "shortcut_box": box, "object_box": (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
            "foreground": tuple(int(v) for v in fg), "background": tuple(int(v) for v in bg),
            "seed": c.seed, "index": i,
        }
        return Sample(id=self._id(i), image=image, label=c.classes[shown], targets=(shown,), mask=mask, path=None,
                      meta=meta)

    def _dot_box(self, i: int, true: int, mask: np.ndarray) -> tuple[int, int, int, int] | None:
        c = self.config
        rng = self._rng(i, 1)  # shortcut stream: always the same number of draws
        coin = rng.random()
        corner = _CORNERS[int(rng.integers(4))]
        cands = rng.integers(0, c.size - c.shortcut_size + 1, size=(64, 2))
        is_class = c.shortcut_class is not None and c.classes[true] == c.shortcut_class
        eligible = {"none": False, "all": True, "class": is_class, "others": not is_class}[c.shortcut_on]
        if not eligible or coin >= c.shortcut_rate:
            return None
        s, size, pos = c.shortcut_size, c.size, c.shortcut_position
        if isinstance(pos, tuple):
            x, y = pos
        elif pos == "random":
            grown = np.zeros_like(mask)  # the object grown by one pixel: the dot never touches it
            ys, xs = np.nonzero(mask)
            grown[np.clip(ys.min() - 1, 0, None):ys.max() + 2, np.clip(xs.min() - 1, 0, None):xs.max() + 2] = True
            free = [(int(x), int(y)) for x, y in cands if not grown[y:y + s, x:x + s].any()]
            x, y = free[0] if free else (_EDGE, _EDGE)
        else:
            name = corner if pos == "random-corner" else ("top-left" if pos == "corner" else pos)
            x = _EDGE if name.endswith("left") else size - _EDGE - s
            y = _EDGE if name.startswith("top") else size - _EDGE - s
        return (int(x), int(y), int(x) + s, int(y) + s)

    def describe(self) -> dict[str, Any]:
        """The configuration as a plain dict (for run records)."""
        return asdict(self.config)


def to_tensors(data: Dataset) -> tuple[Any, Any]:
    """Stack a dataset of equal-size images into ``(X, y)`` torch tensors for quick training.

    ``X`` is float32 N×3×H×W in [0, 1]; ``y`` int64 holds each sample's first target (the recorded,
    possibly noisy, label). Raises ValueError naming the sample that is skipped, unlabelled or of
    another size.
    """
    import torch

    n = len(data)
    X: np.ndarray | None = None
    y = np.empty(n, np.int64)
    for k, item in enumerate(data.iter_samples()):
        if not isinstance(item, Sample):
            raise ValueError(f"to_tensors: sample {item.id!r} was skipped: {item.reason}")
        if not item.targets:
            raise ValueError(f"to_tensors: sample {item.id!r} has no label")
        a = np.asarray(item.image, dtype=np.uint8)
        if X is None:
            X = np.empty((n, 3, a.shape[0], a.shape[1]), np.float32)
        elif a.shape[:2] != X.shape[2:]:
            raise ValueError(f"to_tensors: sample {item.id!r} is {a.shape[1]}x{a.shape[0]}, "
                             f"the first was {X.shape[3]}x{X.shape[2]}; resize first")
        X[k] = a.transpose(2, 0, 1) / np.float32(255)
        y[k] = item.targets[0]
    if X is None:
        X = np.empty((0, 3, 0, 0), np.float32)
    return torch.from_numpy(X), torch.from_numpy(y)
