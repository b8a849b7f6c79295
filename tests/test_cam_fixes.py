"""Where vlmxplain departs from pytorch-grad-cam on purpose: EigenCAM's orientation, AblationCAM on
token layers, GradCAM++'s epsilon; and maps without attention never reach a judge."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from pytorch_grad_cam.grad_cam_plusplus import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

import vlmxplain as vx
from vlmxplain.cams.methods import FastEigenCAM, ScaledGradCAMPlusPlus, StreamingScoreCAM


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _two_pattern_activations(rng, n=40, c=32, hw=7):
    """ReLU'd feature maps mixing two spatial patterns (like real feature maps)."""
    out = []
    for _ in range(n):
        p1, p2 = np.abs(rng.normal(size=(2, hw, hw)))
        l1 = np.abs(rng.normal(size=(c, 1, 1)))
        l2 = np.abs(rng.normal(size=(c, 1, 1))) * (rng.random((c, 1, 1)) < 0.5) * 3
        out.append(np.maximum(l1 * p1 + l2 * p2 - 1.0, 0))
    return np.float32(out)


def test_eigencam_points_with_the_activations_where_upstream_may_point_away():
    acts = _two_pattern_activations(np.random.default_rng(0))
    ours = FastEigenCAM.get_cam_image(None, None, None, None, acts, None, False)
    upstream = get_2d_projection(acts)
    mean_act = acts.mean(axis=1)
    assert sum(_corr(u, m) < 0 for u, m in zip(upstream, mean_act)) >= 10  # the SVD's arbitrary sign
    assert all(_corr(o, m) > 0.5 for o, m in zip(ours, mean_act))
    assert all(np.allclose(np.abs(o), np.abs(u), atol=1e-3) for o, u in zip(ours, upstream))  # same axis


@pytest.mark.parametrize("positions,channels", [(49, 1280), (784, 64), (196, 192)])
def test_first_principal_projection_equals_the_svd_projection_for_wide_and_tall_maps(positions, channels):
    from vlmxplain.cams.methods import first_principal_projection

    rng = np.random.default_rng(positions)
    flat = rng.normal(size=(positions, channels)) + 3 * np.outer(rng.normal(size=positions), rng.random(channels))
    flat -= flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    reference = flat @ vt[0]
    ours = first_principal_projection(np.float32(flat))
    np.testing.assert_allclose(np.abs(ours), np.abs(reference), rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    assert abs(np.corrcoef(ours, reference)[0, 1]) > 0.9999  # one axis, either sign


def _gradcam_pp_paper(acts, grads):
    """Chattopadhay et al. eq. 19 in float64, no epsilon."""
    acts, grads = np.float64(acts), np.float64(grads)
    g2 = grads ** 2
    denom = 2 * g2 + acts.sum(axis=(2, 3), keepdims=True) * g2 * grads
    aij = np.divide(g2, denom, out=np.zeros_like(g2), where=(grads != 0) & (denom != 0))
    return (np.maximum(grads, 0) * aij).sum(axis=(2, 3))


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-5])
def test_gradcam_pp_weights_follow_the_paper_at_any_gradient_scale(scale):
    rng = np.random.default_rng(1)
    acts = np.float32(np.abs(rng.normal(size=(2, 16, 7, 7))))
    grads = np.float32(rng.normal(size=(2, 16, 7, 7)) * 0.1 * scale)
    paper = _gradcam_pp_paper(acts, grads)
    ours = ScaledGradCAMPlusPlus.get_cam_weights(None, None, None, None, acts, grads)
    np.testing.assert_allclose(ours, paper, rtol=1e-3, atol=1e-12 * scale)
    upstream = GradCAMPlusPlus.get_cam_weights(None, None, None, None, acts, grads)
    if scale == 1.0:  # ordinary gradients: upstream's fixed eps is negligible, as is ours
        np.testing.assert_allclose(upstream, paper, rtol=1e-2)
    else:  # tiny gradients: the fixed eps dominates upstream's denominator
        rel = np.abs(upstream - paper).max() / np.abs(paper).max()
        assert rel > 0.1


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return vx.load_classifier("vit_tiny_patch16_224")


@pytest.mark.slow
def test_ablationcam_runs_on_a_vit_and_equals_grad_cams_with_its_vit_layer(vit, photos):
    image = photos["chelsea"]
    options = {"batch_size": 64, "ratio_channels_to_ablate": 0.25}
    ours = vx.compute_cams(vit, [image], method="ablationcam", method_options=options)
    assert ours.maps.shape == (1, 14, 14) and np.isfinite(ours.maps).all() and ours.maps.max() > 0
    with AblationCAM(model=vit.model, target_layers=[vit.target_layer], reshape_transform=vit.reshape_transform,
                     ablation_layer=AblationLayerVit(), **options) as cam:
        ref = cam(input_tensor=vit.batch([image]), targets=[ClassifierOutputTarget(int(ours.targets[0]))])
    np.testing.assert_allclose(vx.saliency(ours.maps[0], (224, 224)), ref[0], atol=1e-3)


@pytest.mark.parametrize("batch_size", [5, 64])
def test_streaming_scorecam_gives_upstreams_weights_without_materialising_every_masked_input(tiny_clf, batch_size):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(np.float32(rng.random((2, 3, 64, 64))))
    model = tiny_clf.model.eval()
    with torch.no_grad():
        acts = {}
        hook = tiny_clf.target_layer.register_forward_hook(lambda m, a, o: acts.update(a=o.numpy()))
        model(x)
        hook.remove()
    targets = [ClassifierOutputTarget(0), ClassifierOutputTarget(2)]
    upstream = ScoreCAM(model=model, target_layers=[tiny_clf.target_layer])
    ours = StreamingScoreCAM(model=model, target_layers=[tiny_clf.target_layer])
    upstream.batch_size = ours.batch_size = batch_size
    for cam in (upstream, ours):
        cam.activations_and_grads.release()
    ref = upstream.get_cam_weights(x, None, targets, acts["a"], None)
    got = ours.get_cam_weights(x, None, targets, acts["a"], None)
    assert acts["a"].shape[1] > batch_size or batch_size == 64  # several chunks in the first case
    assert got.shape == ref.shape == acts["a"].shape[:2]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert not np.allclose(got[0], got[1])  # two targets, two different weightings: the test can fail


# ----------------------------------------------------------------------------- no attention
class _Net(torch.nn.Module):
    def __init__(self, dead: bool) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(8, 3)
        if dead:  # the target layer outputs zeros everywhere: every CAM is blank
            torch.nn.init.zeros_(self.features[0].weight)
            torch.nn.init.constant_(self.features[0].bias, -1.0)

    def forward(self, x):
        return self.fc(self.features(x).amax(dim=(2, 3)))


@pytest.mark.parametrize("dead", [True, False])
def test_a_map_without_attention_is_recorded_and_never_sent_to_a_judge(dead, loopback_server, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))
    torch.manual_seed(0)
    clf = vx.load_classifier(_Net(dead), class_names=["circle", "square", "triangle"], input_size=32)
    data = vx.datasets.shapes(4, seed=3)
    run = vx.explain(clf, data, judge="openai:gpt-4o-mini", run_dir=tmp_path / "run", progress=False,
                     verbose=False, judge_options={"base_url": loopback_server.openai_base_url})
    status = run.table["judge_status"]
    if dead:
        assert (status == "no_attention").all() and run.table["score"].isna().all()
        assert loopback_server.requests == []
        assert run.table["error"].str.contains("no contrast").all()
    else:  # the control: a live model's maps are judged
        assert (status == "ok").all() and len(loopback_server.requests) == 4
