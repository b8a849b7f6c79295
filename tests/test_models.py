"""The models people have, offline: torchvision and timm architectures with checkpoint=,
num_classes= and class names; transformers image classifiers from a saved folder (logits from
the output object, token layer and reshape found automatically); random weights said loudly."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import vlmxplain as vx
from vlmxplain.core import catalog
from vlmxplain.core.specs import ClassifierSpec
from vlmxplain.models.sources import RandomWeightsWarning
from vlmxplain.params import PipelineParams


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))


def test_catalog_lists_exactly_what_the_libraries_register():
    import timm
    import torchvision

    assert catalog.timm_model_names() == frozenset(timm.list_models())
    assert catalog.torchvision_model_names() == frozenset(torchvision.models.list_models(module=torchvision.models))


def test_torchvision_random_weights_warn_and_a_checkpoint_does_not(tmp_path, picture):
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        first = vx.load_classifier('torchvision:resnet18,num_classes=3,classes=["cat","dog","fox"]')
    assert first.class_names == ["cat", "dog", "fox"] and first.target_layer_name == "layer4"
    assert first.meta["random_weights"] is True
    path = tmp_path / "rn18.pth"
    torch.save(first.model.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        again = vx.resolve_classifier(f"torchvision:resnet18,num_classes=3,checkpoint={path}")
    assert again.meta["random_weights"] is False
    assert np.allclose(again.predict_proba([picture]), first.predict_proba([picture]), atol=1e-5)
    rebuilt = vx.resolve_classifier(again.meta["spec"])  # the run record rebuilds the same model
    assert rebuilt.fingerprint == again.fingerprint
    assert vx.compute_cams(again, [picture], "gradcam").maps.shape == (1, 7, 7)


def test_timm_checkpoint_class_file_and_a_wrong_num_classes(tmp_path):
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=4)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    names = tmp_path / "names.txt"
    names.write_text("ant\nbee\n\ncow\ndeer\n")
    clf = vx.load_classifier(f"resnet18,checkpoint={path},classes={names}")
    assert clf.class_names == ["ant", "bee", "cow", "deer"] and clf.num_classes == 4
    with pytest.raises(ValueError, match="does not fit the model.*num_classes"):
        vx.load_classifier("resnet18", checkpoint=path, num_classes=7)
    with pytest.raises(ValueError, match="closest: resnet50"):
        vx.load_classifier("resnet999")


@pytest.mark.parametrize(
    "value,message",
    [
        ("torchvision:resnet999", "torchvision has no model 'resnet999' (did you mean 'resnet50'?)"),
        ("torchvison:resnet18", "did you mean 'torchvision:resnet18'?"),
        ("resnet18,num_clases=3", "did you mean 'num_classes'?"),
        ("resnet18,checkpoint=/no/such.pth", "no checkpoint file at '/no/such.pth'"),
        ('resnet18,num_classes=2,classes=["a"]', "num_classes=2 but 1 classes are named"),
    ],
)
def test_bad_classifier_specs_fail_before_anything_is_built(value, message):
    with pytest.raises(ValueError, match="^classifier: ") as err:
        PipelineParams.check(classifier=value)
    assert message in str(err.value)


def test_classifier_spec_options_round_trip():
    for text in ["resnet18", "torchvision:resnet18,num_classes=3", 'hf:/m,classes=["a", "b"]',
                 "torchvision:vgg11,checkpoint=w.pth,num_classes=2"]:
        spec = ClassifierSpec.parse(text)
        assert ClassifierSpec.parse(str(spec)) == spec
    assert ClassifierSpec.parse("m.pth").kind == "checkpoint"  # a ShapesNet checkpoint stays one


def test_wrong_class_names_suggest_the_closest(lite0, tmp_path, photos):
    (tmp_path / "labrador").mkdir()
    photos["coffee"].save(tmp_path / "labrador" / "x.png")
    with pytest.raises(ValueError, match="'labrador': closest 'Labrador retriever'"):
        vx.explain(lite0, vx.datasets.folder(tmp_path), run_dir=tmp_path / "run", progress=False, cache=False,
                   verbose=False)


def _transformers():
    return pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")


def _tiny(kind: str, folder):
    transformers = _transformers()
    if kind == "vit":
        cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_labels=3,
                                     id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})
        model = transformers.ViTForImageClassification(cfg)
    elif kind == "swin":
        cfg = transformers.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                      window_size=4, num_labels=3)
        model = transformers.SwinForImageClassification(cfg)
    else:
        cfg = transformers.ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_labels=3, image_size=64)
        model = transformers.ConvNextForImageClassification(cfg)
    torch.manual_seed(0)
    model.save_pretrained(folder)
    return model.eval()


@pytest.mark.parametrize("kind,layer,grid", [("vit", "layernorm_before", (4, 4)), ("swin", "layernorm_before", (8, 8)),
                                             ("convnext", "stages.3", (2, 2))])
def test_transformers_folder_logits_layer_and_cams(tmp_path, picture, kind, layer, grid):
    original = _tiny(kind, tmp_path / kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)  # saved weights are not random
        clf = vx.load_classifier(f"hf:{tmp_path / kind}")
    assert clf.target_layer_name.endswith(layer) and clf.num_classes == 3
    if kind == "vit":
        assert clf.class_names == ["cat", "dog", "fox"]  # from the config's id2label
    x = clf.batch([picture])
    with torch.inference_mode():
        expected = original(pixel_values=x.contiguous()).logits
    assert torch.allclose(clf.model(x), expected, atol=1e-4)  # the logits of the output object
    maps = vx.compute_cams(clf, [picture], "gradcam").maps
    assert maps.shape == (1, *grid) and np.isfinite(maps).all()


def test_transformers_hub_ids_are_refused_offline():
    _transformers()
    with pytest.raises(ValueError, match="downloads nothing"):
        PipelineParams.check(classifier="hf:google/vit-base-patch16-224")
    with pytest.raises(ValueError, match="did you mean 'vit'"):
        PipelineParams.check(classifier="hf:vitt")
    assert catalog.hf_image_model_types() >= {"vit", "swin", "convnext", "deit", "beit"}


def test_a_foreign_state_dict_as_a_checkpoint_says_how_to_name_its_architecture(tmp_path):
    import timm

    path = tmp_path / "weights.pth"
    torch.save(timm.create_model("resnet18", pretrained=False, num_classes=2).state_dict(), path)
    with pytest.raises(ValueError, match=r"not a ShapesNet checkpoint.*'<timm name>,checkpoint="):
        vx.resolve_classifier(str(path))
    assert vx.resolve_classifier(f"resnet18,checkpoint={path},num_classes=2").num_classes == 2
