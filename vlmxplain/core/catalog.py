"""Which names exist, known without importing a heavy library: CAM methods, offline judges, and the
architectures the installed timm and torchvision register.

The parameter models (and so the CLI) check a name here before any kernel, model or dataset is
built. Model names are read from the installed packages' own sources (each architecture is a
function decorated with ``@register_model``), so they follow the installed versions; the tests
compare these lists with ``timm.list_models()`` and ``torchvision.models.list_models()``.
"""
from __future__ import annotations

import difflib
import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal

#: The CAM methods of :mod:`vlmxplain.cams` (its registry is checked against this list).
CAM_METHOD_NAMES = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam", "ablationcam")
#: Methods added at run time with :func:`vlmxplain.cams.register_cam_method` (this process only).
REGISTERED_CAM_NAMES: list[str] = []
CAM_ALIASES = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++", "grad-cam": "gradcam",
               "score-cam": "scorecam"}
#: What a VLM judge is shown: the masked CAM image, the heat-map overlay, or both side by side.
InputKind = Literal["masked", "overlay", "both"]
INPUT_KINDS: tuple[str, ...] = ("masked", "overlay", "both")
#: The offline judges (``offline:<name>``) of :mod:`vlmxplain.judges.offline`.
OFFLINE_JUDGES = ("insertion-deletion", "groundtruth", "faithfulness")


def closest_values(value: object, known: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The ``n`` known names closest to ``value`` (difflib), best first; ``[]`` when none is close."""
    return difflib.get_close_matches(str(value), list(known), n=n, cutoff=cutoff)


def suggestion(value: object, known: Iterable[str], *, list_up_to: int = 10) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name; with no close one, the known names
    themselves when there are at most ``list_up_to`` of them, else ``""``."""
    known = list(known)
    match = closest_values(value, known)
    if match:
        return f" (did you mean {match[0]!r}?)"
    if len(known) <= list_up_to:
        return f"; known: {', '.join(known)}"
    return ""


def cam_name(value: object) -> str:
    """A CAM method's registry name (case-insensitive, with aliases); a clear error otherwise."""
    key = str(value).strip().lower()
    key = CAM_ALIASES.get(key, key)
    known = (*CAM_METHOD_NAMES, *REGISTERED_CAM_NAMES)
    if key not in known:
        raise ValueError(f"cam: unknown CAM method {value!r}{suggestion(key, known, list_up_to=0)}; "
                         f"known: {', '.join(known)}")
    return key


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates a top-level package without importing it
    return Path(spec.origin).parent if spec is not None and spec.origin else None


_TIMM_REGISTER = re.compile(r"@register_model(?:\(\))?[ \t]*\n(?:@.*\n)*def[ \t]+(\w+)[ \t]*\(")
_TV_REGISTER = re.compile(r"@register_model\((?:name=)?(?:[\"'](\w+)[\"'])?\)[ \t]*\n(?:@.*\n)*def[ \t]+(\w+)[ \t]*\(")


@lru_cache(maxsize=1)
def timm_model_names() -> frozenset[str]:
    """Every architecture the installed timm registers (empty when timm is not installed)."""
    root = _package_dir("timm")
    if root is None:
        return frozenset()
    names: set[str] = set()
    for path in (root / "models").glob("*.py"):
        names.update(_TIMM_REGISTER.findall(path.read_text(encoding="utf-8")))
    return frozenset(names)


@lru_cache(maxsize=1)
def torchvision_model_names() -> frozenset[str]:
    """The image classification architectures of the installed torchvision (``torchvision.models``
    itself, not its detection/segmentation/video/quantized sub-packages)."""
    root = _package_dir("torchvision")
    if root is None:
        return frozenset()
    names: set[str] = set()
    for path in (root / "models").glob("*.py"):
        for given, func in _TV_REGISTER.findall(path.read_text(encoding="utf-8")):
            names.add(given or func.lower())
    return frozenset(names)


@lru_cache(maxsize=1)
def hf_image_model_types() -> frozenset[str]:
    """The ``transformers`` model types with an image-classification head (``vit``, ``convnext``,
    ``swin``, ...), read from the installed package's auto mapping (empty when not installed)."""
    root = _package_dir("transformers")
    path = root / "models" / "auto" / "modeling_auto.py" if root is not None else None
    if path is None or not path.is_file():
        return frozenset()
    text = path.read_text(encoding="utf-8")
    start = text.find("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES = OrderedDict(")
    end = text.find("\n)\n", start)
    if start < 0 or end < 0:
        return frozenset()
    return frozenset(re.findall(r'^\s*\(?\s*"([a-z0-9][a-z0-9_-]*)",', text[start:end], flags=re.M))
