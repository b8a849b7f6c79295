"""Sample, SampleRef and the lazy Dataset sequence every source returns."""
from __future__ import annotations

import collections.abc
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, overload

import numpy as np
from PIL import Image

from ..core.checks import check_int
from ..core.selection import in_order
from .loading import (DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, FULL_SIZE, DecodeSize, InputSkipped, Skipped,
                      load_image, load_mask)

__all__ = ["Dataset", "Entry", "FewClassesWarning", "ListDataset", "Sample", "SampleRef"]


class FewClassesWarning(UserWarning):
    """``limit=n`` kept the first n samples of a dataset listed class by class: a few of its classes."""


@dataclass
class Sample:
    """One loaded input: an RGB image with its true label, accepted class indices and optional mask."""

    id: str
    image: Image.Image
    label: str = ""
    targets: tuple[int, ...] = ()
    mask: np.ndarray | None = None
    path: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleRef:
    """A sample's metadata without its pixels (cheap: no image decode)."""

    id: str
    path: str | None
    label: str
    targets: tuple[int, ...]
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class Dataset(collections.abc.Sequence):
    """A lazily loaded, indexable collection of samples.

    ``data[i]`` decodes one image and raises :class:`InputSkipped` if it is unusable; ``data[a:b]``
    and :meth:`subset` give lazy views; :meth:`iter_samples` yields ``Sample`` or ``Skipped`` and
    never raises for a bad input. Subclasses implement ``__len__``, ``_ref`` and ``_load``.
    """

    def __init__(self, name: str, classes: Sequence[str] | None) -> None:
        self.name = name
        self.classes: list[str] | None = None if classes is None else list(classes)

    # -- subclass hooks -------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def _ref(self, i: int) -> SampleRef:
        raise NotImplementedError

    def _load(self, i: int) -> Sample:
        raise NotImplementedError

    def _load_at_least(self, i: int, at_least: DecodeSize) -> Sample:
        """Hook for sources that can decode at a reduced scale (files); others decode fully (as
        ``data[i]`` does, so a subclass that overrides ``__getitem__`` keeps working)."""
        return self[i]

    def _id(self, i: int) -> str:
        return self._ref(i).id

    #: Entries of the source that are not samples (e.g. a FIFO in a folder), each with its reason.
    skipped_entries: list[Skipped] = []

    # -- public API -----------------------------------------------------------------------
    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> "Dataset": ...

    def __getitem__(self, i: int | slice) -> "Sample | Dataset":
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        return self._load(self._index(i))

    def _index(self, i: Any) -> int:
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"dataset index must be an int or a slice, not {type(i).__name__}") from None
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for dataset {self.name!r} of {n} samples")
        return i + n if i < 0 else i

    def load(self, i: int, *, at_least: DecodeSize | None = None) -> Sample:
        """Sample ``i`` (as ``data[i]``); with ``at_least``, a JPEG file larger than that needs may
        be decoded at 1/2, 1/4 or 1/8 scale, never below it (what ``explain`` does: much faster
        for large photos). Its mask, if any, is scaled with it."""
        return self[i] if at_least is None else self._load_at_least(self._index(i), at_least)

    @property
    def ids(self) -> list[str]:
        """Every sample's id, in order (no image loading)."""
        return [self._id(i) for i in range(len(self))]

    def ref(self, i: int) -> SampleRef:
        """Metadata of sample ``i`` (id, path, label, targets, meta) without decoding the image."""
        return self._ref(self._index(i))

    def iter_samples(self) -> Iterator[Sample | Skipped]:
        """Yield each ``Sample`` in order, or a ``Skipped`` record for an unusable input."""
        for i in range(len(self)):
            try:
                yield self[i]
            except InputSkipped as e:
                yield Skipped(id=e.id or self._id(i), path=e.path, reason=e.reason)

    def subset(self, indices: Iterable[int]) -> "Dataset":
        """A lazy view of the samples at ``indices`` (in that order; negative indices allowed)."""
        return _Subset(self, [self._index(i) for i in indices])

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` samples (all of them when ``n`` is None or larger than the dataset); for
        ``n`` at random, :meth:`sample`. Warns (:class:`FewClassesWarning`) when they hold far fewer
        classes than ``n`` random samples would (a dataset listed class by class)."""
        if n is None:
            return self
        kept = self.subset(range(min(check_int("limit", n, 0), len(self))))
        if len(kept) < len(self):
            every = {self.ref(i).label for i in range(len(self))} - {""}
            have = {kept.ref(i).label for i in range(len(kept))} - {""}
            if len(have) < min(len(every), len(kept)) / 2:  # n random samples would hold far more
                warnings.warn(f"limit={len(kept)} keeps the first {len(kept)} samples of {self.name!r}, which hold "
                              f"{len(have)} of its {len(every)} classes (it is listed class by class): "
                              f".sample({len(kept)}) draws {len(kept)} at random", FewClassesWarning, stacklevel=2)
        return kept

    def sample(self, n: int) -> "Dataset":
        """``n`` samples drawn at random without replacement (all of them when ``n`` is larger), in
        the dataset's order: the first ``n`` of the shuffled judging order (a hash of each id, the
        same on every machine), so a sorted folder's pilot covers its classes as ``limit`` does not."""
        n = check_int("n", n, 0)
        return self.subset(sorted(in_order(range(len(self)), "shuffled", sample_id=self._id)[:n]))

    def class_name(self, index: int) -> str:
        """The name of class ``index`` in :attr:`classes`."""
        if self.classes is None:
            raise ValueError(f"dataset {self.name!r} has no class list")
        return self.classes[index]

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        k = "no class list" if self.classes is None else f"{len(self.classes)} classes"
        return f"<{type(self).__name__} {self.name!r}: {len(self)} samples, {k}>"


class _Subset(Dataset):
    """A lazy view of a parent dataset at given indices."""

    def __init__(self, parent: Dataset, indices: list[int]) -> None:
        super().__init__(parent.name, parent.classes)
        self.parent = parent
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def _ref(self, i: int) -> SampleRef:
        return self.parent._ref(self.indices[i])

    def _id(self, i: int) -> str:
        return self.parent._id(self.indices[i])

    def _load(self, i: int) -> Sample:
        return self.parent._load(self.indices[i])

    def _load_at_least(self, i: int, at_least: DecodeSize) -> Sample:
        return self.parent._load_at_least(self.indices[i], at_least)

    def subset(self, indices: Iterable[int]) -> Dataset:
        return _Subset(self.parent, [self.indices[self._index(i)] for i in indices])

    def __getattr__(self, name: str) -> Any:
        # dataset-specific attributes (e.g. ShapesDataset.config) stay reachable through views
        if name == "parent":
            raise AttributeError(name)
        return getattr(self.parent, name)


@dataclass
class Entry:
    """One item of a :class:`ListDataset`: where its image comes from and what it is.

    ``source`` is a path, bytes, PIL image, numpy array, or a zero-argument callable returning
    one of those (called at load time). ``mask`` is the same kind of thing, or None.
    """

    id: str
    source: Any
    label: str = ""
    targets: tuple[int, ...] = ()
    mask: Any = None
    path: str | None = None
    meta: dict = field(default_factory=dict)


class ListDataset(Dataset):
    """A dataset over a list of :class:`Entry` records; images are decoded on access."""

    def __init__(
        self,
        name: str,
        classes: Sequence[str] | None,
        entries: Sequence[Entry],
        *,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        min_side: int = DEFAULT_MIN_SIDE,
        skipped: Sequence[Skipped] = (),
    ) -> None:
        super().__init__(name, classes)
        self.skipped_entries = list(skipped)
        seen: dict[str, int] = {}
        for k, e in enumerate(entries):
            if e.id in seen:
                raise ValueError(f"duplicate sample id {e.id!r} (items {seen[e.id]} and {k})")
            seen[e.id] = k
        self.entries = list(entries)
        self.max_pixels = max_pixels
        self.min_side = min_side

    def __len__(self) -> int:
        return len(self.entries)

    def _id(self, i: int) -> str:
        return self.entries[i].id

    def _ref(self, i: int) -> SampleRef:
        e = self.entries[i]
        return SampleRef(id=e.id, path=e.path, label=e.label, targets=e.targets, meta=dict(e.meta))

    def _load(self, i: int) -> Sample:
        return self._load_at_least(i, None)

    def _load_at_least(self, i: int, at_least: DecodeSize | None) -> Sample:
        e = self.entries[i]
        try:
            source = e.source() if callable(e.source) else e.source
            image = load_image(source, max_pixels=self.max_pixels, min_side=self.min_side, at_least=at_least)
            mask = None
            if e.mask is not None:
                mask_source: Callable[[], Any] | Any = e.mask
                full = image.info.get(FULL_SIZE, image.size)  # a mask matches the image's full size
                mask = load_mask(mask_source() if callable(mask_source) else mask_source, size=full)
                if full != image.size:  # ... and is scaled with a reduced decode
                    mask = np.asarray(Image.fromarray(mask).resize(image.size, Image.Resampling.NEAREST))
        except InputSkipped as err:
            raise err.with_context(e.id, e.path) from None
        return Sample(
            id=e.id, image=image, label=e.label, targets=e.targets, mask=mask, path=e.path, meta=dict(e.meta)
        )
