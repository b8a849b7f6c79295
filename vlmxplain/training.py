"""A small CNN for the synthetic shapes set, trained in seconds on a CPU.

Used by the shortcut-bias experiment and as the offline classifier of the shapes set. Global
*max* pooling matters: with average pooling small CNNs do not learn the shapes in a few
hundred steps (see the notes in the project's shared folder).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .classifiers import Classifier, load_classifier, make_preprocess


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
    from .datasets import to_tensors

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
    bar = tqdm(total=steps, desc="train shapesnet", disable=not progress)
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
    model = ShapesNet(len(blob["classes"]), blob["width"])
    model.load_state_dict(blob["state_dict"], strict=True)
    return shapes_classifier(model, list(blob["classes"]), blob["size"])


def accuracy(classifier: Classifier, dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``classifier`` on a dataset whose targets index its class names."""
    from .datasets import to_tensors

    x, y = to_tensors(dataset)
    x = (x - torch.tensor(SHAPES_MEAN)[:, None, None]) / torch.tensor(SHAPES_STD)[:, None, None]
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            correct += int((classifier.model(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum())
    return correct / len(x)
