"""CAM extraction over pytorch-grad-cam: batched, raw low-res maps.

Each method is pytorch-grad-cam's own class (its ``get_cam_image``/``get_cam_weights`` hook);
this module owns the forward/backward around it:

* the prediction and confidence come from the same forward pass that records activations;
* the forward pass runs under ``no_grad`` up to the target layer, whose output becomes a gradient
  leaf (:class:`LayerCapture`): autograd records the head only, and the gradient is taken from the
  logits to that leaf alone (same maps, several times faster; no parameter's ``requires_grad`` or
  ``.grad`` is touched); the hook is released afterwards, also on errors;
* grad-cam's objects are built once per model and method (:func:`_cam_object`);
* the map is kept *raw* (ReLU'd, at the target layer's resolution, e.g. 7×7); masks, overlays
  and thumbnails are derived from it on demand (:mod:`vlmxplain.masks`).
"""
from __future__ import annotations

import contextlib
import os
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from tqdm.auto import tqdm

from ..core.host_memory import keep_freed_memory_on
from ..models.classifiers import Classifier
from .methods import CamMethod, CostlyMethodWarning, get_cam_method


@dataclass
class CamResult:
    """Raw CAMs for a batch of images, with the prediction from the same forward pass.

    ``maps`` is N×h×w float32 at the target layer's resolution (non-negative, not normalised);
    ``targets`` the class each map explains (the predicted class unless given).
    """

    method: str
    maps: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    targets: np.ndarray
    top_classes: np.ndarray
    top_probs: np.ndarray
    image_sizes: list[tuple[int, int]]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "id": self.ids[i], "map": self.maps[i], "prediction": int(self.predictions[i]),
            "confidence": float(self.confidences[i]), "target": int(self.targets[i]),
            "top_classes": self.top_classes[i], "top_probs": self.top_probs[i], "image_size": self.image_sizes[i],
        }

    @classmethod
    def concat(cls, parts: Sequence["CamResult"]) -> "CamResult":
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(
            method=parts[0].method,
            maps=np.concatenate([p.maps for p in parts]),
            predictions=np.concatenate([p.predictions for p in parts]),
            confidences=np.concatenate([p.confidences for p in parts]),
            targets=np.concatenate([p.targets for p in parts]),
            top_classes=np.concatenate([p.top_classes for p in parts]),
            top_probs=np.concatenate([p.top_probs for p in parts]),
            image_sizes=[s for p in parts for s in p.image_sizes],
            ids=[i for p in parts for i in p.ids],
        )


class LayerCapture:
    """Forward hook on the target layer: keeps its (first) output of a forward pass.

    With ``gradient_leaf``, the output becomes a leaf that requires grad and gradient recording is
    switched on from there (the forward pass up to the layer runs under ``no_grad``): autograd
    builds a graph for the head only, and ``torch.autograd.grad`` from the logits to that leaf
    touches no parameter's ``.grad``. Same maps as a backward pass through the whole network."""

    def __init__(self, gradient_leaf: bool) -> None:
        self.gradient_leaf = gradient_leaf
        self.output: torch.Tensor | None = None

    def __call__(self, module, args, output):
        if self.output is not None or not isinstance(output, torch.Tensor):
            return None
        if self.gradient_leaf:
            torch.set_grad_enabled(True)  # undone when the caller's no_grad block exits
            output = output.detach().requires_grad_(True)
            self.output = output
            return output
        self.output = output
        return None


def _as_images(items: Sequence[Any]) -> tuple[list[Image.Image], list[str]]:
    images, ids = [], []
    for k, item in enumerate(items):
        if isinstance(item, Image.Image):
            images.append(item.convert("RGB"))
            ids.append(str(k))
        elif hasattr(item, "image"):
            images.append(item.image)
            ids.append(str(getattr(item, "id", k)))
        else:
            raise TypeError(f"images: item {k} is a {type(item).__name__}, expected a PIL image or a Sample")
    return images, ids


def _resolve_targets(targets: int | Sequence[int] | None, n: int, num_classes: int) -> list[int | None]:
    if targets is None:
        return [None] * n
    if isinstance(targets, (int, np.integer)):
        targets = [int(targets)] * n
    targets = list(targets)
    if len(targets) != n:
        raise ValueError(f"targets: got {len(targets)} target classes for {n} images")
    for t in targets:
        if t is not None and not 0 <= int(t) < num_classes:
            raise ValueError(f"targets: class index {t} is outside 0..{num_classes - 1}")
    return [None if t is None else int(t) for t in targets]


def stack_inputs(clf: Classifier, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Preprocessed C×H×W tensors → one N×C×H×W channels-last batch on the model's device
    (pinned and copied asynchronously when that device is a GPU)."""
    x = torch.stack(list(tensors))
    device = clf.device
    if device.type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    elif device.type != "cpu":
        x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last)


#: mixed precision for the forward pass: ``autocast=`` of :func:`compute_cams` and ``explain``
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_autocast(autocast: str | None) -> str | None:
    if autocast is not None and autocast not in AUTOCAST_DTYPES:
        raise ValueError(f"autocast: one of {sorted(AUTOCAST_DTYPES)} or None, got {autocast!r}")
    return autocast


def _forward_precision(device: torch.device, autocast: str | None):
    """Autocast for the forward pass only (the backward pass follows the forward's dtypes)."""
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[autocast])


def _extract_batch(clf: Classifier, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
    """One batch of CAMs, holding the model's lock: while the hooks are registered on the target
    layer, no other thread's forward pass (an offline judge's) may go through it."""
    with clf.lock:
        return _extract_batch_locked(clf, *args, **kwargs)


def _extract_batch_locked(
    clf: Classifier, method: CamMethod, images: list[Image.Image], targets: list[int | None], top_k: int,
    method_options: dict, tensors: Sequence[torch.Tensor] | None = None, autocast: str | None = None,
) -> tuple[np.ndarray, ...]:
    x = clf.batch(images) if tensors is None else stack_inputs(clf, tensors)
    cam = _cam_object(clf, method, x.device)
    for key, value in {**method.options, **method_options}.items():
        _check_option(cam, method, key)
        setattr(cam, key, value)
    if clf.model.training:  # grad-cam's constructor would have called eval(); so do we, when needed
        clf.model.eval()
    capture = LayerCapture(gradient_leaf=method.uses_gradients)
    hook = clf.target_layer.register_forward_hook(capture, prepend=True)
    try:
        with torch.no_grad() if method.uses_gradients else torch.inference_mode():
            with _forward_precision(x.device, autocast):
                logits = clf.model(x)
            hook.remove()  # perturbation methods re-run the model below
            if capture.output is None:
                raise RuntimeError(f"cam: the target layer {clf.target_layer_name!r} produced no tensor output")
            probs = torch.softmax(logits.detach().float(), dim=1)
            preds = probs.argmax(dim=1)
            chosen = [int(p) if t is None else t for t, p in zip(targets, preds.tolist())]
            grads = None
            if method.uses_gradients:
                picked = logits.gather(1, torch.as_tensor(chosen, device=logits.device)[:, None])
                (grad,) = torch.autograd.grad(picked.sum(), capture.output)
                grads = _host(_layer_view(clf, grad))
            acts = _host(_layer_view(clf, capture.output))
            capture.output = None
            with torch.no_grad():
                raw = cam.get_cam_image(x, clf.target_layer, [ClassifierOutputTarget(t) for t in chosen], acts,
                                        grads, False)
    finally:  # also when the forward pass fails: nothing of ours stays on the model
        hook.remove()
    maps = np.maximum(np.asarray(raw, dtype=np.float32), 0)
    k = min(top_k, probs.shape[1])
    top = torch.topk(probs, k, dim=1)
    conf = probs.gather(1, preds[:, None])[:, 0]
    return (
        maps, _host(preds).astype(np.int64), _host(conf).astype(np.float32), np.asarray(chosen, dtype=np.int64),
        _host(top.indices).astype(np.int64), _host(top.values).astype(np.float32),
    )


def _layer_view(clf: Classifier, t: torch.Tensor) -> torch.Tensor:
    """The target layer's output (or its gradient) as grad-cam sees it: N×C×h×w for token layers."""
    return t if clf.reshape_transform is None else clf.reshape_transform(t)


#: per model: grad-cam object state by method, built once (see :func:`_cam_object`); weak on the model
_CAM_STATES: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def _cam_object(clf: Classifier, method: CamMethod, device: torch.device) -> Any:
    """A fresh grad-cam object of ``method`` for ``clf``. grad-cam's constructor walks the whole
    model (``eval()``: ~4 ms on EfficientNet-Lite0, as much as a batch-1 forward pass), so it runs
    once per model, method, device and target layer; later objects copy its state. The stored state
    holds no reference to the model (only to its target layer), so the cache never keeps a model alive."""
    states = _CAM_STATES.setdefault(clf.model, {})
    key = (method.name, method.cls, str(device))
    state = states.get(key)
    if state is None or state["target_layers"][0] is not clf.target_layer \
            or state["reshape_transform"] is not clf.reshape_transform:
        built = method.cls(model=clf.model, target_layers=[clf.target_layer], reshape_transform=clf.reshape_transform)
        built.activations_and_grads.release()
        built.activations_and_grads.model = None  # released (grad-cam's __del__ releases it again)
        state = states[key] = {k: v for k, v in vars(built).items() if k != "model"}
    cam = method.cls.__new__(method.cls)
    cam.__dict__.update(state)
    cam.model = clf.model
    return cam


def _host(t: torch.Tensor) -> np.ndarray:
    """A tensor on any device (CUDA, MPS, CPU), as a float32-or-integer numpy array on the host."""
    t = t.detach()
    if t.is_floating_point() and t.dtype != torch.float32:
        t = t.float()
    return t.cpu().numpy()


def cams_for_batch(
    clf: Classifier, method: str, images: Sequence[Image.Image], *, tensors: Sequence[torch.Tensor] | None = None,
    ids: Sequence[str] | None = None, top_k: int = 5, method_options: dict | None = None,
    autocast: str | None = None,
) -> CamResult:
    """Raw CAMs of one batch, optionally from inputs already preprocessed by ``clf.preprocess``
    (parallel loader workers do that): the pipeline's CAM stage."""
    spec = get_cam_method(method)
    images = list(images)
    maps, preds, conf, chosen, top_i, top_p = _extract_batch(
        clf, spec, images, [None] * len(images), top_k, method_options or {}, tensors, check_autocast(autocast))
    return CamResult(spec.name, maps, preds, conf, chosen, top_i, top_p, [im.size for im in images],
                     list(ids) if ids is not None else [str(k) for k in range(len(images))])


#: grad-cam attributes that are the extraction's own machinery, never options.
_INTERNAL = frozenset({"model", "target_layers", "reshape_transform", "activations_and_grads", "uses_gradients",
                       "device", "compute_input_gradient", "outputs"})


def _check_option(cam: Any, method: CamMethod, key: str) -> None:
    """Only the method's own settings may be set: never its hooks, model or methods."""
    if key in method.options:
        return
    if (not isinstance(key, str) or key.startswith("_") or key in _INTERNAL or not hasattr(cam, key)
            or callable(getattr(cam, key))):
        known = sorted({k for k, v in vars(cam).items() if not k.startswith("_") and k not in _INTERNAL
                        and not callable(v)} | set(method.options))
        raise ValueError(f"cam_options: {method.name} has no option {key!r}; options: {', '.join(known) or 'none'}")


def preprocess_workers(device: torch.device | str) -> int:
    """Threads that preprocess the next batch while the model works on this one: on the CPU only
    the cores torch's own threads leave free (there, a preprocessing thread preempts one of torch's
    and stalls every parallel kernel at its barrier: compute_cams measured ~25 % slower with 2
    threads on a 2-core machine); on an accelerator up to 8. 0: preprocess in line."""
    cores = os.cpu_count() or 1
    if str(device).split(":")[0] == "cpu":
        return max(0, min(8, cores - torch.get_num_threads()))
    return max(1, min(8, cores))


def _preprocessed_batches(clf: Classifier, pics: list[Image.Image], batch_size: int) -> Iterator[list[torch.Tensor]]:
    """The input tensors of ``pics``, batch by batch (DataLoader-style: with
    :func:`preprocess_workers` threads, the next batch is preprocessed while this one is used;
    PIL resizes and torch kernels release the GIL)."""
    workers = preprocess_workers(clf.device)
    if not workers:
        for start in range(0, len(pics), batch_size):
            yield [clf.preprocess(im) for im in pics[start:start + batch_size]]
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vlmx-pre") as pool:
        ahead = [pool.submit(clf.preprocess, im) for im in pics[:batch_size]]
        for start in range(0, len(pics), batch_size):
            tensors = [f.result() for f in ahead]
            ahead = [pool.submit(clf.preprocess, im) for im in pics[start + batch_size:start + 2 * batch_size]]
            yield tensors


def compute_cams(
    clf: Classifier,
    images: Sequence[Any],
    method: str = "gradcam",
    *,
    targets: int | Sequence[int | None] | None = None,
    batch_size: int = 16,
    top_k: int = 5,
    progress: bool = False,
    method_options: dict | None = None,
    autocast: str | None = None,
) -> CamResult:
    """Compute raw CAMs for ``images`` (PIL images or dataset samples).

    ``targets``: the class each map explains (one index, one per image, or ``None`` for the
    predicted class). ``method_options`` sets attributes of the grad-cam object, e.g.
    ``{"batch_size": 128}`` for ScoreCAM/AblationCAM (forward passes per batch of channels).
    ``autocast="bf16"`` or ``"fp16"`` runs the forward pass in mixed precision (faster on GPUs;
    maps equal to float32 within the tolerance stated in the README).
    """
    check_autocast(autocast)
    spec = get_cam_method(method)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    items = list(images)
    if not items:
        raise ValueError("images: nothing to explain (empty input)")
    if spec.costly:
        warnings.warn(
            f"{spec.name} runs one forward pass per target-layer channel: ~40 s per image on a CPU "
            f"for EfficientNet-Lite0 ({len(items)} images). Prefer gradcam for large runs.",
            CostlyMethodWarning,
            stacklevel=2,
        )
    pics, ids = _as_images(items)
    wanted = _resolve_targets(targets, len(pics), clf.num_classes)
    keep_freed_memory_on(clf.device)  # before the preprocessing threads start
    parts = []
    with contextlib.closing(_preprocessed_batches(clf, pics, batch_size)) as batches:  # its threads end here
        for start in tqdm(range(0, len(pics), batch_size), desc=f"{spec.name}", unit="batch", disable=not progress):
            chunk = slice(start, start + batch_size)
            maps, preds, conf, chosen, top_i, top_p = _extract_batch(
                clf, spec, pics[chunk], wanted[chunk], top_k, method_options or {}, next(batches), autocast
            )
            parts.append(CamResult(spec.name, maps, preds, conf, chosen, top_i, top_p,
                                   [im.size for im in pics[chunk]], ids[chunk]))
    return CamResult.concat(parts)
