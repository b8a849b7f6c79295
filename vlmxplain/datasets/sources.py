"""User data sources: class folders, CSV lists and in-memory lists."""
from __future__ import annotations

import csv
import difflib
import os
import re
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .core import Entry, ListDataset
from .loading import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, Skipped

__all__ = ["IMAGE_EXTENSIONS", "folder", "from_csv", "from_list", "resolve_classes", "resolve_label"]

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
)
_WNID = re.compile(r"n\d{8}")


def resolve_classes(classes: Sequence[str] | str | None) -> list[str] | None:
    """A class list from a sequence of names, ``"imagenet"`` (the 1,000 ImageNet names) or None."""
    if classes is None:
        return None
    if isinstance(classes, str):
        if classes.lower() == "imagenet":
            from .imagenet import imagenet_class_names

            return list(imagenet_class_names())
        raise ValueError(f"classes must be a list of names or 'imagenet', got the string {classes!r}")
    names = [str(c) for c in classes]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ValueError(f"classes contains duplicate names: {dupes}")
    return names


def resolve_label(token: Any, classes: Sequence[str]) -> int:
    """Index of ``token`` in ``classes``.

    Accepts an exact name, an int index (or its string), a case-insensitive name, one of the
    comma-separated synonyms of a name (ImageNet style: ``"tabby cat"`` for ``"tabby, tabby cat"``),
    or an ImageNet WordNet id (``"n02123045"``) when ``classes`` are the ImageNet names.
    Raises ValueError (with close matches) or IndexError.
    """
    if isinstance(token, bool):
        raise ValueError(f"label {token!r} is a bool, not a class name or index")
    if isinstance(token, int) or (hasattr(token, "__index__") and not isinstance(token, str)):
        i = int(token)
        if not 0 <= i < len(classes):
            raise IndexError(f"label index {i} out of range for {len(classes)} classes")
        return i
    text = str(token).strip()
    lookup = _lookup(tuple(classes))
    if text in lookup.exact:
        return lookup.exact[text]
    if re.fullmatch(r"[+-]?\d+", text):
        return resolve_label(int(text), classes)
    hits = lookup.folded.get(text.casefold())
    if hits is not None and len(hits) == 1:
        return hits[0]
    if hits:
        named = ", ".join(f"{h} ({classes[h]!r})" for h in hits)
        raise ValueError(f"label {text!r} is ambiguous: it names classes {named}; give the index instead")
    if _WNID.fullmatch(text) and len(classes) == 1000:
        i = _imagenet_wnids().get(text)
        if i is not None and _is_imagenet(classes):
            return i
    close = difflib.get_close_matches(text, list(classes), n=3, cutoff=0.6)
    hint = f"; close matches: {close}" if close else ""
    raise ValueError(f"unknown label {text!r}: not one of the {len(classes)} class names{hint}")


class _Lookup:
    def __init__(self, classes: tuple[str, ...]) -> None:
        counts: dict[str, int] = {}
        for c in classes:
            counts[c] = counts.get(c, 0) + 1
        # names given twice (ImageNet's two "crane" classes) are only reachable by index
        self.exact = {c: i for i, c in enumerate(classes) if counts[c] == 1}
        folded: dict[str, list[int]] = {}
        for i, c in enumerate(classes):
            for key in {c.casefold(), *(p.strip().casefold() for p in c.split(",") if p.strip())}:
                folded.setdefault(key, []).append(i)
        self.folded = folded


@lru_cache(maxsize=8)
def _lookup(classes: tuple[str, ...]) -> _Lookup:
    return _Lookup(classes)


@lru_cache(maxsize=1)
def _imagenet_wnids() -> dict[str, int]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return {info.index_to_label_name(i): i for i in range(1000)}


def _is_imagenet(classes: Sequence[str]) -> bool:
    from .imagenet import imagenet_class_names

    return tuple(classes) == imagenet_class_names()


def _parse_labels(value: Any) -> list[Any]:
    """A label cell/value -> list of tokens (``"a|b"`` and lists give several; None/"" give none)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [t for v in value for t in _parse_labels(v)]
    if isinstance(value, str):
        return [t.strip() for t in value.split("|") if t.strip()]
    return [value]


def _resolve_all(tokens: list[Any], classes: Sequence[str], where: str) -> tuple[int, ...]:
    out: list[int] = []
    for t in tokens:
        try:
            i = resolve_label(t, classes)
        except (ValueError, IndexError) as e:
            raise ValueError(f"{where}: {e}") from None
        if i not in out:
            out.append(i)
    return tuple(out)


def _label_text(tokens: list[Any], classes: Sequence[str]) -> str:
    """Label names as written; indices and WordNet ids become class names."""
    parts: list[str] = []
    for t in tokens:
        as_written = isinstance(t, str) and (t in classes or not (re.fullmatch(r"[+-]?\d+", t) or _WNID.fullmatch(t)))
        parts.append(t if as_written else classes[resolve_label(t, classes)])
    return " | ".join(dict.fromkeys(parts))


def _infer_classes(token_lists: Iterable[list[Any]], param: str) -> list[str]:
    names: set[str] = set()
    for tokens in token_lists:
        for t in tokens:
            if not isinstance(t, str) or re.fullmatch(r"[+-]?\d+", t):
                raise ValueError(f"integer label {t!r} needs an explicit class list: pass {param}=[...] or 'imagenet'")
            names.add(t)
    return sorted(names)


# -- folder -------------------------------------------------------------------------------
def folder(
    root: str | os.PathLike[str],
    *,
    classes: Sequence[str] | str | None = None,
    extensions: Sequence[str] | None = IMAGE_EXTENSIONS,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ListDataset:
    """Images under ``root/<class>/...`` (like torchvision's ImageFolder).

    Each immediate sub-folder is a class (any depth below it); images directly in ``root`` are
    unlabelled. ``classes`` (names or ``"imagenet"``) fixes the class space; sub-folder names must
    then resolve to it (exact name, synonym, index or WordNet id); otherwise the classes are the
    sorted sub-folder names. ``extensions=None`` takes every file. Ids are the POSIX paths
    relative to ``root``. Every other entry (hidden, another file type, a name that is not
    UTF-8, a FIFO or device, a broken or looping symbolic link, a linked folder) is listed in
    :attr:`Dataset.skipped_entries` with its reason, and ``explain`` records it as skipped.
    """
    base = Path(root)
    if not base.is_dir():
        raise NotADirectoryError(f"folder root {str(base)!r} is not a directory")
    exts = None if extensions is None else tuple("." + e.lower().lstrip(".") for e in extensions)
    listing = _Listing(base, exts)
    loose: list[Path] = []
    class_dirs: dict[str, list[Path]] = {}
    for p in sorted(base.iterdir()):
        kind = listing.kind(p)
        if kind == "dir":
            files = listing.walk(p)
            if files:
                class_dirs[p.name] = files
        elif kind == "file":
            loose.append(p)
    if not loose and not class_dirs:
        raise ValueError(f"no image files under {str(base)!r} (extensions {exts})")

    names = resolve_classes(classes)
    if names is None:
        names = sorted(class_dirs)
    entries: list[Entry] = []
    for p in loose:
        entries.append(Entry(id=p.relative_to(base).as_posix(), source=str(p), path=str(p)))
    for dirname, files in class_dirs.items():
        (target,) = _resolve_all([dirname], names, f"class folder {dirname!r}")
        for p in files:
            entries.append(Entry(id=p.relative_to(base).as_posix(), source=str(p),
                                 label=_label_text([dirname], names), targets=(target,), path=str(p)))
    return ListDataset(name or base.name or "folder", names, entries, max_pixels=max_pixels, min_side=min_side,
                       skipped=listing.skipped)


def _printable(path: Path | str) -> str:
    """A path as text that always encodes (undecodable bytes of a file name as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class _Listing:
    """Walks a folder; every entry that is not an image to read becomes a :class:`Skipped` record
    (hidden entries included, not descended into), so nothing in the folder goes unaccounted."""

    def __init__(self, base: Path, exts: tuple[str, ...] | None) -> None:
        self.base, self.exts = base, exts
        self.skipped: list[Skipped] = []

    def _skip(self, p: Path, reason: str) -> None:
        rel = _printable(os.path.relpath(p, self.base)).replace(os.sep, "/")
        self.skipped.append(Skipped(id=rel, path=_printable(p), reason=reason))

    def kind(self, p: Path) -> str | None:
        """"dir", "file" (an image to read) or None (recorded as skipped)."""
        try:
            p.name.encode("utf-8")
        except UnicodeEncodeError:
            what = "folder" if p.is_dir() else "file"
            self._skip(p, f"{what} name is not valid UTF-8 (rename it to read it)")
            return None
        if p.name.startswith("."):
            self._skip(p, "hidden (names starting with '.' are not read)")
            return None
        try:
            mode = p.stat().st_mode  # follows symbolic links
        except OSError as err:
            loop = p.is_symlink()
            self._skip(p, "broken symbolic link or link loop" if loop else f"cannot read: {err.strerror or err}")
            return None
        if stat.S_ISDIR(mode):
            return "dir"
        if not stat.S_ISREG(mode):
            kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
            self._skip(p, f"not a regular file ({kind})")
            return None
        if self.exts is not None and p.suffix.lower() not in self.exts:
            self._skip(p, f"not a supported image file type ({p.suffix.lower() or 'no extension'}; "
                          f"supported: {' '.join(self.exts)})")
            return None
        return "file"

    def walk(self, d: Path) -> list[Path]:
        """Image files below ``d`` (any depth; symbolic links to folders are not followed)."""
        out: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(d, onerror=lambda e: self._skip(Path(e.filename), (
                f"cannot list folder: {e.strerror or e}"))):
            here = Path(dirpath)
            keep = []
            for n in sorted(dirnames):
                sub = here / n
                if self.kind(sub) != "dir":
                    continue
                if sub.is_symlink():
                    self._skip(sub, "symbolic link to a folder (not followed)")
                else:
                    keep.append(n)
            dirnames[:] = keep
            out.extend(p for p in (here / f for f in sorted(filenames)) if self.kind(p) == "file")
        return out


# -- CSV ----------------------------------------------------------------------------------
def from_csv(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | None = None,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ListDataset:
    """Images listed in a CSV file with a header ``path,label[,mask]`` (extra columns go to ``meta``).

    ``label``: a class name or integer index; several accepted labels separated by ``|``; empty
    for unknown. ``mask``: a binary mask image (optional per row). Relative paths are resolved
    against ``root`` (default: the CSV's folder). ``classes`` defaults to the sorted label names.
    Ids are the ``path`` cells as written. Raises ValueError naming the line for bad rows.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV file {str(csv_path)!r} not found")
    base = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise ValueError(f"CSV file {str(csv_path)!r} is empty (expected a header 'path,label[,mask]')")
        fields = {h: h.strip().lower() for h in reader.fieldnames if h is not None}
        if "path" not in fields.values():
            raise ValueError(f"CSV file {str(csv_path)!r} has no 'path' column (header: {reader.fieldnames})")
        rows = [(reader.line_num, {fields.get(k, k): (v or "").strip() for k, v in row.items() if k is not None})
                for row in reader]
    if not rows:
        raise ValueError(f"CSV file {str(csv_path)!r} lists no images")

    parsed = [(line, row, _parse_labels(row.get("label"))) for line, row in rows]
    names = resolve_classes(classes)
    if names is None:
        names = _infer_classes((tokens for _, _, tokens in parsed), "classes")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for line, row, tokens in parsed:
        rel = row.get("path", "")
        where = f"{csv_path.name} line {line}"
        if not rel:
            raise ValueError(f"{where}: empty 'path' cell")
        if rel in seen:
            raise ValueError(f"{where}: path {rel!r} already listed on line {seen[rel]} (use 'a|b' for several labels)")
        seen[rel] = line
        targets = _resolve_all(tokens, names, f"{where}, label {row.get('label')!r}")
        img_path = str(base / rel)
        mask = str(base / row["mask"]) if row.get("mask") else None
        meta = {k: v for k, v in row.items() if k not in ("path", "label", "mask")}
        entries.append(
            Entry(id=rel, source=img_path, label=_label_text(tokens, names), targets=targets,
                  mask=mask, path=img_path, meta=meta)
        )
    return ListDataset(name or csv_path.stem, names, entries, max_pixels=max_pixels, min_side=min_side)


# -- in-memory list -----------------------------------------------------------------------
def from_list(
    items: Iterable[Any],
    *,
    classes: Sequence[str] | str | None = None,
    name: str = "list",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> ListDataset:
    """A dataset from ``(image, label[, mask])`` tuples or dicts with keys
    ``image``/``path``, ``label``, ``mask``, ``id``, ``meta``.

    Images (and masks) may be PIL images, numpy arrays, bytes or paths. A label is a class name,
    an index, ``"a|b"`` or a list of accepted labels, or None/"" for unknown. Ids default to the
    path, else ``"<name>-<index>"``.
    """
    raw: list[dict[str, Any]] = []
    for k, item in enumerate(items):
        if isinstance(item, Mapping):
            unknown = set(item) - {"image", "path", "label", "mask", "id", "meta"}
            if unknown:
                raise ValueError(f"item {k}: unknown keys {sorted(unknown)}")
            if "image" not in item and "path" not in item:
                raise ValueError(f"item {k}: needs an 'image' or a 'path'")
            d = dict(item)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            d = {"image": item[0], "label": item[1], "mask": item[2] if len(item) == 3 else None}
        else:
            raise ValueError(f"item {k}: expected (image, label[, mask]) or a dict, got {type(item).__name__}")
        raw.append(d)
    token_lists = [_parse_labels(d.get("label")) for d in raw]
    names = resolve_classes(classes)
    if names is None:
        names = _infer_classes(token_lists, "classes")
    entries: list[Entry] = []
    for k, (d, tokens) in enumerate(zip(raw, token_lists)):
        source = d.get("image", d.get("path"))
        path = d.get("path")
        if path is None and isinstance(source, (str, os.PathLike)):
            path = source
        path = None if path is None else os.fspath(path)
        targets = _resolve_all(tokens, names, f"item {k}, label {d.get('label')!r}")
        item_id = str(d["id"]) if d.get("id") is not None else (path if path is not None else f"{name}-{k:05d}")
        entries.append(
            Entry(id=item_id, source=source, label=_label_text(tokens, names), targets=targets,
                  mask=d.get("mask"), path=path, meta=dict(d.get("meta") or {}))
        )
    return ListDataset(name, names, entries, max_pixels=max_pixels, min_side=min_side)
