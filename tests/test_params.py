"""Notebook/CLI parameter validation: every bad value names its parameter."""
from __future__ import annotations

import pytest

from vlmxplain import params as vxp


def test_defaults_are_valid_and_normalised():
    p = vxp.validate_params()
    assert p.data == "gallery" and p.cam == "gradcam" and p.alpha == 25.0 and p.beta == 0.6
    assert vxp.validate_params(cam="GradCAM++").cam == "gradcam++"


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"alpha": 0}, "alpha"), ({"beta": 1.2}, "beta"), ({"beta": "x"}, "alpha/beta"),
        ({"cam": "gradkam"}, "cam"), ({"judge": "gpt4"}, "judge"), ({"judge": "offline"}, "judge"),
        ({"judge": "openai-compatible:qwen"}, "judge"), ({"threshold": 6}, "threshold"),
        ({"judge": "openai-compatible:qwen@http://user:secret@host:8000/v1"}, "judge"),
        ({"limit": 0}, "limit"), ({"limit": 2.5}, "limit"), ({"input_kind": "raw"}, "input_kind"),
        ({"data": "/no/such/folder"}, "data"), ({"data": "shapes:n=10,colour=red"}, "data"),
        ({"data": "shapes:n10"}, "data"), ({"run_dir": ""}, "run_dir"), ({"classifier": ""}, "classifier"),
    ],
)
def test_bad_values_fail_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        vxp.validate_params(**kwargs)


def test_data_sources_load(tmp_path):
    assert len(vxp.load_data("gallery")) == 8
    ds = vxp.load_data("shapes:n=30,seed=2,shortcut_class=\"circle\",shortcut_rate=0.5", limit=10)
    assert len(ds) == 10 and ds.classes == ["circle", "square", "triangle"]
    (tmp_path / "cls_a").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        vxp.load_data(str(tmp_path))
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(ValueError, match="^data: .* not a .csv"):
        vxp.validate_params(data=str(tmp_path / "list.txt"))


def test_shapes_model_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMXPLAIN_MODELS", str(tmp_path))
    first = vxp.shapes_model({"n": 120, "seed": 7}, epochs=1, progress=False)
    files = list(tmp_path.glob("shapesnet-*.pt"))
    assert len(files) == 1
    again = vxp.shapes_model({"n": 120, "seed": 7}, epochs=1, progress=False)
    assert again.fingerprint == first.fingerprint
