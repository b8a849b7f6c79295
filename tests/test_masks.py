"""Mask math: the sigmoid, normalisation, masked images, overlays, parameter errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vlmxplain as vx
from vlmxplain.masks import apply_mask, image_mask, kept_share, normalize, side_by_side, validate_mask_params

V = np.linspace(0, 1, 101, dtype=np.float32)


def test_sigmoid_is_half_at_beta_and_monotone_in_v():
    for beta in (0.0, 0.3, 0.6, 1.0):
        m = vx.sigmoid_mask(V, alpha=25, beta=beta)
        assert np.all(np.diff(m) >= 0)  # monotone (saturates to exactly 1.0 in float32)
        near = np.abs(V[1:] - beta) < 0.15
        assert np.all(np.diff(m)[near] > 0)  # strictly increasing around beta
        assert vx.sigmoid_mask(np.float32(beta), 25, beta) == pytest.approx(0.5)


def test_sigmoid_matches_formula_and_limits():
    m = vx.sigmoid_mask(V, alpha=25, beta=0.6)
    np.testing.assert_allclose(m, 1 / (1 + np.exp(25 * (0.6 - V))), rtol=1e-5)
    steep = vx.sigmoid_mask(np.array([0.0, 0.59, 0.61, 1.0]), alpha=1e6, beta=0.6)
    np.testing.assert_allclose(steep, [0, 0, 1, 1], atol=1e-6)  # alpha -> inf: a hard threshold
    assert not np.isnan(steep).any()
    gentle = vx.sigmoid_mask(V, alpha=1e-3, beta=0.6)
    np.testing.assert_allclose(gentle, 0.5, atol=1e-3)  # alpha -> 0: flat at 0.5


def test_higher_beta_keeps_less():
    v = normalize(np.random.default_rng(0).random((32, 32)))
    shares = [kept_share(vx.sigmoid_mask(v, 25, b)) for b in (0.2, 0.4, 0.6, 0.8)]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[-1] + 0.3


@pytest.mark.parametrize(
    "alpha,beta,name",
    [(0, 0.6, "alpha"), (-1, 0.6, "alpha"), (float("nan"), 0.6, "alpha"), (float("inf"), 0.6, "alpha"),
     (25, -0.1, "beta"), (25, 1.5, "beta"), (25, float("nan"), "beta"), ("x", 0.6, "alpha"), (25, "x", "beta"), (True, 0.6, "alpha")],
)
def test_bad_parameters_name_the_parameter(alpha, beta, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        validate_mask_params(alpha, beta)


def test_constant_map_is_defined_never_nan():
    for raw in (np.zeros((7, 7)), np.full((7, 7), 3.0), np.full((7, 7), np.nan)):
        v = vx.saliency(raw, (50, 40))
        assert v.shape == (40, 50) and not np.isnan(v).any() and v.max() == 0
        assert not np.isnan(vx.sigmoid_mask(v)).any()


def test_saliency_upsamples_to_image_size_and_spans_0_1():
    raw = np.zeros((7, 7), np.float32)
    raw[1, 5] = 4.0
    v = vx.saliency(raw, (300, 200))
    assert v.shape == (200, 300) and v.min() == 0 and v.max() == pytest.approx(1)
    y, x = np.unravel_index(np.argmax(v), v.shape)
    assert 200 * 1 / 7 <= y <= 200 * 2 / 7 and 300 * 5 / 7 <= x <= 300 * 6 / 7  # the peak lands in its cell


def test_masked_image_keeps_the_hot_region_and_darkens_the_rest():
    img = Image.new("RGB", (70, 70), (200, 150, 100))
    raw = np.zeros((7, 7), np.float32)
    raw[0, 0] = 1.0
    out = vx.masked_image(img, raw, alpha=25, beta=0.6)
    arr = np.asarray(out)
    assert out.size == img.size and out.mode == "RGB"
    assert tuple(arr[0, 0]) == pytest.approx((200, 150, 100), abs=2)
    assert arr[60, 60].max() <= 1
    m = image_mask(img, raw)
    assert np.asarray(apply_mask(img, m)).tolist() == arr.tolist()
    with pytest.raises(ValueError, match="mask"):
        apply_mask(img, m[:10])


def test_overlay_blends_a_heat_map():
    img = Image.new("RGB", (64, 48), (128, 128, 128))
    raw = np.arange(49, dtype=np.float32).reshape(7, 7)
    ovl = np.asarray(vx.overlay(img, raw, opacity=0.5)).astype(int)
    assert ovl.shape == (48, 64, 3)
    assert ovl[-1, -1, 0] > ovl[-1, -1, 2]  # hot corner: red in jet
    assert ovl[0, 0, 2] > ovl[0, 0, 0]  # cold corner: blue
    assert np.asarray(vx.overlay(img, raw, opacity=0.0)).tolist() == np.asarray(img).tolist()
    with pytest.raises(ValueError, match="opacity"):
        vx.overlay(img, raw, opacity=2)


def test_thumbnail_and_side_by_side():
    img = Image.new("RGB", (400, 200))
    assert vx.thumbnail(img, 100).size == (100, 50)
    both = side_by_side(img, Image.new("RGB", (100, 100)), gap=4)
    assert both.size == (400 + 200 + 4, 200)


def test_judge_input_draws_its_overlay_only_when_read_and_equal_to_overlay():
    from vlmxplain.masks.judge_input import JudgeInput, make_judge_input

    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    raw = rng.random((7, 7)).astype(np.float32)
    item = make_judge_input("s", img, {"map": raw, "prediction": 1, "confidence": 0.7}, 25, 0.6, ["a", "b"])
    assert item.__dict__.get("_overlay") is None  # a masked-image judge never pays for it
    drawn = item.overlay
    assert np.array_equal(np.asarray(drawn), np.asarray(vx.overlay(img, raw))) and item.overlay is drawn
    manual = JudgeInput("m", img, item.masked, item.saliency, item.mask, 1, "b", 0.7, overlay=img)
    assert manual.overlay is img
    reference = np.clip(np.asarray(img, np.float32) * item.mask[..., None] + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(item.masked), reference)  # the in-place product: the same pixels
    with pytest.raises(ValueError, match="overlay= or raw_map="):
        JudgeInput("x", img, item.masked, item.saliency, item.mask, 1, "b", 0.7)
