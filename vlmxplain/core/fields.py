"""Pydantic field types for the spec parameters every notebook and the CLI share.

They check everything that can be known without building anything (no torch, no model, no
network): the spec's grammar, the name against :mod:`.catalog`, a checkpoint's existence. So a
typo fails in a fraction of a second, before any kernel starts; building the component (in its
own layer) can still fail later for reasons only the build can find.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from .catalog import (
    OFFLINE_JUDGES, cam_name, closest_values, hf_image_model_types, suggestion, timm_model_names,
    torchvision_model_names,
)
from .specs import ClassifierSpec, JudgeSpec


def checked_classifier(value: Any) -> ClassifierSpec:
    """A classifier spec whose architecture is installed and whose checkpoint (if any) exists."""
    spec = ClassifierSpec.parse(value)
    if spec.path is not None and not Path(spec.path).expanduser().is_file():
        raise ValueError(f"classifier: no checkpoint file at {spec.path!r}")
    options = dict(spec.options)
    if "checkpoint" in options and not Path(str(options["checkpoint"])).expanduser().is_file():
        raise ValueError(f"classifier: no checkpoint file at {options['checkpoint']!r}")
    if isinstance(options.get("classes"), str) and not Path(options["classes"]).expanduser().is_file():
        raise ValueError(f"classifier: no class-names file at {options['classes']!r} (one name per line)")
    if spec.kind == "hf":
        _check_hf(str(spec.name))
    if spec.kind in ("timm", "torchvision"):
        known = timm_model_names() if spec.kind == "timm" else torchvision_model_names()
        base = str(spec.name).split(".", 1)[0]  # timm's ``name.pretrained_tag``
        if known and base not in known:
            library = "timm" if spec.kind == "timm" else "torchvision"
            raise ValueError(f"classifier: {library} has no model {spec.name!r}"
                             f"{suggestion(base, sorted(known), list_up_to=0)}"
                             "; or give auto, efficientnet_lite0, shortcut:RATE or a checkpoint path")
    return spec


def _check_hf(name: str) -> None:
    """``hf:<folder>`` must be a saved model folder; ``hf:<model type>`` a type with an image head."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ValueError(f"classifier: hf:{name}: the folder has no config.json (write it with save_pretrained)")
        return
    types = hf_image_model_types()
    if not types:
        raise ValueError("classifier: hf: models need the transformers package (pip install 'vlmxplain[hf]')")
    if name not in types:
        looks_like_path = "/" in name or "\\" in name or name.startswith(".")
        why = ("no such folder; vlmxplain downloads nothing: save a model with save_pretrained(DIR) and give "
               "hf:DIR" if looks_like_path else "not a transformers image-classification model type")
        raise ValueError(f"classifier: hf:{name}: {why}{suggestion(name, sorted(types), list_up_to=0)}")


def checked_judge(value: Any) -> JudgeSpec:
    """A judge spec: known provider, server URL without secrets, a known offline judge."""
    spec = JudgeSpec.parse(value)
    if spec.is_offline and spec.model.lower() not in OFFLINE_JUDGES:
        known = [f"offline:{name}" for name in OFFLINE_JUDGES]
        match = closest_values(spec.model.lower(), OFFLINE_JUDGES)
        hint = f" (did you mean 'offline:{match[0]}'?)" if match else ""
        raise ValueError(f"judge: unknown offline judge {spec.model!r}{hint}; known: {', '.join(known)}")
    return spec


#: A CAM method parameter, normalised to its registry name.
CamField = Annotated[str, BeforeValidator(cam_name)]
#: A classifier parameter (serialised as its spec string).
ClassifierField = Annotated[ClassifierSpec, BeforeValidator(checked_classifier), PlainSerializer(str, return_type=str)]
#: A judge parameter (serialised as its spec string).
JudgeField = Annotated[JudgeSpec, BeforeValidator(checked_judge), PlainSerializer(str, return_type=str)]
