"""Where core's read models find their figures: ``QuadrantSummary.plot()`` draws with a function a
higher layer registered here, so core imports no plotting code. The package root registers
:mod:`vlmxplain.viz`'s figures lazily (loaded on the first call); anything may register its own.
"""
from __future__ import annotations

from typing import Any, Callable

_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: str, function: Callable[..., Any]) -> None:
    """Make ``function`` the view ``name`` (e.g. ``"quadrant_matrix"``)."""
    _VIEWS[name] = function


def get_view(name: str) -> Callable[..., Any]:
    """The registered view ``name``; a clear error when none is."""
    try:
        return _VIEWS[name]
    except KeyError:
        raise LookupError(f"no {name!r} view is registered (the figures live in vlmxplain.viz)") from None
