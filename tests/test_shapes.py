"""Tests for the synthetic shapes set: masks, planted shortcut, label noise, determinism, laziness."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from vlmxplain import datasets as D

RED = np.array([255, 0, 0])


def pixels(sample) -> np.ndarray:
    return np.asarray(sample.image).astype(int)


def red_block(sample, box) -> bool:
    x0, y0, x1, y1 = box
    return bool((pixels(sample)[y0:y1, x0:x1] == RED).all())


def test_masks_align_with_the_drawn_objects():
    data = D.shapes(60)
    for s in data:
        a, m = pixels(s), s.mask
        assert m.dtype == bool and m.shape == (64, 64)
        assert 0.02 < m.mean() < 0.45, (s.id, m.mean())
        fg, bg = np.array(s.meta["foreground"]), np.array(s.meta["background"])
        d_fg = np.linalg.norm(a - fg, axis=2)
        d_bg = np.linalg.norm(a - bg, axis=2)
        # every object pixel is nearer the object colour, every background pixel nearer the background
        assert (d_fg[m] < d_bg[m]).mean() > 0.99 and (d_bg[~m] < d_fg[~m]).mean() > 0.97
        assert np.linalg.norm(a[m].mean(0) - a[~m].mean(0)) > 80
        x0, y0, x1, y1 = s.meta["object_box"]
        assert m[y0:y1, x0:x1].any() and not m[:y0].any() and not m[y1:].any()
        assert s.label == s.meta["shape"] == data.classes[s.targets[0]]


def test_class_balance_and_other_shapes():
    data = D.shapes(30, classes=D.SHAPE_NAMES)
    assert data.classes == list(D.SHAPE_NAMES)
    assert [data.ref(i).label for i in range(5)] == list(D.SHAPE_NAMES)
    areas = {}
    for s in data:
        areas.setdefault(s.label, []).append(s.mask.mean())
    assert areas["circle"] and min(np.mean(v) for v in areas.values()) > 0.03


def test_shortcut_rate_and_placement_on_the_class_only():
    data = D.shapes(450, shortcut_class="circle", shortcut_rate=0.5)
    dotted = {"circle": 0, "square": 0, "triangle": 0}
    for s in data:
        box = s.meta["shortcut_box"]
        if s.meta["shortcut"]:
            dotted[s.label] += 1
            assert box == (2, 2, 7, 7) and red_block(s, box) and not s.mask[2:7, 2:7].any()
        else:
            assert box is None and not red_block(s, (2, 2, 7, 7))
    assert dotted["square"] == dotted["triangle"] == 0
    assert 0.38 <= dotted["circle"] / 150 <= 0.62


@pytest.mark.parametrize("position, expected", [
    ("bottom-right", (57, 57, 62, 62)), ("top-right", (57, 2, 62, 7)), ((30, 40), (30, 40, 35, 45)),
])
def test_shortcut_positions(position, expected):
    data = D.shapes(6, shortcut_on="all", shortcut_position=position)
    for s in data:
        assert s.meta["shortcut_box"] == expected and red_block(s, expected)
        x0, y0, x1, y1 = expected
        assert not s.mask[y0:y1, x0:x1].any()  # the mask is the visible object


def test_random_positions_stay_inside_and_off_the_object():
    data = D.shapes(60, shortcut_on="all", shortcut_position="random", shortcut_size=4)
    boxes = set()
    for s in data:
        x0, y0, x1, y1 = box = s.meta["shortcut_box"]
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and (x1 - x0, y1 - y0) == (4, 4)
        assert red_block(s, box) and not s.mask[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1].any()
        boxes.add(box)
    assert len(boxes) > 30
    corners = {D.shapes(40, shortcut_on="all", shortcut_position="random-corner")[i].meta["shortcut_box"]
               for i in range(40)}
    assert corners == {(2, 2, 7, 7), (57, 2, 62, 7), (2, 57, 7, 62), (57, 57, 62, 62)}


def test_clean_and_counterfactual_splits_pair_image_by_image():
    clean = D.shapes(30, seed=3)
    others = D.shapes(30, seed=3, shortcut_class="circle", shortcut_on="others")
    assert [others[i].meta["shortcut"] for i in range(6)] == [False, True, True] * 2
    for i in range(30):
        a, b = pixels(clean[i]), pixels(others[i])
        box = others[i].meta["shortcut_box"]
        if box is not None:
            x0, y0, x1, y1 = box
            b[y0:y1, x0:x1] = a[y0:y1, x0:x1]
        assert np.array_equal(a, b) and np.array_equal(clean[i].mask, others[i].mask)
        assert not clean[i].meta["shortcut"]
    assert "dot-others-circle" in others.name and clean.name == "shapes-s3"


def test_label_noise_flips_at_the_rate_and_keeps_the_truth():
    data = D.shapes(900, label_noise=0.2, seed=5)
    flipped = 0
    for i in range(len(data)):
        ref = data.ref(i)
        true = ref.meta["true_label"]
        assert true == data.classes[i % 3]
        if ref.meta["label_flipped"]:
            flipped += 1
            assert ref.label != true
        else:
            assert ref.label == true
        assert ref.targets == (data.classes.index(ref.label),)
    assert 0.16 <= flipped / 900 <= 0.24
    s = data[7]
    assert (s.label, s.targets, s.meta["true_label"]) == (data.ref(7).label, data.ref(7).targets,
                                                          data.ref(7).meta["true_label"])


def test_deterministic_by_seed_and_index():
    a, b, c = D.shapes(20, seed=1), D.shapes(20, seed=1), D.shapes(20, seed=2)
    for i in (0, 7, 19):
        assert np.array_equal(pixels(a[i]), pixels(b[i])) and np.array_equal(a[i].mask, b[i].mask)
        assert not np.array_equal(pixels(a[i]), pixels(c[i]))
    assert np.array_equal(pixels(D.shapes(10, seed=1)[3]), pixels(D.shapes(5000, seed=1)[3]))
    assert a[2:].config == a.config and a[2:].describe()["seed"] == 1  # views keep the configuration
    assert a.ids[:2] == ["shapes-00000", "shapes-00001"] and a[5:8].ids == ["shapes-00005", "shapes-00006",
                                                                           "shapes-00007"]


def test_lazy_generation_is_bounded_in_memory():
    tracemalloc.start()
    try:
        data = D.shapes(5000, shortcut_class="circle", shortcut_rate=0.5, label_noise=0.1)
        s = data[4999]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.id == "shapes-04999" and s.image.size == (64, 64)
    # one image is ~0.1 MB of float64 work arrays; 5,000 images would be ~60 MB of pixels alone
    assert peak < 3_000_000, peak
    assert len(data) == 5000 and data.ref(4999).label == s.label


def test_to_tensors_matches_the_images():
    torch = pytest.importorskip("torch")
    data = D.shapes(24, label_noise=0.3)
    X, y = D.to_tensors(data)
    assert X.dtype == torch.float32 and y.dtype == torch.int64 and tuple(X.shape) == (24, 3, 64, 64)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
    for i in (0, 11, 23):
        s = data[i]
        assert np.allclose(X[i].numpy(), np.asarray(s.image).transpose(2, 0, 1) / 255.0)
        assert int(y[i]) == s.targets[0]
    mixed = D.from_list([(np.zeros((16, 16, 3), np.uint8), "a"), (np.zeros((16, 20, 3), np.uint8), "a")])
    with pytest.raises(ValueError, match="list-00001' is 20x16"):
        D.to_tensors(mixed)
    with pytest.raises(ValueError, match="has no label"):
        D.to_tensors(D.from_list([(np.zeros((16, 16, 3), np.uint8), None)], classes=["a"]))


@pytest.mark.parametrize("kwargs, match", [
    ({"classes": ("circle", "hexagon")}, "classes"),
    ({"shortcut_class": "star"}, "shortcut_class"),
    ({"shortcut_on": "others"}, "shortcut_class"),
    ({"shortcut_on": "everywhere"}, "shortcut_on"),
    ({"shortcut_on": "all", "shortcut_rate": 1.5}, "shortcut_rate"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"shortcut_on": "all", "shortcut_position": "middle"}, "shortcut_position"),
    ({"shortcut_on": "all", "shortcut_position": (70, 3)}, "shortcut_position"),
    ({"size": 12}, "size"),
    ({"size": 16, "shortcut_size": 2}, "size"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=f"shapes: {match}"):
        D.shapes(10, **kwargs)
