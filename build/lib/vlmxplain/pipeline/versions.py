"""Versions of the libraries that decide a run's numbers (recorded in the run record)."""
from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("vlmxplain", "torch", "torchvision", "timm", "grad-cam", "numpy", "pillow", "openai", "google-genai")


def library_versions() -> dict[str, str]:
    """``{package: version}`` of the installed packages that matter to a run, plus Python."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
