"""Value checks shared by every layer: each raises ``ValueError`` naming the parameter.

The same rules back the pydantic parameter models (:mod:`vlmxplain.params`) through the
annotated types at the bottom, so a value is judged the same way in Python and in a notebook.
"""
from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field

from .defaults import SCORE_MAX, SCORE_MIN


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    return x


def _in_range(name: str, value: Any, low: float, high: float, what: str) -> float:
    """``value`` as a float in [low, high]; the error names the closest valid value."""
    try:
        x = _number(name, value)
    except ValueError:
        x = float("nan")
    if not low <= x <= high:
        hint = f" (closest valid: {min(max(x, low), high):g})" if not math.isnan(x) else ""
        raise ValueError(f"{name}: must be {what}, got {value!r}{hint}")
    return x


def check_alpha(alpha: Any) -> float:
    """alpha > 0, finite (paper: 25)."""
    try:
        a = _number("alpha", alpha)
    except ValueError:
        raise ValueError(f"alpha: must be a finite number > 0 (paper: 25), got {alpha!r}") from None
    if a <= 0:
        raise ValueError(f"alpha: must be a finite number > 0 (paper: 25), got {alpha!r}")
    return a


def check_beta(beta: Any) -> float:
    """0 <= beta <= 1, finite (paper: 0.4–0.7, best 0.6)."""
    return _in_range("beta", beta, 0.0, 1.0, "a finite number in [0, 1] (paper: 0.4–0.7, best 0.6)")


def validate_mask_params(alpha: Any, beta: Any) -> tuple[float, float]:
    """Check alpha > 0 and 0 <= beta <= 1, both finite; return them as floats."""
    return check_alpha(alpha), check_beta(beta)


def validate_threshold(threshold: Any) -> float:
    """A score threshold in [0, 5]."""
    return _in_range("threshold", threshold, SCORE_MIN, SCORE_MAX, "a number in [0, 5]")


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (booleans and floats are not integers)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_score(name: str, value: Any) -> float:
    """A score in [0, 5]."""
    return _in_range(name, value, SCORE_MIN, SCORE_MAX, "in 0..5")


#: Annotated types for pydantic models (same rules as the functions above).
Alpha = Annotated[float, BeforeValidator(check_alpha)]
Beta = Annotated[float, BeforeValidator(check_beta)]
Threshold = Annotated[float, BeforeValidator(validate_threshold)]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
