"""Classifiers: loading (the shipped EfficientNet-Lite0, timm, your own module), target layers,
and ShapesNet, the small CNN of the synthetic shapes set."""
from .classifiers import Classifier, find_target_layer, load_classifier, make_preprocess
from .resolve import resolve_classifier
from .shapesnet import ShapesNet, shapes_model, shortcut_model, train_shapes_classifier, training_spec

__all__ = ["Classifier", "ShapesNet", "find_target_layer", "load_classifier", "make_preprocess",
           "resolve_classifier", "shapes_model", "shortcut_model", "train_shapes_classifier", "training_spec"]
