"""Defaults of the method and where vlmxplain keeps files: one place for every literal.

The paper (arXiv 2508.20227) uses a sigmoid mask with alpha = 25 and beta in 0.4–0.7 (best
0.6); a score at or above 2.5 of 5 counts as High in the quadrant matrix.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ALPHA = 25.0
DEFAULT_BETA = 0.6
DEFAULT_THRESHOLD = 2.5
DEFAULT_CAM = "gradcam"
DEFAULT_JUDGE = "offline:faithfulness"
DEFAULT_BATCH_SIZE = 16
#: Longest side of the stored working copy of each image (what judges and panels see).
PREVIEW_SIZE = 512
SCORE_MIN, SCORE_MAX = 0.0, 5.0
SCORE_RANGE = (SCORE_MIN, SCORE_MAX)
#: The paper's alpha × beta grid.
PAPER_ALPHAS = (15.0, 20.0, 25.0, 30.0)
PAPER_BETAS = (0.3, 0.4, 0.5, 0.6, 0.7)


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/vlmxplain`` or ``~/.cache/vlmxplain``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vlmxplain"


def judgment_cache_path() -> Path:
    """The cross-run judgment cache file: ``$VLMXPLAIN_CACHE`` — a folder (existing, ending in
    ``/``, or a new path without a file suffix) that gets ``judgments.sqlite``, or a file — else
    ``<cache root>/judgments.sqlite``."""
    env = os.environ.get("VLMXPLAIN_CACHE")
    if env:
        path = Path(env).expanduser()
        folder = path.is_dir() or env.endswith(("/", os.sep)) or (not path.exists() and not path.suffix)
        return path / "judgments.sqlite" if folder else path
    return cache_root() / "judgments.sqlite"


def model_cache_dir() -> Path:
    """Trained offline models (ShapesNets): ``$VLMXPLAIN_MODELS``, else ``<cache root>/models``."""
    env = os.environ.get("VLMXPLAIN_MODELS")
    return Path(env).expanduser() if env else cache_root() / "models"
