"""CAM extraction: equality with pytorch-grad-cam's own output, hooks/flags hygiene, batching."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import vlmxplain as vx
from vlmxplain.cams import CAM_METHODS, CostlyMethodWarning, get_cam_method

# Our raw map, upsampled and normalised the way grad-cam does, must match grad-cam's own
# output to float32 rounding (grad-cam re-normalises once more with a 1e-7 epsilon).
TOL = 1e-4


def reference_maps(clf, images, method_name, targets):
    """pytorch-grad-cam used as its README shows (full model, its own forward)."""
    spec = get_cam_method(method_name)
    x = clf.batch(images)
    cls = spec.cls
    with cls(model=clf.model, target_layers=[clf.target_layer], reshape_transform=clf.reshape_transform) as cam:
        for key, value in spec.options.items():
            setattr(cam, key, value)
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def ours_upsampled(result, size):
    """Our public saliency(): what masks and overlays are built from."""
    return np.stack([vx.saliency(m, size) for m in result.maps])


class TinyCNN(nn.Module):
    """Small enough that even ScoreCAM/AblationCAM (one forward per channel) are instant."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(12, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return vx.load_classifier(TinyCNN(), class_names=list("abcd"), input_size=32)


@pytest.fixture(scope="module")
def tiny_images():
    rng = np.random.default_rng(0)
    from PIL import Image

    return [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_every_method_matches_grad_cam_on_a_cnn(tiny, tiny_images, method):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostlyMethodWarning)
        ours = vx.compute_cams(tiny, tiny_images, method=method)
    assert ours.maps.shape == (3, 16, 16)
    ref = reference_maps(tiny, tiny_images, method, ours.targets)
    np.testing.assert_allclose(ours_upsampled(ours, (32, 32)), ref, atol=TOL)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam"])
def test_methods_match_grad_cam_on_pretrained_lite0(lite0, photos, method):
    images = list(photos.values())
    ours = vx.compute_cams(lite0, images, method=method, batch_size=2)
    assert ours.maps.shape == (3, 7, 7)
    ref = reference_maps(lite0, images, method, ours.targets)
    np.testing.assert_allclose(ours_upsampled(ours, (224, 224)), ref, atol=TOL)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return vx.load_classifier("vit_tiny_patch16_224")


@pytest.mark.parametrize("method", ["gradcam", "layercam", "eigencam"])
def test_methods_match_grad_cam_on_a_vit(vit, photos, method):
    images = list(photos.values())[:2]
    ours = vx.compute_cams(vit, images, method=method)
    assert ours.maps.shape == (2, 14, 14)
    ref = reference_maps(vit, images, method, ours.targets)
    np.testing.assert_allclose(ours_upsampled(ours, (224, 224)), ref, atol=TOL)


def test_prediction_comes_from_the_same_forward_and_matches_plain_inference(lite0, photos):
    images = list(photos.values())
    res = vx.compute_cams(lite0, images)
    probs = lite0.predict_proba(images)
    np.testing.assert_array_equal(res.predictions, probs.argmax(1))
    np.testing.assert_allclose(res.confidences, probs.max(1), rtol=1e-5)
    np.testing.assert_array_equal(res.targets, res.predictions)
    assert res.top_classes.shape == (3, 5) and res.top_classes[:, 0].tolist() == res.predictions.tolist()


def test_explicit_target_changes_the_map_but_not_the_prediction(lite0, photos):
    cat = photos["chelsea"]
    default = vx.compute_cams(lite0, [cat])
    other = vx.compute_cams(lite0, [cat], targets=[967])  # espresso
    assert other.targets[0] == 967 and other.predictions[0] == default.predictions[0]
    assert not np.allclose(other.maps[0], default.maps[0])


def test_batching_does_not_change_results(lite0, photos):
    images = list(photos.values())
    one = vx.compute_cams(lite0, images, batch_size=1)
    many = vx.compute_cams(lite0, images, batch_size=3)
    np.testing.assert_allclose(one.maps, many.maps, rtol=1e-4, atol=1e-5)
    assert one.ids == many.ids


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_no_hooks_remain_and_requires_grad_restored_after_many_calls_including_errors(tiny, tiny_images):
    model = tiny.model
    model.zero_grad(set_to_none=True)  # the grad-cam reference runs above leave grads behind
    model.fc.weight.requires_grad_(False)  # a user's own mix of frozen/unfrozen params must survive
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    hooks_before = _hook_count(model)
    for i in range(20):
        vx.compute_cams(tiny, tiny_images, method=["gradcam", "layercam", "eigencam", "hirescam"][i % 4])
    with pytest.raises(ValueError, match="targets"):
        vx.compute_cams(tiny, tiny_images, targets=[0, 99, 1])

    def explode(module, args, output):
        raise RuntimeError("boom in the head")

    bomb = model.fc.register_forward_hook(explode)  # fails mid-forward, after our hooks are in place
    try:
        for method in ("gradcam", "eigencam", "scorecam"):
            with pytest.raises(RuntimeError, match="boom"), pytest.warns() if method == "scorecam" else nullcontext():
                vx.compute_cams(tiny, tiny_images, method=method)
    finally:
        bomb.remove()
    assert _hook_count(model) == hooks_before
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert all(p.grad is None for p in model.parameters())
    model.fc.weight.requires_grad_(True)


def test_unknown_method_and_bad_arguments_are_clear(tiny, tiny_images):
    with pytest.raises(ValueError, match="unknown CAM method 'gradkam'.*gradcam"):
        vx.compute_cams(tiny, tiny_images, method="gradkam")
    with pytest.raises(ValueError, match="batch_size"):
        vx.compute_cams(tiny, tiny_images, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        vx.compute_cams(tiny, [])
    with pytest.raises(TypeError, match="item 0"):
        vx.compute_cams(tiny, ["not an image"])


def test_costly_methods_warn(tiny, tiny_images):
    with pytest.warns(CostlyMethodWarning, match="one forward pass per"):
        vx.compute_cams(tiny, tiny_images[:1], method="scorecam")


def test_grad_cam_objects_are_built_once_per_model_without_keeping_it_alive_or_leaking_options(tiny_images,
                                                                                              monkeypatch):
    import gc
    import weakref

    from vlmxplain.cams import extract

    torch.manual_seed(1)
    clf = vx.load_classifier(TinyCNN(), class_names=list("abcd"), input_size=32)
    built = []
    cls = get_cam_method("scorecam").cls
    constructor = cls.__init__
    monkeypatch.setattr(cls, "__init__", lambda self, *a, **k: built.append(1) or constructor(self, *a, **k))
    first = vx.compute_cams(clf, tiny_images, method="scorecam", method_options={"batch_size": 3})
    again = vx.compute_cams(clf, tiny_images, method="scorecam")  # the option above must not stick
    assert len(built) == 1
    np.testing.assert_allclose(first.maps, again.maps, rtol=1e-5, atol=1e-6)  # batch size never changes a map
    state = extract._CAM_STATES[clf.model][("scorecam", get_cam_method("scorecam").cls, "cpu")]
    assert "batch_size" not in state and "model" not in state and state["activations_and_grads"].model is None

    clf.model.train()  # a user's train() between calls: CAMs still come from the model in eval mode
    trained_mode = vx.compute_cams(clf, tiny_images, method="gradcam")
    assert not clf.model.training
    np.testing.assert_allclose(trained_mode.maps, vx.compute_cams(clf, tiny_images).maps)

    model = weakref.ref(clf.model)
    del clf, state
    gc.collect()
    assert model() is None  # the cache holds the model weakly
