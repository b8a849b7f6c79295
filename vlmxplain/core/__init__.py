"""The bottom layer: defaults, value checks, typed specs, records and quadrant arithmetic.

Nothing here imports torch, a VLM SDK, ipywidgets or matplotlib. The names below load their
module on first use (PEP 562), so a light import (``vlmxplain.core.specs``) pays for no pandas.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check_int": "checks", "validate_mask_params": "checks", "validate_threshold": "checks",
    "DEFAULT_ALPHA": "defaults", "DEFAULT_BETA": "defaults", "DEFAULT_THRESHOLD": "defaults", "PREVIEW_SIZE": "defaults",
    "QUADRANT_VALUES": "quadrants", "QUADRANTS": "quadrants", "QuadrantSummary": "quadrants",
    "assign_quadrants": "quadrants", "quadrant_column": "quadrants", "quadrant_summary": "quadrants",
    "JudgeResponse": "records", "JudgeSettings": "records", "Judgment": "records", "RunConfig": "records",
    "RunView": "records",
    "ClassifierSpec": "specs", "DataSpec": "specs", "JudgeSpec": "specs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
