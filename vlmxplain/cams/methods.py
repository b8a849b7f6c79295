"""The CAM method registry: pytorch-grad-cam's classes, one entry each, looked up by name.

Each entry says how :mod:`.extract` drives the method (gradients or not; one forward pass per
channel or not) and which attributes it sets on the grad-cam object.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pytorch_grad_cam import (
    AblationCAM, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM,
)
from pytorch_grad_cam.base_cam import BaseCAM

from ..core.catalog import CAM_METHOD_NAMES, cam_name
from ..core import fields as _fields


class CostlyMethodWarning(UserWarning):
    """A perturbation CAM method (one forward pass per channel) was requested."""


class FastEigenCAM(EigenCAM):
    """EigenCAM with an economy SVD: the first right singular vector is all it projects on
    (grad-cam computes the full U, ~15× slower on a 7×7×1280 map)."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        acts = np.nan_to_num(np.asarray(activations, dtype=np.float32))
        out = []
        for a in acts:
            flat = a.reshape(a.shape[0], -1).T
            flat = flat - flat.mean(axis=0)
            _, _, vt = np.linalg.svd(flat, full_matrices=False)
            out.append((flat @ vt[0]).reshape(a.shape[1:]))
        return np.float32(out)


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
        CamMethod("gradcam++", GradCAMPlusPlus),
        CamMethod("xgradcam", XGradCAM),
        CamMethod("hirescam", HiResCAM),
        CamMethod("layercam", LayerCAM),
        CamMethod("eigencam", FastEigenCAM, uses_gradients=False),
        CamMethod("scorecam", ScoreCAM, uses_gradients=False, costly=True, options={"batch_size": 64}),
        CamMethod("ablationcam", AblationCAM, uses_gradients=False, costly=True, options={"batch_size": 64}),
    ]
}
assert tuple(CAM_METHODS) == CAM_METHOD_NAMES, "core.catalog.CAM_METHOD_NAMES must list this registry"


def get_cam_method(name: str) -> CamMethod:
    """Look a method up by name (case-insensitive, aliases as in :mod:`vlmxplain.core.catalog`);
    a clear error names the closest known one."""
    return CAM_METHODS[cam_name(name)]


#: A pydantic field type for a CAM method parameter (defined in core: checked before anything loads).
CamField = _fields.CamField
