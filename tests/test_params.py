"""Notebook/CLI parameter models: every bad value names its parameter; defaults are valid."""
from __future__ import annotations

import pytest

from vlmxplain import models as vxmod
from vlmxplain import params as vxp
from vlmxplain.core.specs import ClassifierSpec, DataSpec, JudgeSpec


def test_defaults_are_valid_and_normalised():
    p = vxp.PipelineParams.check()
    assert p.data == DataSpec("gallery") and p.cam == "gradcam" and p.alpha == 25.0 and p.beta == 0.6
    assert p.as_dict()["judge"] == "offline:faithfulness" and p.as_dict()["data"] == "gallery"
    assert vxp.PipelineParams.check(cam="GradCAM++").cam == "gradcam++"
    for name, model in vxp.NOTEBOOK_PARAMS.items():
        checked, defaults = model.check().as_dict(), model.defaults()
        if defaults.get("run_dir", "") is None:  # derived from the data, classifier and CAM
            assert checked.pop("run_dir").startswith(f"runs/{name}/"), name
            defaults.pop("run_dir")
        assert checked == defaults, name  # defaults validate to themselves


def test_default_run_dirs_differ_by_data():
    a, b = vxp.PipelineParams.check(data="shapes"), vxp.PipelineParams.check(data="gallery", limit=4)
    assert a.run_dir != b.run_dir and a.run_dir.startswith("runs/pipeline/shapes")
    assert vxp.PipelineParams.check(data="shapes", cam="layercam").run_dir != a.run_dir
    assert vxp.PipelineParams.check(data="shapes", run_dir="mine").run_dir == "mine"


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"alpha": 0}, "alpha"), ({"beta": 1.2}, "beta"), ({"beta": "x"}, "beta"), ({"alpha": True}, "alpha"),
        ({"cam": "gradkam"}, "cam"), ({"judge": "gpt4"}, "judge"), ({"judge": "offline"}, "judge"),
        ({"judge": "offline:nonsense"}, "judge"),
        ({"judge": "openai-compatible:qwen"}, "judge"), ({"threshold": 6}, "threshold"),
        ({"judge": "openai-compatible:qwen@http://user:secret@host:8000/v1"}, "judge"),
        ({"judge": "openai-compatible:qwen@http://host:8000/v1?key=secret"}, "judge"),
        ({"limit": 0}, "limit"), ({"limit": 2.5}, "limit"), ({"limit": True}, "limit"),
        ({"input_kind": "raw"}, "input_kind"),
        ({"data": "/no/such/folder"}, "data"), ({"data": "shapes:n=10,colour=red"}, "data"),
        ({"data": "shapes:n10"}, "data"), ({"run_dir": ""}, "run_dir"), ({"classifier": ""}, "classifier"),
        ({"classifier": "shortcut:1.5"}, "classifier"), ({"classifier": "/no/model.pt"}, "classifier"),
        ({"betta": 0.5}, "betta"),
        ({"max_cost": 5.0}, "max_cost"),  # the default judge is offline: it bills nothing
        ({"judge": "openai:gpt-4o-mini", "max_cost": 0}, "max_cost"),
        ({"judge": "openai:gpt-4o-mini", "max_cost": "lots"}, "max_cost"),
        ({"judge": "openai:gpt-4o-mini", "max_cost": True}, "max_cost"),
        ({"judge": "openai-compatible:qwen@http://127.0.0.1:8000/v1", "max_cost": 1.0}, "max_cost"),
        ({"order": "random"}, "order"), ({"order": 1}, "order"),
    ],
)
def test_bad_values_fail_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        vxp.PipelineParams.check(**kwargs)


def test_a_spending_cap_is_an_amount_for_a_billed_judge():
    p = vxp.PipelineParams.check(judge="gemini-batch:gemini-2.5-flash", max_cost=20)
    assert p.max_cost == 20.0 and isinstance(p.max_cost, float) and vxp.PipelineParams.check().max_cost is None
    assert vxp.PipelineParams.check().order == "shuffled" and vxp.PipelineParams.check(order="dataset").order == "dataset"


def test_unknown_parameter_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"^betta: unknown parameter \(did you mean 'beta'\?\)"):
        vxp.PipelineParams.check(betta=0.5)


def test_credentials_never_echoed_in_errors():
    with pytest.raises(ValueError) as err:
        vxp.PipelineParams.check(judge="openai-compatible:qwen@http://host:8000/v1?key=sk-SECRET123")
    assert "SECRET" not in str(err.value)


def test_every_notebook_takes_shortcut_classifiers_the_same_way():
    for name, model in vxp.NOTEBOOK_PARAMS.items():
        if "classifier" not in model.model_fields:
            continue
        assert model.check(classifier="shortcut:0.75").classifier == ClassifierSpec("shortcut", rate=0.75), name
        with pytest.raises(ValueError, match="^classifier"):
            model.check(classifier="shortcut:2")


def test_data_sources_load(tmp_path):
    assert len(vxp.load_data("gallery")) == 8
    ds = vxp.load_data("shapes:n=30,seed=2,shortcut_class=\"circle\",shortcut_rate=0.5", limit=10)
    assert len(ds) == 10 and ds.classes == ["circle", "square", "triangle"]
    (tmp_path / "cls_a").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        vxp.load_data(str(tmp_path))
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(ValueError, match="^data: .* not a .csv"):
        vxp.PipelineParams.check(data=str(tmp_path / "list.txt"))


def test_a_folder_named_like_a_builtin_set_is_a_folder(tmp_path, monkeypatch, photos):
    folder = tmp_path / "shapes_photos" / "cat"
    folder.mkdir(parents=True)
    photos["chelsea"].save(folder / "chelsea.jpg")
    monkeypatch.chdir(tmp_path)
    p = vxp.PipelineParams.check(data="shapes_photos")
    assert p.data.kind == "folder"
    ds = vxp.load_data(p.data)
    assert len(ds) == 1 and ds.classes == ["cat"]
    # and classifier="auto" for it is the photo model, not a ShapesNet
    assert DataSpec.parse("shapes_photos").kind == "folder"


def test_shapes_model_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMXPLAIN_MODELS", str(tmp_path))
    first = vxmod.shapes_model({"n": 120, "seed": 7}, epochs=1, progress=False)
    files = list(tmp_path.glob("shapesnet-*.pt"))
    assert len(files) == 1
    again = vxmod.shapes_model({"n": 120, "seed": 7}, epochs=1, progress=False)
    assert again.fingerprint == first.fingerprint


def test_judge_spec_types_are_shared():
    p = vxp.PipelineParams.check(judge="openai-compatible:qwen2.5-vl@http://127.0.0.1:11434/v1")
    assert p.judge == JudgeSpec("openai-compatible", "qwen2.5-vl", "http://127.0.0.1:11434/v1")
