"""Tests for vlmxplain.datasets: robust loading over a real bad-input corpus, sources, the gallery."""
from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from vlmxplain import datasets as D
from vlmxplain.datasets.imagenet import imagenet_class_names


# -- helpers ------------------------------------------------------------------------------
def png_with_header_size(w: int, h: int) -> bytes:
    """A syntactically valid PNG whose header claims w x h pixels (the data is tiny)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def rgb(img: Image.Image, x: int, y: int) -> np.ndarray:
    return np.asarray(img)[y, x].astype(int)


GRAD16 = (np.arange(256 * 16).reshape(16, 256) * 65535 // (256 * 16 - 1)).astype(np.uint16)
FLOAT = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (12, 1))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A folder of awkward real files, one class sub-folder ('mixed')."""
    root = tmp_path_factory.mktemp("corpus")
    d = root / "mixed"
    d.mkdir()
    rng = np.random.default_rng(0)
    (d / "random_bytes.jpg").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("this is not a picture, just some notes\n")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(d / "one_pixel.png")
    Image.fromarray(GRAD16).save(d / "gray16.png")
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(d / "cmyk.jpg", quality=95)
    rgba = np.zeros((16, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 255)  # opaque red | transparent (-> white)
    rgba[:, 16:] = (0, 0, 0, 0)
    rgba[:8, 16:] = (0, 0, 0, 128)  # half-transparent black over white -> grey
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 255, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 8, 16))  # left half blue, right half index 0 = transparent
    pal.save(d / "palette_trns.png", transparency=0)
    la = Image.new("LA", (12, 12), (0, 0))
    la.paste((40, 255), (0, 0, 6, 12))
    la.save(d / "la.png")
    Image.fromarray(np.indices((16, 16)).sum(0) % 2 == 0).save(d / "bilevel.png")
    Image.fromarray(FLOAT, "F").save(d / "float.tif")
    Image.fromarray((GRAD16.astype(np.int32)), "I").save(d / "int32.tif")
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 8, 8))  # red block at the STORED top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stored.save(d / "exif_rot6.jpg", exif=exif.tobytes(), quality=95)
    (d / "huge_header.png").write_bytes(png_with_header_size(100_000, 100_000))
    (d / "large_header.png").write_bytes(png_with_header_size(8_000, 6_000))
    noise = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, "JPEG")
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    (d / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    damaged = bytearray(buf.getvalue())
    start = damaged.find(b"IDAT") + 40
    damaged[start:start + 200] = bytes(200)
    (d / "damaged_idat.png").write_bytes(bytes(damaged))
    noise.save(d / "good.jpg", quality=90)
    return root


SKIPS = {
    "random_bytes.jpg": "not an image",
    "zero.jpg": "empty file",
    "text.jpg": "looks like text",
    "one_pixel.png": "too small: 1x1",
    "huge_header.png": "too large",
    "large_header.png": "too large: 8000x6000",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "damaged_idat.png": "corrupt image data",
}


def check_gray16(img):
    expected = np.rint(GRAD16 / 257).astype(np.uint8)
    a = np.asarray(img)
    assert img.size == (256, 16)
    assert (a[..., 0] == expected).all() and (a[..., 1] == a[..., 0]).all()
    assert a[0, 0, 0] == 0 and a[-1, -1, 0] == 255 and 120 <= a[8, 128, 0] <= 135  # scaled, not clipped


def check_cmyk(img):
    assert img.size == (32, 24)
    assert np.abs(rgb(img, 16, 12) - [255, 0, 0]).max() <= 8


def check_rgba(img):
    assert (rgb(img, 4, 12) == [255, 0, 0]).all()
    assert (rgb(img, 24, 12) == [255, 255, 255]).all()  # transparent -> white
    assert np.abs(rgb(img, 24, 2) - 127).max() <= 2  # 50% black over white


def check_palette(img):
    assert (rgb(img, 2, 2) == [0, 0, 255]).all() and (rgb(img, 12, 2) == [255, 255, 255]).all()


def check_la(img):
    assert (rgb(img, 2, 2) == [40, 40, 40]).all() and (rgb(img, 10, 2) == [255, 255, 255]).all()


def check_bilevel(img):
    a = np.asarray(img)[..., 0]
    assert set(np.unique(a)) == {0, 255} and a[0, 0] == 255 and a[0, 1] == 0


def check_float(img):
    assert (np.asarray(img)[..., 0] == np.rint(FLOAT * 255)).all()


def check_int32(img):
    assert (np.asarray(img)[..., 0] == np.rint(GRAD16 / 257)).all()


def check_exif(img):
    assert img.size == (20, 40)  # 40x20 stored, orientation 6 -> 20 wide, 40 tall
    assert rgb(img, 17, 2)[0] > 200 and rgb(img, 17, 2)[2] < 60  # stored top-left -> displayed top-right
    assert rgb(img, 2, 2)[2] > 200 and rgb(img, 2, 37)[2] > 200


def check_good(img):
    assert img.size == (160, 120)


LOADS = {
    "gray16.png": check_gray16, "cmyk.jpg": check_cmyk, "rgba.png": check_rgba,
    "palette_trns.png": check_palette, "la.png": check_la, "bilevel.png": check_bilevel,
    "float.tif": check_float, "int32.tif": check_int32, "exif_rot6.jpg": check_exif, "good.jpg": check_good,
}


# -- loading ------------------------------------------------------------------------------
def test_bad_input_corpus_never_crashes_and_each_outcome_is_specific(corpus):
    data = D.folder(corpus)
    assert data.classes == ["mixed"]
    assert sorted(i.split("/", 1)[1] for i in data.ids) == sorted({**SKIPS, **LOADS})
    outcomes = {}
    for item in data.iter_samples():
        outcomes[item.id.split("/", 1)[1]] = item
    for name, expected in SKIPS.items():
        item = outcomes[name]
        assert isinstance(item, D.Skipped), f"{name} should be skipped, got {item}"
        assert expected in item.reason, f"{name}: {item.reason!r}"
        assert item.id == f"mixed/{name}" and item.path == str(corpus / "mixed" / name)
    for name, check in LOADS.items():
        item = outcomes[name]
        assert isinstance(item, D.Sample), f"{name} should load, got {item}"
        assert item.image.mode == "RGB" and item.label == "mixed" and item.targets == (0,)
        check(item.image)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_getitem_raises_input_skipped_with_context(corpus):
    data = D.folder(corpus)
    i = data.ids.index("mixed/text.jpg")
    with pytest.raises(D.InputSkipped) as info:
        data[i]
    err = info.value
    assert isinstance(err, ValueError) and err.id == "mixed/text.jpg" and err.path.endswith("text.jpg")
    assert "mixed/text.jpg" in str(err) and "text" in err.reason
    assert pickle.loads(pickle.dumps(err)).reason == err.reason
    assert data.ref(i).label == "mixed"  # metadata still available without decoding


def test_load_image_limits_and_sources(corpus):
    d = corpus / "mixed"
    with pytest.raises(D.InputSkipped) as info:  # no own limit: the header passes, the missing data does not
        D.load_image(d / "large_header.png", max_pixels=None)
    assert "too large" not in info.value.reason and "truncated" in info.value.reason
    with pytest.raises(D.InputSkipped, match="too small: 160x120"):
        D.load_image(d / "good.jpg", min_side=200)
    with pytest.raises(D.InputSkipped, match="max_pixels=10,000"):
        D.load_image(d / "good.jpg", max_pixels=10_000)
    with pytest.raises(D.InputSkipped, match="file not found"):
        D.load_image(d / "missing.png")
    raw = (d / "good.jpg").read_bytes()
    from_bytes = D.load_image(raw)
    assert from_bytes.size == (160, 120) and from_bytes.mode == "RGB"
    assert np.array_equal(np.asarray(D.load_image(io.BytesIO(raw))), np.asarray(from_bytes))
    with pytest.raises(D.InputSkipped, match="empty data"):
        D.load_image(b"")
    with pytest.raises(TypeError, match="image source"):
        D.load_image(3.5)


def test_load_image_from_arrays_and_pil():
    u16 = D.load_image(GRAD16)
    assert (np.asarray(u16)[..., 0] == np.rint(GRAD16 / 257)).all()
    chw = np.zeros((3, 10, 12), np.float32)
    chw[0] = 1.0
    img = D.load_image(chw)
    assert img.size == (12, 10) and (rgb(img, 5, 5) == [255, 0, 0]).all()
    assert (np.asarray(D.load_image(np.ones((9, 9), bool))) == 255).all()
    with pytest.raises(D.InputSkipped, match="outside"):
        D.load_image(np.full((9, 9), 300, np.int32))
    with pytest.raises(D.InputSkipped, match="NaN"):
        D.load_image(np.full((9, 9), np.nan))
    with pytest.raises(D.InputSkipped, match="not an image"):
        D.load_image(np.zeros((9, 9, 7)))
    src = Image.new("RGB", (10, 10), (1, 2, 3))
    out = D.load_image(src)
    out.putpixel((0, 0), (9, 9, 9))
    assert src.getpixel((0, 0)) == (1, 2, 3)  # the caller's image is never modified
    i16 = Image.fromarray(GRAD16)
    assert i16.mode == "I;16" and (np.asarray(D.load_image(i16))[..., 0] == np.rint(GRAD16 / 257)).all()


# -- folder -------------------------------------------------------------------------------
@pytest.fixture()
def tree(tmp_path) -> Path:
    for rel, color in [("cat/a.png", (200, 0, 0)), ("cat/deep/b.jpg", (0, 200, 0)), ("dog/c.png", (0, 0, 200)),
                       ("loose.png", (9, 9, 9)), (".ipynb_checkpoints/x.png", (1, 1, 1))]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), color).save(tmp_path / rel)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "empty_dir").mkdir()
    return tmp_path


def test_folder_classes_ids_and_slicing(tree):
    data = D.folder(tree)
    assert data.classes == ["cat", "dog"] and data.name == tree.name
    assert data.ids == ["loose.png", "cat/a.png", "cat/deep/b.jpg", "dog/c.png"]
    refs = [data.ref(i) for i in range(len(data))]
    assert [(r.label, r.targets) for r in refs] == [("", ()), ("cat", (0,)), ("cat", (0,)), ("dog", (1,))]
    s = data[-1]
    assert s.id == "dog/c.png" and s.path == str(tree / "dog/c.png") and rgb(s.image, 3, 3).tolist() == [0, 0, 200]
    assert data[1:3].ids == ["cat/a.png", "cat/deep/b.jpg"] and data[::-1].ids[0] == "dog/c.png"
    view = data.subset([3, 1])
    assert view.ids == ["dog/c.png", "cat/a.png"] and view.classes == data.classes
    assert view[1:].ids == ["cat/a.png"] and view[0].label == "dog"
    assert data.limit(2).ids == ["loose.png", "cat/a.png"] and len(data.limit(99)) == 4
    with pytest.raises(IndexError, match="out of range"):
        data[4]
    with pytest.raises(ValueError, match="limit"):
        data.limit(-1)
    with pytest.raises(TypeError, match="int or a slice"):
        data["cat/a.png"]
    assert len(pickle.loads(pickle.dumps(data[1:]))) == 3


def test_folder_with_given_classes(tree, tmp_path_factory):
    data = D.folder(tree, classes=["bird", "cat", "dog"])
    assert data.ref(1).targets == (1,) and data.ref(3).targets == (2,)
    with pytest.raises(ValueError, match="class folder 'dog'"):
        D.folder(tree, classes=["cat", "cow"])
    inet = tmp_path_factory.mktemp("inet")
    for sub in ("n02123045", "tiger cat"):  # a WordNet id and a synonym
        (inet / sub).mkdir()
        Image.new("RGB", (16, 16)).save(inet / sub / "x.png")
    data = D.folder(inet, classes="imagenet")
    names = imagenet_class_names()
    assert [names[data.ref(i).targets[0]] for i in range(2)] == ["tabby, tabby cat", "tiger cat"]
    assert data.ref(0).label == "tabby, tabby cat" and data.ref(1).label == "tiger cat"


def test_folder_errors(tmp_path):
    with pytest.raises(NotADirectoryError, match="not a directory"):
        D.folder(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files"):
        D.folder(tmp_path)


# -- CSV ----------------------------------------------------------------------------------
@pytest.fixture()
def csv_dir(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    for k in range(4):
        Image.new("RGB", (20, 10), (k * 60, 0, 0)).save(tmp_path / "img" / f"{k}.png")
    mask = np.zeros((10, 20), np.uint8)
    mask[2:6, 3:9] = 255
    Image.fromarray(mask).save(tmp_path / "img" / "0_mask.png")
    Image.fromarray(np.ones((5, 5), np.uint8)).save(tmp_path / "img" / "bad_mask.png")
    return tmp_path


def test_from_csv_labels_masks_and_paths(csv_dir):
    (csv_dir / "list.csv").write_text(
        "path,label,mask,split\n"
        "img/0.png,cat,img/0_mask.png,train\n"
        "img/1.png,cat|dog,,test\n"
        "img/2.png,1,,\n"
        "img/3.png,,img/bad_mask.png,\n"
    )
    data = D.from_csv(csv_dir / "list.csv", classes=["cat", "dog"])
    assert data.name == "list" and data.ids == ["img/0.png", "img/1.png", "img/2.png", "img/3.png"]
    assert [data.ref(i).targets for i in range(4)] == [(0,), (0, 1), (1,), ()]
    assert [data.ref(i).label for i in range(4)] == ["cat", "cat | dog", "dog", ""]
    s = data[0]
    assert s.mask.dtype == bool and s.mask.shape == (10, 20) and s.mask.sum() == 24 and s.mask[3, 4]
    assert s.meta == {"split": "train"} and s.path == str(csv_dir / "img/0.png")
    assert data[1].mask is None
    items = list(data.iter_samples())
    assert isinstance(items[3], D.Skipped) and "mask size 5x5 does not match image size 20x10" in items[3].reason
    with pytest.raises(ValueError, match="integer label '1' needs an explicit class list"):
        D.from_csv(csv_dir / "list.csv")


def test_from_csv_root_errors_and_inferred_classes(csv_dir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("lists")
    (elsewhere / "l.csv").write_text("Path , Label\nimg/2.png,dog\nimg/0.png,cat\n")
    data = D.from_csv(elsewhere / "l.csv", root=csv_dir)
    assert data.classes == ["cat", "dog"] and data[0].image.getpixel((0, 0)) == (120, 0, 0)
    broken = D.from_csv(elsewhere / "l.csv")  # relative to the CSV's own folder: files are not there
    assert [type(x).__name__ for x in broken.iter_samples()] == ["Skipped", "Skipped"]
    assert "file not found" in next(iter(broken.iter_samples())).reason
    (elsewhere / "bad.csv").write_text("path,label\nimg/0.png,cat\nimg/1.png,cta\n")
    with pytest.raises(ValueError, match=r"bad.csv line 3.*unknown label 'cta'.*close matches: \['cat'\]"):
        D.from_csv(elsewhere / "bad.csv", root=csv_dir, classes=["cat", "dog"])
    (elsewhere / "nopath.csv").write_text("file,label\na.png,cat\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        D.from_csv(elsewhere / "nopath.csv")
    (elsewhere / "dup.csv").write_text("path,label\na.png,cat\na.png,dog\n")
    with pytest.raises(ValueError, match="line 3: path 'a.png' already listed on line 2"):
        D.from_csv(elsewhere / "dup.csv")
    (elsewhere / "idx.csv").write_text("path,label\na.png,7\n")
    with pytest.raises(ValueError, match="line 2.*index 7 out of range"):
        D.from_csv(elsewhere / "idx.csv", classes=["cat", "dog"])


# -- list ---------------------------------------------------------------------------------
def test_from_list_mixed_sources(csv_dir):
    arr = np.zeros((12, 14, 3), np.uint8)
    arr[..., 1] = 255
    mask = np.zeros((12, 14), bool)
    mask[:6] = True
    items = [
        (Image.new("RGB", (10, 10), (5, 6, 7)), "cat"),
        (arr, ["cat", "dog"], mask),
        (str(csv_dir / "img" / "2.png"), "dog"),
        {"image": arr, "label": None, "id": "custom", "meta": {"k": 1}},
    ]
    data = D.from_list(items)
    assert data.classes == ["cat", "dog"]
    assert data.ids == ["list-00000", "list-00001", str(csv_dir / "img" / "2.png"), "custom"]
    assert [data.ref(i).targets for i in range(4)] == [(0,), (0, 1), (1,), ()]
    s = data[1]
    assert rgb(s.image, 0, 0).tolist() == [0, 255, 0] and s.mask.sum() == 6 * 14 and s.label == "cat | dog"
    assert data[2].path == str(csv_dir / "img" / "2.png") and data[3].meta == {"k": 1}
    data = D.from_list([(arr, 1), (arr, "tiger cat")], classes="imagenet")
    assert data.ref(0).label == "goldfish, Carassius auratus" and data.ref(1).targets == (282,)


def test_from_list_errors():
    arr = np.zeros((9, 9), np.uint8)
    with pytest.raises(ValueError, match="needs an explicit class list"):
        D.from_list([(arr, 3)])
    with pytest.raises(ValueError, match="item 1, label 'cow'"):
        D.from_list([(arr, "cat"), (arr, "cow")], classes=["cat", "dog"])
    with pytest.raises(ValueError, match="duplicate sample id 'a'"):
        D.from_list([{"image": arr, "id": "a"}, {"image": arr, "id": "a"}])
    with pytest.raises(ValueError, match="item 0: unknown keys"):
        D.from_list([{"image": arr, "lable": "x"}])
    with pytest.raises(ValueError, match="ambiguous"):
        D.resolve_label("crane", imagenet_class_names())


# -- gallery ------------------------------------------------------------------------------
GALLERY_TRUTH = {
    "chelsea": ("tabby cat", {"tabby, tabby cat", "tiger cat", "Egyptian cat"}),
    "coffee": ("espresso", {"espresso", "cup"}),
    "rocket": ("rocket", {"missile", "projectile, missile"}),
    "camera": ("camera on a tripod", {"tripod", "reflex camera"}),
    "motorcycle": ("motorcycle", {"moped", "motor scooter, scooter"}),
    "clock": ("wall clock", {"wall clock", "analog clock"}),
    "grace_hopper": ("military uniform", {"military uniform"}),
    "summer_palace": ("palace", {"palace"}),
}


def test_gallery_photos_load_offline_with_honest_labels():
    data = D.gallery()
    assert data.classes == list(imagenet_class_names()) and data.ids == list(GALLERY_TRUTH)
    for item in data.iter_samples():
        assert isinstance(item, D.Sample), item
        label, accepted = GALLERY_TRUTH[item.id]
        assert item.image.mode == "RGB" and min(item.image.size) >= 224
        assert item.label == label
        assert {data.classes[t] for t in item.targets} == accepted
        assert item.meta["source"] and item.meta["description"]
        assert np.asarray(item.image).std() > 10  # a real photo, not a blank
    hopper = data[data.ids.index("grace_hopper")]
    assert [data.classes[t] for t in hopper.targets] == ["military uniform"]
    assert hopper.path and hopper.path.endswith("grace_hopper.jpg")
