"""Value checks shared by every layer: each raises ``ValueError`` naming the parameter.

The same rules back the pydantic parameter models (:mod:`vlmxplain.params`) through the
annotated types at the bottom, so a value is judged the same way in Python and in a notebook.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
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


def check_usd(name: str, value: Any) -> float:
    """An amount of money: a finite number > 0 (USD)."""
    x = _number(name, value)
    if x <= 0:
        raise ValueError(f"{name}: must be > 0 (USD), got {value!r}")
    return x


def check_score(name: str, value: Any) -> float:
    """A score in [0, 5]."""
    return _in_range(name, value, SCORE_MIN, SCORE_MAX, "in 0..5")


#: Annotated types for pydantic models (same rules as the functions above).
Alpha = Annotated[float, BeforeValidator(check_alpha)]
Beta = Annotated[float, BeforeValidator(check_beta)]
Threshold = Annotated[float, BeforeValidator(validate_threshold)]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
MaxCost = Annotated[float, BeforeValidator(lambda value: check_usd("max_cost", value))]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]


#: Parameter / option names that look like they hold a credential (never accepted, never echoed).
_SECRET_WORDS = ("api_key", "apikey", "secret", "token", "password", "passwd", "credential", "auth", "bearer")


def looks_secret(name: str) -> bool:
    """True for a name such as ``api_key``, ``openai_api_key``, ``OPENAI_TOKEN`` or ``password``."""
    n = str(name).lower().replace("-", "_")
    return any(w in n for w in _SECRET_WORDS) or n.endswith("_key") or n == "key"


def describe_option_errors(exc: Any, model: Any = None) -> str:
    """A pydantic ``ValidationError`` as '<name>: <what is wrong>; ...' without any input value
    (a key passed under a wrong option name must not end up in a message or a log)."""
    import difflib

    known = list(getattr(model, "model_fields", {}) or {})
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err.get("loc", ())) or "options"
        if err.get("type") == "extra_forbidden":
            hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            if looks_secret(name):
                extra = " (keys are never options: set the provider's environment variable, e.g. OPENAI_API_KEY)"
            parts.append(f"{name}: unknown option, value not shown{extra}")
        else:
            parts.append(f"{name}: {str(err.get('msg', err.get('type', 'invalid'))).removeprefix('Value error, ')}")
    return "; ".join(parts)


def check_run_dir(value: Any) -> Any:
    """A run directory path (str or path-like), or None; an empty one would mean the current folder."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"run_dir: must be a folder path, got a {type(value).__name__}")
    if not os.fspath(value).strip():
        raise ValueError("run_dir: give a folder for the run (an empty path would write into the current one)")
    return value


def check_flag(name: str, value: Any) -> bool:
    """A real boolean (``"no"`` or 0 are not booleans)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be True or False, got a {type(value).__name__}")
    return bool(value)


def check_options(name: str, value: Any) -> dict:
    """An options mapping with string keys (None = no options); values are not echoed."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name}: must be a dict of option names to values, got a {type(value).__name__}")
    return dict(value)
