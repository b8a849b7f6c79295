"""CAM methods (pytorch-grad-cam's classes behind one registry) and batched extraction."""
from .extract import CamResult, compute_cams
from .methods import (
    CAM_METHODS, CamMethod, CostlyMethodWarning, get_cam_method, register_cam_method, unregister_cam_method,
)

__all__ = ["CAM_METHODS", "CamMethod", "CamResult", "CostlyMethodWarning", "compute_cams",
           "get_cam_method", "register_cam_method", "unregister_cam_method"]
