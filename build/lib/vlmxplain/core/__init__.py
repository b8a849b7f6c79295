"""The bottom layer: defaults, value checks, typed specs, records and quadrant arithmetic.

Nothing here imports torch, a VLM SDK, ipywidgets or matplotlib.
"""
from .checks import check_int, validate_mask_params, validate_threshold
from .defaults import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_THRESHOLD, PREVIEW_SIZE
from .quadrants import QUADRANT_VALUES, QUADRANTS, QuadrantSummary, assign_quadrants, quadrant_column, quadrant_summary
from .records import JudgeResponse, JudgeSettings, Judgment, RunConfig, RunView
from .specs import ClassifierSpec, DataSpec, JudgeSpec

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_BETA", "DEFAULT_THRESHOLD", "PREVIEW_SIZE", "QUADRANTS", "QUADRANT_VALUES",
    "ClassifierSpec", "DataSpec", "JudgeResponse", "JudgeSettings", "JudgeSpec", "Judgment", "QuadrantSummary",
    "RunConfig", "RunView", "assign_quadrants", "check_int", "quadrant_column", "quadrant_summary",
    "validate_mask_params", "validate_threshold",
]
