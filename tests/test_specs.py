"""The one parser of each spec kind: typed objects whose str() round-trips."""
from __future__ import annotations

import pytest

from vlmxplain.core.specs import ClassifierSpec, DataSpec, JudgeSpec

DATA = ["gallery", "shapes", "shapes:n=300,seed=1", "shapes:shortcut_class=circle,shortcut_rate=0.5",
        "shapes:classes=[\"circle\", \"square\"],n=30", "photos/", "shapes_photos", "list.csv", "./shapes"]
CLASSIFIERS = ["auto", "efficientnet_lite0", "shortcut:0.75", "shortcut:1:square", "resnet18", "model.pth",
               "runs/shapesnet.pt"]
JUDGES = ["offline:faithfulness", "offline:groundtruth", "openai:gpt-4o-mini", "gemini:gemini-2.5-flash",
          "openai-compatible:qwen2.5-vl@http://localhost:11434/v1"]


@pytest.mark.parametrize("text", DATA)
def test_data_specs_round_trip(text):
    spec = DataSpec.parse(text)
    assert DataSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", CLASSIFIERS)
def test_classifier_specs_round_trip(text):
    spec = ClassifierSpec.parse(text)
    assert ClassifierSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", JUDGES)
def test_judge_specs_round_trip(text):
    spec = JudgeSpec.parse(text)
    assert str(spec) == text and JudgeSpec.parse(str(spec)) == spec


def test_kinds():
    assert DataSpec.parse("shapes_photos").kind == "folder"
    assert DataSpec.parse("shapes").kind == "shapes" and DataSpec.parse("./shapes").kind == "folder"
    assert DataSpec.parse("x/list.CSV").kind == "csv"
    assert DataSpec.parse("shapes:n=5,seed=2").shapes_options == {"n": 5, "seed": 2}
    assert ClassifierSpec.parse("tf_efficientnet_lite0").kind == "efficientnet_lite0"
    assert ClassifierSpec.parse("timm:resnet18") == ClassifierSpec.parse("resnet18")
    s = ClassifierSpec.parse("shortcut:0.25:triangle")
    assert (s.kind, s.rate, s.shortcut_class) == ("shortcut", 0.25, "triangle")
    assert JudgeSpec.parse("OpenAI:gpt-4o").provider == "openai"


@pytest.mark.parametrize("kind,text,match", [
    (DataSpec, "", "data"), (DataSpec, "shapes:n", "data"), (DataSpec, "shapes:1x=2", "data"),
    (ClassifierSpec, "shortcut:x", "classifier"), (ClassifierSpec, "shortcut:0.5:hexagon", "classifier"),
    (ClassifierSpec, "a b", "classifier"),
    (JudgeSpec, "nope", "judge"), (JudgeSpec, "claude:x", "judge"), (JudgeSpec, "openai:", "judge"),
    (JudgeSpec, "openai-compatible:m@ftp://x", "judge"), (JudgeSpec, "openai-compatible:m@http://u:p@h/v1", "judge"),
    (JudgeSpec, "openai-compatible:m@http://h/v1#token", "judge"),
])
def test_bad_specs_name_their_kind(kind, text, match):
    with pytest.raises(ValueError, match=f"^{match}"):
        kind.parse(text)
