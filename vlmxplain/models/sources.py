"""The models people have: timm and torchvision architectures and Hugging Face ``transformers``
image classifiers, all offline.

Nothing is downloaded: a library architecture starts with random weights (and says so with a
:class:`RandomWeightsWarning`) unless ``checkpoint=`` names a local state dict; a transformers
model is a folder written by ``save_pretrained`` (``hf:<folder>``), or a model type with random
weights (``hf:vit``). Each loader returns the module (logits out), its preprocessing, class names
when the model knows them, and, for token models, the CAM target layer with its reshape.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..core.catalog import closest_values, timm_model_names, torchvision_model_names
from .transforms import Preprocess, TokensToGrid, make_preprocess

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class RandomWeightsWarning(UserWarning):
    """A classifier was built with random weights: its predictions and CAMs mean nothing."""


def warn_random(label: str) -> None:
    warnings.warn(f"classifier: {label} has RANDOM weights (vlmxplain downloads nothing): its predictions, CAMs, "
                  "scores and quadrants mean nothing. Give checkpoint=<your state dict> (or a saved hf: folder).",
                  RandomWeightsWarning, stacklevel=4)  # at the caller of load_classifier


@dataclass
class Loaded:
    """What a loader built: the logits module and how to feed and read it."""

    model: nn.Module
    preprocess: Preprocess
    class_names: list[str] | None = None
    target_layer: str | None = None
    reshape_transform: Callable | None = None
    random_weights: bool = False


def load_state(model: nn.Module, checkpoint: str | Path) -> None:
    """Load a local state dict (``torch.save`` file, optionally under ``state_dict``/``model``, or a
    ``.safetensors`` file) strictly into ``model``; a mismatch names the differing keys."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint: {path} holds no state dict")
    missing, unexpected = model.state_dict().keys() - state.keys(), state.keys() - model.state_dict().keys()
    if missing or unexpected:
        raise ValueError(f"checkpoint: {path.name} does not fit the model: {len(missing)} missing keys "
                         f"(e.g. {sorted(missing)[:3]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:3]}); "
                         "is num_classes right?")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shapes differ
        raise ValueError(f"checkpoint: {path.name} does not fit the model: {str(err).splitlines()[-1].strip()}; "
                         "is num_classes right?") from None


def read_class_names(value: Sequence[str] | str | Path | None) -> list[str] | None:
    """Class names from a list, or a text file with one name per line (blank lines skipped)."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"class_names: no file at {path}")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        names = [str(v) for v in value]
    if not names:
        raise ValueError("class_names: no class names given")
    return names


def _unknown(library: str, name: str, known: frozenset[str]) -> ValueError:
    near = closest_values(name, sorted(known), n=3)
    return ValueError(f"classifier: {library} has no model {name!r}" + (f"; closest: {', '.join(near)}" if near else ""))


def timm_model(name: str, checkpoint: str | Path | None, num_classes: int | None) -> Loaded:
    import timm

    if name.split(".", 1)[0] not in timm_model_names():
        raise _unknown("timm", name, timm_model_names())
    model = timm.create_model(name, pretrained=False, **({"num_classes": num_classes} if num_classes else {}))
    if checkpoint is not None:
        load_state(model, checkpoint)
    cfg = timm.data.resolve_data_config({}, model=model)
    pre = make_preprocess(tuple(cfg["input_size"][1:]), cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"))
    return Loaded(model, pre, random_weights=checkpoint is None)


def torchvision_model(name: str, checkpoint: str | Path | None, num_classes: int | None) -> Loaded:
    import torchvision

    if name not in torchvision_model_names():
        raise _unknown("torchvision", name, torchvision_model_names())
    kwargs: dict[str, Any] = {"weights": None}
    if num_classes:
        kwargs["num_classes"] = num_classes
    if name in ("inception_v3", "googlenet"):
        kwargs["aux_logits"], kwargs["init_weights"] = False, True
    model = torchvision.models.get_model(name, **kwargs)
    if checkpoint is not None:
        load_state(model, checkpoint)
    size = 299 if name == "inception_v3" else 224
    return Loaded(model, make_preprocess(size, IMAGENET_MEAN, IMAGENET_STD, "bilinear"), random_weights=checkpoint is None)


class LogitsOf(nn.Module):
    """A ``transformers`` image classifier as a plain logits module: ``forward(x) = model(pixel_values=x).logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_classes = int(model.config.num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def _hf_class_names(config: Any) -> list[str] | None:
    labels = [config.id2label[i] for i in range(config.num_labels)] if getattr(config, "id2label", None) else []
    default = all(str(label) == f"LABEL_{i}" for i, label in enumerate(labels))
    return None if not labels or default else [str(label) for label in labels]


def _hf_preprocess(folder: Path | None, config: Any) -> Preprocess:
    size = getattr(config, "image_size", 224)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    proc = folder / "preprocessor_config.json" if folder is not None else None
    if proc is not None and proc.is_file():
        cfg = json.loads(proc.read_text(encoding="utf-8"))
        mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        given = cfg.get("size", size)
        size = (given.get("height", given.get("shortest_edge", 224)) if isinstance(given, dict) else given)
    size = size[0] if isinstance(size, (list, tuple)) else int(size)
    return make_preprocess(int(size), mean, std, "bicubic")


def hf_token_layer(model: nn.Module, input_size: tuple[int, int]) -> tuple[str, TokensToGrid] | None:
    """For a token model (ViT, DeiT, BEiT, Swin, ...): the last ``layernorm_before`` with N×T×C
    tokens and the reshape that folds them (minus 0–2 prefix tokens) into a square grid."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [m.register_forward_hook(lambda mod, a, out, n=n: shapes.__setitem__(n, tuple(out.shape)))
               for n, m in model.named_modules() if n.endswith("layernorm_before")]
    if not handles:
        return None
    try:
        param = next(model.parameters())
        with torch.inference_mode():
            model(torch.zeros(1, 3, *input_size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
    for name in reversed(list(shapes)):
        shape = shapes[name]
        if len(shape) == 3:
            for prefix in (0, 1, 2):
                side = math.isqrt(shape[1] - prefix)
                if side * side == shape[1] - prefix and side > 1:
                    return name, TokensToGrid((side, side), prefix)
    return None


def hf_model(name: str, checkpoint: str | Path | None, num_classes: int | None) -> Loaded:
    """``hf:<folder>`` (``save_pretrained`` output, loaded with ``local_files_only``) or
    ``hf:<model type>`` (random weights, e.g. ``vit``, ``convnext``, ``swin``)."""
    try:
        import transformers
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("classifier: hf: models need the transformers package (pip install 'vlmxplain[hf]')") from None
    folder = Path(name).expanduser()
    extra: dict[str, Any] = {"num_labels": num_classes} if num_classes else {}
    if folder.is_dir():
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True, **extra)
        module = transformers.AutoModelForImageClassification.from_pretrained(
            folder, config=config, local_files_only=True, ignore_mismatched_sizes=bool(num_classes))
        random = False
    else:
        config = transformers.AutoConfig.for_model(name, **extra)
        module = transformers.AutoModelForImageClassification.from_config(config)
        random = True
    model = LogitsOf(module.eval())
    if checkpoint is not None:
        load_state(module, checkpoint)
        random = False
    pre = _hf_preprocess(folder if folder.is_dir() else None, config)
    found = hf_token_layer(model, tuple(pre.size))  # type: ignore[attr-defined]
    layer, reshape = found if found is not None else (None, None)
    return Loaded(model, pre, _hf_class_names(config), layer, reshape, random_weights=random)


#: Spec kind → loader ``(name, checkpoint, num_classes) -> Loaded``.
LOADERS: dict[str, Callable[..., Loaded]] = {"timm": timm_model, "torchvision": torchvision_model, "hf": hf_model}
