"""Datasets: class folders, CSV lists, in-memory lists, the offline photo gallery and the shapes set.

Every source returns a lazy :class:`Dataset` of :class:`Sample` records (RGB image, true label,
accepted class indices, optional object mask). Images are decoded one at a time by
:func:`load_image`, which turns every unusable input into :class:`InputSkipped` with a reason.
"""
from .core import Dataset, Entry, FewClassesWarning, ListDataset, Sample, SampleRef
from .gallery import GALLERY, GalleryPhoto, gallery
from .open import open_dataset
from .loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, DecodeSize, InputSkipped, Skipped, load_image, load_mask
from .shapes import SHAPE_NAMES, ShapesConfig, ShapesDataset, shapes, to_tensors
from .sources import IMAGE_EXTENSIONS, folder, from_csv, from_list, resolve_classes, resolve_label

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "GALLERY",
    "IMAGE_EXTENSIONS",
    "SHAPE_NAMES",
    "Dataset",
    "DecodeSize",
    "Entry",
    "FewClassesWarning",
    "GalleryPhoto",
    "InputSkipped",
    "ListDataset",
    "Sample",
    "SampleRef",
    "ShapesConfig",
    "ShapesDataset",
    "Skipped",
    "folder",
    "from_csv",
    "from_list",
    "gallery",
    "load_image",
    "load_mask",
    "open_dataset",
    "resolve_classes",
    "resolve_label",
    "shapes",
    "to_tensors",
]
