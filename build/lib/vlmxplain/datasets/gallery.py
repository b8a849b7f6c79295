"""The offline gallery: real photographs shipped inside installed packages, with honest ImageNet labels.

Each photo's label is what the photo truly shows; ``targets`` is the set of ImageNet-1k classes
that count as a correct prediction. Only photos for which an honest ImageNet class exists are
included (left out: skimage's astronaut - ImageNet has no person/astronaut class; scikit-learn's
flower.jpg - a pompon dahlia, and ImageNet has no dahlia class; moon, coins, retina, etc.).

Photos (id: label -> accepted ImageNet classes; source, licence):

- ``chelsea``: tabby cat -> tabby, tiger cat, Egyptian cat;
  ``skimage.data.chelsea()``, Stefan van der Walt, CC0.
- ``coffee``: espresso -> espresso, cup;
  ``skimage.data.coffee()``, Rachel Michetti / Pikolo Espresso Bar, CC0.
- ``rocket``: rocket -> missile, projectile;
  ``skimage.data.rocket()``, SpaceX Falcon 9 launching DSCOVR, public domain.
- ``camera``: camera on a tripod -> tripod, reflex camera;
  ``skimage.data.camera()``, Lav Varshney, CC0.
- ``motorcycle``: motorcycle -> moped, motor scooter;
  ``skimage.data.stereo_motorcycle()`` left image, Middlebury 2014 stereo benchmark.
- ``clock``: wall clock -> wall clock, analog clock;
  ``skimage.data.clock()``, Stefan van der Walt, public domain.
- ``grace_hopper``: military uniform -> military uniform;
  matplotlib ``mpl-data/sample_data/grace_hopper.jpg``, US Navy photo, public domain.
- ``summer_palace``: palace -> palace;
  scikit-learn ``datasets/images/china.jpg``, danielbuechele on Flickr, CC BY 2.0.

Notes on the harder calls: ImageNet has no motorcycle class (its motorbikes are ``moped`` and
``motor scooter``) and no rocket class (its launch-pad rockets are ``missile``/``projectile``);
Chelsea is a short-haired tabby, so Persian and Siamese are *not* accepted; the espresso is in
a cup, not a mug; china.jpg shows the Tower of Buddhist Incense in Beijing's Summer Palace;
Grace Hopper wears a US Navy uniform, and the classifier's "academic gown" is a genuine mistake.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

import numpy as np

from .imagenet import imagenet_class_names, imagenet_indices
from .core import Entry, ListDataset
from .loading import InputSkipped

__all__ = ["GALLERY", "GalleryPhoto", "gallery"]


@dataclass(frozen=True)
class GalleryPhoto:
    """One gallery photo: where it lives, what it shows, which ImageNet classes are correct."""

    id: str
    label: str
    accepted: tuple[str, ...]  # ImageNet class names (any comma-separated synonym)
    source: str  # human-readable provenance and licence
    description: str


def _skimage(name: str, index: int | None = None) -> Callable[[], Any]:
    def load() -> np.ndarray:
        import skimage.data

        out = getattr(skimage.data, name)()
        return out[index] if index is not None else out

    return _guarded(load, f"skimage.data.{name}()")


def _file(package: str, filename: str) -> Callable[[], Any]:
    def load() -> str:
        return str(resources.files(package) / filename)

    call = _guarded(load, f"{package}/{filename}")
    call.locate = load  # type: ignore[attr-defined]
    return call


def _guarded(load: Callable[[], Any], what: str) -> Callable[[], Any]:
    def call() -> Any:
        try:
            return load()
        except Exception as e:  # noqa: BLE001 - a missing optional package skips the photo
            raise InputSkipped(f"gallery photo unavailable ({what}): {type(e).__name__}: {e}") from None

    return call


GALLERY: tuple[tuple[GalleryPhoto, Callable[[], Any]], ...] = (
    (GalleryPhoto("chelsea", "tabby cat", ("tabby", "tiger cat", "Egyptian cat"),
                  "scikit-image skimage.data.chelsea(); Stefan van der Walt, CC0",
                  "Chelsea, a short-haired tabby cat, close-up of the face"), _skimage("chelsea")),
    (GalleryPhoto("coffee", "espresso", ("espresso", "cup"),
                  "scikit-image skimage.data.coffee(); Rachel Michetti / Pikolo Espresso Bar, CC0",
                  "an espresso in a red cup on a saucer with a spoon, on a wooden table"), _skimage("coffee")),
    (GalleryPhoto("rocket", "rocket", ("missile", "projectile"),
                  "scikit-image skimage.data.rocket(); SpaceX, public domain",
                  "a Falcon 9 rocket carrying DSCOVR on launch pad SLC-40 at dusk"), _skimage("rocket")),
    (GalleryPhoto("camera", "camera on a tripod", ("tripod", "reflex camera"),
                  "scikit-image skimage.data.camera(); Lav Varshney, CC0",
                  "grey-scale photo of a cameraman looking through a camera on a tripod"), _skimage("camera")),
    (GalleryPhoto("motorcycle", "motorcycle", ("moped", "motor scooter"),
                  "scikit-image skimage.data.stereo_motorcycle() left image; Middlebury 2014 stereo benchmark",
                  "a red motorcycle on its stand in a garage"), _skimage("stereo_motorcycle", 0)),
    (GalleryPhoto("clock", "wall clock", ("wall clock", "analog clock"),
                  "scikit-image skimage.data.clock(); Stefan van der Walt, public domain",
                  "grey-scale, motion-blurred photo of a round wall clock"), _skimage("clock")),
    (GalleryPhoto("grace_hopper", "military uniform", ("military uniform",),
                  "matplotlib mpl-data/sample_data/grace_hopper.jpg; US Navy photo, public domain",
                  "portrait of Rear Admiral Grace Hopper in US Navy uniform before a US flag"),
     _file("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")),
    (GalleryPhoto("summer_palace", "palace", ("palace",),
                  "scikit-learn datasets/images/china.jpg; danielbuechele on Flickr, CC BY 2.0",
                  "the Tower of Buddhist Incense in the Summer Palace, Beijing, above Kunming Lake"),
     _file("sklearn.datasets.images", "china.jpg")),
)


def gallery() -> ListDataset:
    """The offline gallery of real photos (see the module docstring); classes: ImageNet-1k names."""
    classes = list(imagenet_class_names())
    entries = []
    for photo, load in GALLERY:
        try:
            path = load.locate() if hasattr(load, "locate") else None
        except Exception:  # noqa: BLE001 - reported as a skip reason when the photo is loaded
            path = None
        entries.append(Entry(
            id=photo.id,
            source=load,
            label=photo.label,
            targets=tuple(sorted(imagenet_indices(*photo.accepted))),
            path=path,
            meta={"source": photo.source, "description": photo.description, "accepted": photo.accepted},
        ))
    return ListDataset("gallery", classes, entries)
