"""vlmxplain: explain image classifiers with CAMs, masked CAM images and vision-language judges.

Follows "A Novel Framework for Automated Explain Vision Model Using Vision-Language Models"
(arXiv 2508.20227). See DESIGN in the README for the data flow.
"""
from __future__ import annotations


from .cams import CAM_METHODS, CamResult, compute_cams, get_cam_method
from .classifiers import Classifier, load_classifier
from .masks import masked_image, overlay, saliency, sigmoid_mask, thumbnail

__version__ = "0.1.0"

__all__ = [
    "CAM_METHODS", "CamResult", "Classifier", "compute_cams", "datasets", "get_cam_method", "load_classifier",
    "masked_image", "overlay", "saliency", "sigmoid_mask", "thumbnail",
]
