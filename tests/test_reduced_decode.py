"""Large JPEGs are decoded at a reduced scale that still covers what a run uses (``explain``'s
default, ``decode="reduced"``): never below the preview or the model's input, masks scaled with
the image, and previews, predictions and maps within a small tolerance of a full decode — a
tolerance that a different photo's map breaks by far (the control)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vlmxplain as vx
from vlmxplain.datasets import DecodeSize
from vlmxplain.datasets.loading import FULL_SIZE, SOURCE_JPEG
from vlmxplain.masks.images import preview_of
from vlmxplain.masks.saliency import saliency

NEED = DecodeSize(512, (224, 224))
#: measured on 8 gallery photos at 2016×1512 and 4032×3024 with sensor-like noise (σ = 8): maps
#: ≤ 0.029, previews ≤ 10/255 (mean ≤ 0.7/255), every prediction the same; the README states these
MAX_MAP_DIFF, MAX_PREVIEW_DIFF, MAX_PREVIEW_MEAN = 0.06, 24, 2.0


def camera_photo(k: int, size: tuple[int, int]) -> Image.Image:
    """A gallery photo blown up to ``size`` with sensor-like noise (a camera's fine detail)."""
    base = vx.datasets.gallery()[k].image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(k).normal(0, 8, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(base, np.float32) + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Five large JPEGs (one stored sideways with EXIF orientation 6), a large PNG, a small JPEG,
    a large MPO."""
    root = tmp_path_factory.mktemp("large")
    for k in range(5):
        exif = Image.Exif()
        if k == 4:
            exif[0x0112] = 6  # shown rotated by 90°: the stored file is portrait
        im = camera_photo(k, (2016, 1512))
        (im.transpose(Image.Transpose.ROTATE_90) if k == 4 else im).save(root / f"p{k}.jpg", quality=90, exif=exif)
    camera_photo(5, (1600, 1200)).save(root / "p5.png")
    big = camera_photo(7, (2016, 1512))  # many cameras write MPO: a JPEG with its previews appended
    big.save(root / "p7.jpg", format="MPO", save_all=True, append_images=[big.resize((640, 480))])
    camera_photo(6, (500, 375)).save(root / "p6.jpg", quality=90)
    return root


def test_a_large_jpeg_decodes_at_the_smallest_scale_that_covers_what_is_used(photos):
    data = vx.datasets.folder(photos, classes="imagenet")
    by_id = {data.ref(i).id: i for i in range(len(data))}
    for name in ("p0.jpg", "p4.jpg", "p7.jpg"):
        i = by_id[name]
        full, reduced = data[i].image, data.load(i, at_least=NEED).image
        assert full.size == (2016, 1512) and FULL_SIZE not in full.info  # data[i] decodes every pixel
        assert reduced.size == (1008, 756) and reduced.info[FULL_SIZE] == (2016, 1512)  # 1/2: 1/4 is below 512
        box = NEED.box(full.size)
        assert reduced.width >= box[0] and reduced.height >= box[1]
        a, b = np.asarray(preview_of(full), float), np.asarray(preview_of(reduced), float)
        assert a.shape == b.shape  # the sideways one is turned upright too
        assert np.abs(a - b).max() <= MAX_PREVIEW_DIFF and np.abs(a - b).mean() <= MAX_PREVIEW_MEAN
    # the control: another photo's preview is far outside that tolerance
    other = np.asarray(preview_of(data[by_id["p1.jpg"]].image), float)
    assert np.abs(other - np.asarray(preview_of(data[by_id["p0.jpg"]].image), float)).mean() > 10 * MAX_PREVIEW_MEAN
    png = data.load(by_id["p5.png"], at_least=NEED).image  # only JPEG decoders scale
    assert png.size == (1600, 1200) and FULL_SIZE not in png.info
    small = data.load(by_id["p6.jpg"], at_least=NEED).image  # fits already: untouched, its bytes reusable
    assert small.size == (500, 375) and SOURCE_JPEG in small.info
    # a wide panorama keeps the model's input height, not just the preview's
    assert DecodeSize(512, (224, 224)).box((4000, 500)) == (512, 224)
    for bad in ({"longest": 0}, {"longest": 512, "at_least": (224,)}, {"longest": 512, "at_least": (-1, 2)}):
        with pytest.raises(ValueError, match="longest|at_least"):
            DecodeSize(**bad)


def test_a_mask_is_scaled_with_a_reduced_image(photos):
    mask = np.zeros((1512, 2016), bool)
    mask[300:900, 400:1200] = True
    data = vx.datasets.from_list([{"path": str(photos / "p0.jpg"), "label": "", "mask": mask}], classes="imagenet")
    full, reduced = data[0], data.load(0, at_least=NEED)
    assert full.mask.shape == (1512, 2016) and reduced.mask.shape == (756, 1008)
    assert reduced.mask[150:450, 200:600].all() and reduced.mask.sum() == 300 * 400


def test_explain_decodes_large_jpegs_reduced_within_tolerance_of_a_full_decode(lite0, photos, tmp_path):
    data = vx.datasets.folder(photos, classes="imagenet")
    with pytest.raises(ValueError, match="decode: one of 'reduced', 'full'"):
        vx.explain(lite0, data, decode="fast", judge="offline:faithfulness", run_dir=tmp_path / "bad",
                   progress=False, verbose=False)
    assert not (tmp_path / "bad").exists()  # refused before any work
    runs = {mode: vx.explain(lite0, data, decode=mode, judge="offline:faithfulness", run_dir=tmp_path / mode,
                             cache=False, progress=False, verbose=False) for mode in ("full", "reduced")}
    full, reduced = runs["full"], runs["reduced"]
    ids = list(full.table["id"])
    assert (full.table["judge_status"] == "ok").all() and (reduced.table["judge_status"] == "ok").all()
    maps = {}
    for sid in ids:
        a, b = full.cam(sid), reduced.cam(sid)
        large = sid not in ("p5.png", "p6.jpg")
        assert (b["image_size"][0] < a["image_size"][0]) == large  # what the CAM was computed on
        clear = a["top_probs"][0] - a["top_probs"][1] > 0.1  # the top class is not a near tie
        assert a["prediction"] == b["prediction"] or not clear
        maps[sid] = saliency(a["map"], (224, 224))
        assert np.abs(maps[sid] - saliency(b["map"], (224, 224))).max() <= MAX_MAP_DIFF
        pa, pb = np.asarray(full.image(sid), float), np.asarray(reduced.image(sid), float)
        assert pa.shape == pb.shape and np.abs(pa - pb).mean() <= MAX_PREVIEW_MEAN
    assert np.abs(maps["p0.jpg"] - maps["p1.jpg"]).max() > MAX_MAP_DIFF  # the control: another photo's map
