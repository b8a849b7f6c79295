"""Classifier loading: the offline pretrained model, timm names, custom modules, target layers."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

import vlmxplain as vx
from vlmxplain.models.classifiers import ChannelsLastToFirst, TokensToGrid, _lukemelas_to_timm


def test_offline_lite0_loads_strictly_and_classifies(lite0, photos):
    assert lite0.name == "efficientnet_lite0" and lite0.num_classes == 1000
    assert lite0.target_layer_name == "bn2" and lite0.input_size == (224, 224)
    assert not lite0.model.training
    top = lite0.top_k(photos["chelsea"], 1)[0]
    assert "cat" in top[1]
    assert lite0.top_k(photos["coffee"], 1)[0][1] == "espresso"
    assert lite0.top_k(photos["camera"], 1)[0][1] == "tripod"


def test_lukemelas_key_mapping_covers_every_stage():
    assert _lukemelas_to_timm("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert _lukemelas_to_timm("_blocks.1._expand_conv.weight") == "blocks.1.0.conv_pw.weight"
    assert _lukemelas_to_timm("_blocks.15._bn2.bias") == "blocks.6.0.bn3.bias"
    assert _lukemelas_to_timm("_blocks.14._bn1.weight") == "blocks.5.3.bn2.weight"
    assert _lukemelas_to_timm("_fc.weight") == "classifier.weight"


@pytest.mark.parametrize(
    "name,layer,reshape",
    [
        ("resnet18", "layer4", None),
        ("vit_tiny_patch16_224", "blocks.11.norm1", TokensToGrid),
        ("deit_tiny_distilled_patch16_224", "blocks.11.norm1", TokensToGrid),
        ("swin_tiny_patch4_window7_224", "layers.3.blocks.1.norm1", ChannelsLastToFirst),
        ("maxvit_tiny_tf_224", "stages", None),
        ("convnext_atto", "stages", None),
    ],
)
def test_target_layer_found_for_timm_families(name, layer, reshape):
    clf = vx.load_classifier(name)
    assert clf.target_layer_name == layer
    assert (clf.reshape_transform is None) if reshape is None else isinstance(clf.reshape_transform, reshape)
    if name.startswith("deit"):
        assert clf.reshape_transform.prefix_tokens == 2  # class + distillation token
    cams = vx.compute_cams(clf, [Image.new("RGB", (64, 48), (90, 30, 200))])
    assert cams.maps.ndim == 3 and cams.maps.shape[1] >= 7


def test_timm_checkpoint_is_loaded(tmp_path):
    clf = vx.load_classifier("resnet18", num_classes=3)
    torch.nn.init.constant_(clf.model.fc.bias, 0.0)
    clf.model.fc.bias.data[2] = 50.0
    ckpt = tmp_path / "r18.pth"
    torch.save(clf.model.state_dict(), ckpt)
    again = vx.load_classifier("resnet18", num_classes=3, checkpoint=ckpt, class_names=["a", "b", "c"])
    assert again.top_k(Image.new("RGB", (32, 32)), 1)[0][1] == "c"
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        vx.load_classifier("resnet18", checkpoint=tmp_path / "missing.pth")


def test_custom_module_and_clear_errors():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x).amax((2, 3)))

    clf = vx.load_classifier(Net(), class_names=["cat", "dog"], input_size=64)
    assert clf.target_layer_name == "body" and clf.input_size == (64, 64)
    assert vx.load_classifier(Net(), class_names=["cat", "dog"], target_layer="body.0").target_layer_name == "body.0"
    with pytest.raises(ValueError, match="class_names: required"):
        vx.load_classifier(Net())
    with pytest.raises(ValueError, match="class_names: the model has 2 outputs"):
        vx.load_classifier(Net(), class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="no submodule 'nope'"):
        vx.load_classifier(Net(), class_names=["cat", "dog"], target_layer="nope")
    with pytest.raises(ValueError, match="timm has no model 'resnet_nope'; closest: "):
        vx.load_classifier("resnet_nope")

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))

    with pytest.raises(ValueError, match="could not find a layer with a spatial"):
        vx.load_classifier(Flat(), class_names=["a", "b"])


def test_fingerprint_tracks_weights():
    a = vx.load_classifier("resnet18", num_classes=2, class_names=["x", "y"])
    fp = a.fingerprint
    b = vx.load_classifier("resnet18", num_classes=2, class_names=["x", "y"])
    with torch.no_grad():
        b.model.fc.bias.add_(1.0)
    assert len(fp) == 16 and b.fingerprint != fp


def test_gallery_clear_cases_right_and_labels_stay_honest(lite0):
    data = vx.datasets.gallery()
    cams = vx.compute_cams(lite0, data)
    pred = {sid: int(p) for sid, p in zip(cams.ids, cams.predictions)}
    truth = {data.ids[i]: set(data.ref(i).targets) for i in range(len(data))}
    for clear in ("chelsea", "coffee", "motorcycle", "camera"):
        assert pred[clear] in truth[clear], (clear, lite0.class_names[pred[clear]])
    assert lite0.class_names[pred["coffee"]] == "espresso"
    assert {lite0.class_names[t] for t in truth["grace_hopper"]} == {"military uniform"}
    # the gallery keeps genuine mistakes: the rocket is not called a missile or projectile
    assert pred["rocket"] not in truth["rocket"]
