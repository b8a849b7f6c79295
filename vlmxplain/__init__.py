"""vlmxplain: explain image classifiers with CAMs, masked CAM images and vision-language judges.

Follows "A Novel Framework for Automated Explain Vision Model Using Vision-Language Models"
(arXiv 2508.20227). See DESIGN in the README for the data flow.
"""
from __future__ import annotations

__version__ = "0.1.0"


from . import datasets
from .analysis import QuadrantSummary, quadrant_summary
from .cams import CAM_METHODS, CamResult, compute_cams, get_cam_method
from .classifiers import Classifier, load_classifier
from .judges.base import Judge, JudgeInput, Judgment
from .judges.registry import make_judge, parse_judge_spec
from .judges.vlm.cost import estimate_cost
from .masks import masked_image, overlay, saliency, sigmoid_mask, thumbnail
from .pipeline import ExplainSummary, explain, rejudge
from .run import Run, agreement, open_run
from .store import JudgmentCache, RunStore
from .widgets import Annotator, JudgeViewer, MaskTuner, QuadrantBrowser


__all__ = [
    "Annotator", "JudgeViewer", "MaskTuner", "QuadrantBrowser",
    "CAM_METHODS", "CamResult", "Classifier", "ExplainSummary", "Judge", "JudgeInput", "Judgment", "JudgmentCache",
    "QuadrantSummary", "Run", "agreement", "RunStore", "compute_cams", "datasets", "estimate_cost", "explain",
    "get_cam_method", "load_classifier", "make_judge", "masked_image", "open_run", "overlay", "parse_judge_spec",
    "quadrant_summary", "rejudge", "saliency", "sigmoid_mask", "thumbnail",
]
