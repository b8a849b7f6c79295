"""A small CNN for the synthetic shapes set, trained in seconds on a CPU.

Used by the shortcut-bias experiment and as the offline classifier of the shapes set. Global
*max* pooling matters: with average pooling small CNNs do not learn the shapes in a few
hundred steps (see the notes in the project's shared folder).

:func:`shapes_model` trains a ShapesNet once per training spec and caches it on disk
(``$VLMXPLAIN_MODELS``); :func:`training_spec` is the one rule for which split a model for a
shapes data spec (or a shortcut rate) is trained on.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..core.defaults import model_cache_dir
from ..core.specs import SHORTCUT_CLASSES
from ..datasets import shapes, to_tensors
from .classifiers import Classifier, load_classifier, make_preprocess

#: Training images per ShapesNet, and the offset between a test split's seed and its training seed.
TRAIN_SIZE = 1800
TRAIN_SEED_OFFSET = 1000
DEFAULT_EPOCHS = 4


class ShapesNet(nn.Module):
    """Five 3×3 conv layers (two poolings) and a global max pool (~85 k parameters at width 16)."""

    def __init__(self, num_classes: int = 3, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=False)]

        self.features = nn.Sequential(
            *block(3, width), nn.MaxPool2d(2),
            *block(width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 4 * width), *block(4 * width, 4 * width),
        )
        self.head_conv = nn.Sequential(*block(4 * width, 4 * width))  # CAM target: 16×16 at 64 px
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.head_conv(self.features(x))).flatten(1))


SHAPES_MEAN = (0.5, 0.5, 0.5)
SHAPES_STD = (0.25, 0.25, 0.25)


def shapes_classifier(model: nn.Module, class_names: list[str], size: int = 64, name: str = "shapesnet") -> Classifier:
    """Wrap a ShapesNet as a :class:`Classifier` (target layer: the last conv block)."""
    return load_classifier(
        model, class_names=class_names, preprocess=make_preprocess(size, SHAPES_MEAN, SHAPES_STD, "bilinear"),
        target_layer="head_conv", name=name,
    )


def train_shapes_classifier(
    dataset,
    *,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 5e-3,
    seed: int = 0,
    width: int = 16,
    progress: bool = True,
    save_to: str | Path | None = None,
) -> Classifier:
    """Train a :class:`ShapesNet` on a shapes dataset (or any dataset with single-label targets).

    Deterministic for a given seed. ``save_to`` writes the state dict (reload with
    :func:`load_shapes_classifier`).
    """
    if epochs < 1:
        raise ValueError(f"epochs: must be >= 1, got {epochs}")
    classes = list(dataset.classes or [])
    if not classes:
        raise ValueError("dataset: needs class names to train a classifier")
    x, y = to_tensors(dataset)
    size = int(x.shape[-1])
    x = (x - torch.tensor(SHAPES_MEAN)[:, None, None]) / torch.tensor(SHAPES_STD)[:, None, None]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ShapesNet(len(classes), width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(x) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    # A text bar on stderr, not a notebook widget: it streams through the CLI and an executed
    # notebook keeps it as text at 100% (a widget bar is saved frozen at 0%).
    bar = tqdm(total=steps, desc=f"train shapesnet ({len(x)} images, {epochs} epochs)", disable=not progress,
               file=sys.stderr, mininterval=2.0, dynamic_ncols=False, ncols=100)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": model.state_dict(), "classes": classes, "size": size, "width": width}, save_to)
    return shapes_classifier(model, classes, size)


def load_shapes_classifier(path: str | Path) -> Classifier:
    """Reload a classifier saved by :func:`train_shapes_classifier` (``save_to=``)."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not (isinstance(blob, dict) and {"state_dict", "classes", "size", "width"} <= set(blob)):
        raise ValueError(f"classifier: {str(path)!r} is not a ShapesNet checkpoint (written by "
                         "train_shapes_classifier); for another model's state dict name the architecture: "
                         f"'<timm name>,checkpoint={path}' or 'torchvision:<name>,checkpoint={path}' "
                         "(add num_classes=N for a new head)")
    model = ShapesNet(len(blob["classes"]), blob["width"])
    model.load_state_dict(blob["state_dict"], strict=True)
    return shapes_classifier(model, list(blob["classes"]), blob["size"])


def accuracy(classifier: Classifier, dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``classifier`` on a dataset whose targets index its class names."""
    x, y = to_tensors(dataset)
    x = (x - torch.tensor(SHAPES_MEAN)[:, None, None]) / torch.tensor(SHAPES_STD)[:, None, None]
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            correct += int((classifier.model(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum())
    return correct / len(x)


def training_spec(data_options: dict[str, Any] | None = None, *, rate: float = 0.0, shortcut_class: str = "circle",
                  shortcut_on: str = "class", classes: Sequence[str] = SHORTCUT_CLASSES,
                  n_train: int = TRAIN_SIZE) -> dict[str, Any]:
    """The shapes parameters of the training split for a model that serves ``data_options``
    (the options of a shapes data spec): same image size, classes and background noise, seed
    ``1000 + data seed`` (never a test seed). ``rate > 0`` plants the red dot on that share of
    the eligible training images (``shortcut_on``: "class", "others" or "all").

    Rate 0 gives exactly the spec of the offline shapes classifier, so both share one cached model.
    """
    options = dict(data_options or {})
    spec: dict[str, Any] = {"n": int(n_train), "seed": TRAIN_SEED_OFFSET + int(options.get("seed", 0))}
    for key in ("size", "noise"):
        if key in options:
            spec[key] = options[key]
    chosen = list(options.get("classes", classes))
    if tuple(chosen) != SHORTCUT_CLASSES:
        spec["classes"] = chosen
    if rate > 0:
        spec.update(shortcut_on=shortcut_on, shortcut_rate=float(rate))
        if shortcut_on in ("class", "others"):
            spec["shortcut_class"] = shortcut_class
    return spec


def shapes_model(train_spec: dict[str, Any] | None = None, *, epochs: int = DEFAULT_EPOCHS,
                 progress: bool = True) -> Classifier:
    """A ShapesNet trained on the shapes split ``train_spec`` (default: :func:`training_spec`),
    cached on disk by its training parameters so it is trained once."""
    spec = {"n": TRAIN_SIZE, **(train_spec if train_spec is not None else training_spec())}
    key = hashlib.sha256(json.dumps({**spec, "epochs": epochs}, sort_keys=True).encode()).hexdigest()[:12]
    path = model_cache_dir() / f"shapesnet-{key}.pt"
    if path.is_file():
        return load_shapes_classifier(path)
    # Always said (training takes minutes on a CPU, once): also where the bar is turned off.
    print(f"vlmxplain: training a ShapesNet on {spec['n']} shapes images ({epochs} epochs), once; "
          f"cached at {path}", file=sys.stderr, flush=True)
    return train_shapes_classifier(shapes(**spec), epochs=epochs, progress=progress, save_to=path)


def shortcut_model(rate: float, shortcut_class: str = "circle", *, classes: Sequence[str] = SHORTCUT_CLASSES,
                   n_train: int = TRAIN_SIZE, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
                   progress: bool = False) -> Classifier:
    """A ShapesNet trained with the dot on ``rate`` of the ``shortcut_class`` training images
    (trained once, then loaded from the model cache)."""
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate: must be in [0, 1], got {rate!r}")
    spec = training_spec({"seed": seed, "classes": list(classes)}, rate=rate, shortcut_class=shortcut_class,
                         n_train=n_train)
    return shapes_model(spec, epochs=epochs, progress=progress)
