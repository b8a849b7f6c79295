"""Turn a :class:`~vlmxplain.core.specs.ClassifierSpec` into a ready :class:`Classifier`."""
from __future__ import annotations

from pathlib import Path

from ..core.specs import ClassifierSpec, DataSpec
from .classifiers import Classifier, load_classifier
from .shapesnet import load_shapes_classifier, shapes_model, shortcut_model, training_spec


def resolve_classifier(spec: "ClassifierSpec | str", data: "DataSpec | str | None" = None, *,
                       progress: bool = True) -> Classifier:
    """The classifier a spec names.

    ``auto``: EfficientNet-Lite0 for photos, a ShapesNet trained once (and cached) on a separate
    split of the same shapes set for ``shapes`` data; ``shortcut:<rate>[:<class>]``: the bias
    experiment's ShapesNet with the dot on that share of the class; a timm name; a checkpoint
    written by :func:`~vlmxplain.models.shapesnet.train_shapes_classifier`.
    """
    spec = ClassifierSpec.parse(spec)
    data_spec = DataSpec.parse(data) if data is not None else None
    clf = _build(spec, data_spec, progress)
    clf.meta["spec"] = str(spec)  # recorded in the run record, so the run can rebuild it
    return clf


def _build(spec: ClassifierSpec, data_spec: DataSpec | None, progress: bool) -> Classifier:
    if spec.kind == "auto":
        if data_spec is not None and data_spec.kind == "shapes":
            return shapes_model(training_spec(data_spec.shapes_options), progress=progress)
        return load_classifier("efficientnet_lite0")
    if spec.kind == "efficientnet_lite0":
        return load_classifier("efficientnet_lite0")
    if spec.kind == "shortcut":
        return shortcut_model(spec.rate, spec.shortcut_class, progress=progress)
    if spec.kind == "checkpoint":
        path = Path(spec.path).expanduser()
        if not path.is_file():
            raise ValueError(f"classifier: no checkpoint file at {spec.path!r}")
        return load_shapes_classifier(path)
    return load_classifier(str(spec))  # timm, torchvision:NAME or hf:..., with their options

