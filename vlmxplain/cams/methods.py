"""The CAM method registry: pytorch-grad-cam's classes, one entry each, looked up by name.

Each entry says how :mod:`.extract` drives the method (gradients or not; one forward pass per
channel or not) and which attributes it sets on the grad-cam object.

Three upstream behaviours are corrected here (each tested in ``tests/test_cams.py``):

* EigenCAM's sign is arbitrary (an SVD's singular vector is defined up to sign; on ResNet-18
  half the maps pointed away from the activations): :class:`FastEigenCAM` orients the projection
  so it correlates positively with the mean activation.
* AblationCAM crashed on token layers (ViT, Swin): :class:`AnyLayerAblationCAM` uses
  grad-cam's ``AblationLayerVit`` when the target layer needs a reshape transform.
* ScoreCAM materialised every channel's masked copy of the input at once (1,280 × 3 × 224² floats,
  770 MB per image for EfficientNet-Lite0) and read each score back with one ``.item()``:
  :class:`StreamingScoreCAM` builds the masked inputs one batch of channels at a time,
  channels-last, under ``inference_mode``, and reads each batch's scores at once (same weights).
* GradCAM++'s fixed ``eps = 1e-6`` dominates the denominator when gradients are tiny (ViTs):
  :class:`ScaledGradCAMPlusPlus` scales it to each sample's denominators, so the weights follow
  the paper's formula (Chattopadhay et al. 2018, eq. 19) at any gradient scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import (
    AblationCAM, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM,
)
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ..core.catalog import CAM_ALIASES, CAM_METHOD_NAMES, REGISTERED_CAM_NAMES, cam_name
from ..core import fields as _fields


class CostlyMethodWarning(UserWarning):
    """A perturbation CAM method (one forward pass per channel) was requested."""


def orient_to_activations(projection: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """``projection`` (h×w) or its negative, whichever correlates positively with the mean
    activation over channels (C×h×w)."""
    mean = np.asarray(activations, dtype=np.float64).mean(axis=0).ravel()
    p = np.asarray(projection, dtype=np.float64).ravel()
    cov = float(np.dot(p - p.mean(), mean - mean.mean()))
    return -projection if cov < 0 else projection


def first_principal_projection(flat: np.ndarray) -> np.ndarray:
    """``flat @ v₁`` for the first right singular vector ``v₁`` of ``flat`` (positions × channels,
    centred), up to sign: from the eigendecomposition of the smaller Gram matrix (49×49 for a
    7×7×1280 map) instead of an SVD (~6 ms there; grad-cam's full SVD ~15× more)."""
    f = np.asarray(flat, dtype=np.float64)
    if f.shape[0] <= f.shape[1]:
        values, vectors = np.linalg.eigh(f @ f.T)  # flat @ v₁ = σ₁ u₁
        return vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
    _, vectors = np.linalg.eigh(f.T @ f)
    return f @ vectors[:, -1]


class FastEigenCAM(EigenCAM):
    """EigenCAM projecting on the first principal component only (:func:`first_principal_projection`),
    oriented to the activations."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        acts = np.nan_to_num(np.asarray(activations, dtype=np.float32))
        out = []
        for a in acts:
            flat = a.reshape(a.shape[0], -1).T
            projection = first_principal_projection(flat - flat.mean(axis=0))
            out.append(orient_to_activations(projection.reshape(a.shape[1:]), a))
        return np.float32(out)


class AnyLayerAblationCAM(AblationCAM):
    """AblationCAM that also ablates channels of token layers (ViT, Swin: a reshape transform)."""

    def __init__(self, model, target_layers, reshape_transform=None, **options) -> None:
        if reshape_transform is not None:
            options.setdefault("ablation_layer", AblationLayerVit())
        super().__init__(model, target_layers, reshape_transform, **options)


class StreamingScoreCAM(ScoreCAM):
    """ScoreCAM (Wang et al. 2020) with the masked inputs streamed one batch of channels at a time.

    Each channel's activation is upsampled (bilinear, corners aligned, as upstream), min-max
    normalised, multiplied into the input, and the target class's logit of that masked input is
    the channel's score; the weights are the softmax of the scores over channels."""

    batch_size = 16

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads):
        size = input_tensor.shape[-2:]
        acts = torch.from_numpy(np.asarray(activations, dtype=np.float32)).to(input_tensor.device)
        scores = torch.empty(acts.shape[:2], dtype=torch.float32)
        with torch.inference_mode():
            for n, (target, image) in enumerate(zip(targets, input_tensor)):
                for start in range(0, acts.shape[1], self.batch_size):
                    chunk = slice(start, start + self.batch_size)
                    up = F.interpolate(acts[n, chunk][:, None], size=size, mode="bilinear", align_corners=True)
                    lo = up.amin(dim=(2, 3), keepdim=True)
                    hi = up.amax(dim=(2, 3), keepdim=True)
                    masked = (image[None] * ((up - lo) / (hi - lo + 1e-8)))
                    out = self.model(masked.contiguous(memory_format=torch.channels_last)).float()
                    if isinstance(target, ClassifierOutputTarget):
                        scores[n, chunk] = out[:, target.category].cpu()
                    else:
                        scores[n, chunk] = torch.stack([target(o) for o in out]).float().cpu()
        return torch.softmax(scores, dim=-1).numpy()


#: GradCAM++'s epsilon, relative to the mean absolute denominator of each sample.
GRADCAM_PP_REL_EPS = 1e-6


class ScaledGradCAMPlusPlus(GradCAMPlusPlus):
    """GradCAM++ with an epsilon scaled to each sample's denominators (see the module docstring)."""

    def get_cam_weights(self, input_tensor, target_layers, target_category, activations, grads):
        grads = np.asarray(grads, dtype=np.float64)
        acts = np.asarray(activations, dtype=np.float64)
        spatial = tuple(range(2, acts.ndim))
        g2 = grads ** 2
        sum_acts = acts.sum(axis=spatial, keepdims=True)
        denom = 2 * g2 + sum_acts * g2 * grads
        batch_axes = tuple(range(1, acts.ndim))
        scale = np.abs(denom).mean(axis=batch_axes, keepdims=True)
        eps = GRADCAM_PP_REL_EPS * np.where(scale > 0, scale, 1.0)
        aij = np.where(grads != 0, g2 / (denom + eps), 0.0)
        return np.float32((np.maximum(grads, 0) * aij).sum(axis=spatial))


@dataclass(frozen=True)
class CamMethod:
    """One registry entry: the grad-cam class and how to drive it."""

    name: str
    cls: type[BaseCAM]
    uses_gradients: bool = True
    costly: bool = False
    options: dict = field(default_factory=dict)


CAM_METHODS: dict[str, CamMethod] = {
    m.name: m
    for m in [
        CamMethod("gradcam", GradCAM),
        CamMethod("gradcam++", ScaledGradCAMPlusPlus),
        CamMethod("xgradcam", XGradCAM),
        CamMethod("hirescam", HiResCAM),
        CamMethod("layercam", LayerCAM),
        CamMethod("eigencam", FastEigenCAM, uses_gradients=False),
        CamMethod("scorecam", StreamingScoreCAM, uses_gradients=False, costly=True, options={"batch_size": 64}),
        CamMethod("ablationcam", AnyLayerAblationCAM, uses_gradients=False, costly=True, options={"batch_size": 64}),
    ]
}
assert tuple(CAM_METHODS) == CAM_METHOD_NAMES, "core.catalog.CAM_METHOD_NAMES must list this registry"


def register_cam_method(method: CamMethod) -> CamMethod:
    """Add ``method`` (a :class:`CamMethod` over any grad-cam ``BaseCAM`` subclass) to the registry
    of this process, so ``explain(cam=...)``, ``compute_cams`` and ``compare_cams`` take its name.
    Built-in names cannot be replaced; a run store records only the name, so a later process
    that recomputes such a run's CAMs must register the method again."""
    name = str(method.name).strip().lower()
    if name != method.name or not name or name in CAM_METHOD_NAMES or name in CAM_ALIASES:
        raise ValueError(f"cam: {method.name!r} is not a new lower-case method name (built-in: "
                         f"{', '.join(CAM_METHOD_NAMES)})")
    if not (isinstance(method.cls, type) and issubclass(method.cls, BaseCAM)):
        raise TypeError(f"cam: {method.name}: cls must be a pytorch-grad-cam BaseCAM subclass")
    CAM_METHODS[name] = method
    if name not in REGISTERED_CAM_NAMES:
        REGISTERED_CAM_NAMES.append(name)
    return method


def unregister_cam_method(name: str) -> None:
    """Remove a method added with :func:`register_cam_method` (built-ins stay)."""
    if name in REGISTERED_CAM_NAMES:
        REGISTERED_CAM_NAMES.remove(name)
        CAM_METHODS.pop(name, None)


def get_cam_method(name: str) -> CamMethod:
    """Look a method up by name (case-insensitive, aliases as in :mod:`vlmxplain.core.catalog`);
    a clear error names the closest known one."""
    return CAM_METHODS[cam_name(name)]


#: A pydantic field type for a CAM method parameter (defined in core: checked before anything loads).
CamField = _fields.CamField
