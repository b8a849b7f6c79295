"""Shared fixtures: the offline classifier and small inputs, built once per session."""
from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

pytest_plugins = ["loopback_server"]  # the OpenAI/Gemini wire-protocol test server and its fixture
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session", autouse=True)
def private_caches(tmp_path_factory):
    """No test reads or writes the user's judgment cache (a hit from an earlier session would turn
    a new judgment into a cached one; modules that share one set their own), and one model cache
    serves the whole session: every ShapesNet (bias, sweep, notebook tests) is trained once. The
    notebooks nbval runs after tests/ start their kernels with this environment, so they find the
    models the tests trained instead of training them again."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMXPLAIN_CACHE", str(tmp_path_factory.mktemp("session-cache") / "judgments.sqlite"))
        mp.setenv("VLMXPLAIN_MODELS", str(tmp_path_factory.getbasetemp() / "vlmxplain-models"))
        yield


@pytest.fixture(scope="module")
def tiny_clf():
    """An untrained ShapesNet: fast, for tests about bookkeeping, not predictions."""
    import torch

    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    torch.manual_seed(0)
    return shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])


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


@pytest.fixture(scope="module")
def shared_caches(tmp_path_factory):
    """The session's model cache (see :func:`private_caches`) and a private judgment cache per
    module; no progress bars. Kernels started by notebook tests inherit this environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMXPLAIN_CACHE", str(tmp_path_factory.mktemp("cache") / "judgments.sqlite"))
        mp.setenv("TQDM_DISABLE", "1")
        mp.setenv("MPLBACKEND", "Agg")
        yield
