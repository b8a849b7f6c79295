"""Shared fixtures: the offline classifier and small inputs, built once per session."""
from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

pytest_plugins = ["loopback_server"]  # the OpenAI/Gemini wire-protocol test server and its fixture
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def lite0():
    import vlmxplain as vx

    return vx.load_classifier("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos():
    """A few real photos shipped with scikit-image (no download)."""
    import numpy as np
    import skimage.data as sd
    from PIL import Image

    return {
        "chelsea": Image.fromarray(sd.chelsea()),
        "coffee": Image.fromarray(sd.coffee()),
        "camera": Image.fromarray(np.stack([sd.camera()] * 3, -1)),
    }
