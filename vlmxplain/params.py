"""Notebook/CLI parameters: validated at once, with messages that name the parameter.

Papermill notebooks call :func:`validate_params` in their first cell, so a bad alpha/beta, an
unknown CAM method or judge, or a missing data path fails before any work. :func:`load_data`
and :func:`resolve_classifier` turn the string parameters into objects.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .analysis.quadrants import validate_threshold
from .cams import get_cam_method
from .judges.registry import parse_judge_spec
from .masks import validate_mask_params

INPUT_KINDS = ("masked", "overlay", "both")


@dataclass(frozen=True)
class PipelineParams:
    data: str
    classifier: str
    cam: str
    alpha: float
    beta: float
    judge: str
    input_kind: str
    threshold: float
    limit: int | None
    run_dir: str
    figures_dir: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_shapes_spec(spec: str) -> dict[str, Any]:
    """``shapes`` or ``shapes:n=300,seed=1,shortcut_class=circle,shortcut_rate=0.5``."""
    options: dict[str, Any] = {}
    _, _, rest = spec.partition(":")
    for part in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in part:
            raise ValueError(f"data: {spec!r}: option {part!r} is not key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def validate_data_source(data: str) -> str:
    """``gallery``, ``shapes[:key=value,...]``, a folder of class sub-folders, or a CSV file."""
    if not isinstance(data, str) or not data.strip():
        raise ValueError(f"data: give 'gallery', 'shapes', a folder or a CSV file, got {data!r}")
    data = data.strip()
    if data == "gallery":
        return data
    if data == "shapes" or data.startswith("shapes:"):
        from .datasets import shapes

        options = _parse_shapes_spec(data)
        try:
            shapes(**options)
        except TypeError as err:
            raise ValueError(f"data: {data!r}: {err}") from None
        return data
    path = Path(data).expanduser()
    if not path.exists():
        raise ValueError(f"data: no such file or folder: {data!r} (or use 'gallery' / 'shapes')")
    if path.is_file() and path.suffix.lower() != ".csv":
        raise ValueError(f"data: {data!r} is a file but not a .csv list")
    return data


def load_data(data: str, limit: int | None = None):
    """Build the dataset a (validated) data parameter names."""
    from . import datasets

    source = validate_data_source(data)
    if source == "gallery":
        ds = datasets.gallery()
    elif source.startswith("shapes"):
        ds = datasets.shapes(**_parse_shapes_spec(source))
    elif Path(source).is_dir():
        ds = datasets.folder(source)
    else:
        ds = datasets.from_csv(source)
    return ds.limit(limit) if limit else ds


def validate_params(
    *, data: str = "gallery", classifier: str = "auto", cam: str = "gradcam", alpha: float = 25.0,
    beta: float = 0.6, judge: str = "offline:faithfulness", input_kind: str = "masked", threshold: float = 2.5,
    limit: int | None = None, run_dir: str = "runs/pipeline", figures_dir: str = "figures",
) -> PipelineParams:
    """Check every pipeline parameter; raise ``ValueError`` naming the first bad one."""
    data = validate_data_source(data)
    if not isinstance(classifier, str) or not classifier.strip():
        raise ValueError(f"classifier: give 'auto', 'efficientnet_lite0', a timm name or a checkpoint path, got {classifier!r}")
    cam = get_cam_method(cam).name
    alpha, beta = validate_mask_params(alpha, beta)
    parse_judge_spec(judge)
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind: must be one of {INPUT_KINDS}, got {input_kind!r}")
    threshold = validate_threshold(threshold)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: must be a positive integer or None, got {limit!r}")
    for name, value in (("run_dir", run_dir), ("figures_dir", figures_dir)):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValueError(f"{name}: give a directory path, got {value!r}")
    return PipelineParams(data, classifier.strip(), cam, alpha, beta, judge, input_kind, threshold, limit,
                          str(run_dir), str(figures_dir))


def _model_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("VLMXPLAIN_MODELS", Path(base) / "vlmxplain" / "models"))


def shapes_model(train_spec: dict[str, Any] | None = None, *, epochs: int = 4, progress: bool = True):
    """A ShapesNet trained on a shapes training split (seed 1000 + the data seed), cached on disk
    by its training parameters so it is trained once."""
    from .datasets import shapes
    from .training import load_shapes_classifier, train_shapes_classifier

    spec = {"n": 1800, **(train_spec or {})}
    key = hashlib.sha256(json.dumps({**spec, "epochs": epochs}, sort_keys=True).encode()).hexdigest()[:12]
    path = _model_cache_dir() / f"shapesnet-{key}.pt"
    if path.is_file():
        return load_shapes_classifier(path)
    return train_shapes_classifier(shapes(**spec), epochs=epochs, progress=progress, save_to=path)


def resolve_classifier(classifier: str, data: str):
    """``auto``: EfficientNet-Lite0 for photos, a ShapesNet (trained once, cached) for shapes;
    else a model name for :func:`~vlmxplain.classifiers.load_classifier` or a ShapesNet checkpoint."""
    from .classifiers import load_classifier
    from .training import load_shapes_classifier

    if classifier == "auto":
        if data.startswith("shapes"):
            options = _parse_shapes_spec(data)
            train = {k: v for k, v in options.items() if k in ("size", "classes", "noise")}
            train["seed"] = 1000 + int(options.get("seed", 0))
            return shapes_model(train)
        return load_classifier("efficientnet_lite0")
    if Path(classifier).suffix in (".pt", ".pth") and Path(classifier).is_file():
        return load_shapes_classifier(classifier)
    return load_classifier(classifier)
