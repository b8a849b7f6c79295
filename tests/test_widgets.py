"""State-level tests of the panels and the plain logic behind them (vlmxplain.views).

The panels run on the real offline demo run (EfficientNet-Lite0, gallery photos, offline judge)
with one hostile judge text; each test sets traits or clicks buttons as a user would and checks
what the panel shows. The browser-level counterpart is tests/test_browser.py.
"""
from __future__ import annotations

import ast
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import vlmxplain as vx
from browser_support import HOSTILE_DESCRIPTION, HOSTILE_RAW, HOSTILE_SAMPLE, build_demo_run, plant_hostile_judgment
from vlmxplain.viz import html as views
from vlmxplain.widgets import logic
from vlmxplain.core.quadrants import QUADRANTS, quadrant_summary
from vlmxplain.store import RunStore
from vlmxplain.widgets import Annotator, JudgeViewer, MaskTuner, QuadrantBrowser
from vlmxplain.widgets.common import blank_image, encode_image


@pytest.fixture(scope="module")
def run(tmp_path_factory, lite0):
    r = build_demo_run(tmp_path_factory.mktemp("widgets") / "run", lite0)
    plant_hostile_judgment(r)
    return r


@pytest.fixture(scope="module")
def table(run):
    return run.table


@pytest.fixture(scope="module")
def gallery():
    return vx.datasets.gallery()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def no_markup(html: str) -> None:
    """The hostile judge text is in the HTML only as escaped text."""
    assert "<img src=x" not in html and "<script>" not in html and "<b>bold claim" not in html
    assert "&lt;img src=x onerror=" in html


# =========================================================================== views (pure logic)
def test_filter_table_each_filter_and_combined(table):
    q = table["quadrant"].iloc[0]
    assert list(logic.filter_table(table, quadrant=q)["id"]) == list(table.loc[table["quadrant"] == q, "id"])
    label = table["label"].iloc[1]
    assert list(logic.filter_table(table, label=label)["id"]) == [table["id"].iloc[1]]
    lo, hi = 0.0, float(table["score"].median())
    got = logic.filter_table(table, score_range=(lo, hi))
    assert len(got) and got["score"].between(lo, hi).all()
    assert len(logic.filter_table(table, score_range=(lo, hi))) + len(table[table["score"] > hi]) == len(table)
    assert len(logic.filter_table(table, status="ok")) == len(table)
    assert logic.filter_table(table, status="failed").empty
    both = logic.filter_table(table, quadrant=q, label=table["label"].iloc[0])
    assert list(both["id"]) == [table["id"].iloc[0]]


def test_filter_table_score_range_drops_rows_without_a_score(table):
    t = table.copy()
    t.loc[t.index[0], "score"] = np.nan
    assert t.index[0] not in logic.filter_table(t, score_range=(0, 5)).index
    assert t.index[0] in logic.filter_table(t).index


@pytest.mark.parametrize("kwargs, name", [
    ({"quadrant": "Top-Left"}, "quadrant"), ({"status": "great"}, "status"),
    ({"score_range": (3, 1)}, "score_range"), ({"score_range": (0, 9)}, "score_range"),
    ({"score_range": "high"}, "score_range"), ({"label": "x", "by": "nope"}, "by"),
])
def test_filter_table_bad_filters_name_the_parameter(table, kwargs, name):
    with pytest.raises(ValueError, match=name):
        logic.filter_table(table, **kwargs)


@pytest.mark.parametrize("threshold", [0.0, 0.1, 1.0, 2.5, 5.0])
def test_with_threshold_matches_the_run_table(run, table, threshold):
    ours = logic.with_threshold(table, threshold)["quadrant"]
    pd.testing.assert_series_equal(ours, run.table_for(threshold=threshold)["quadrant"], check_names=False)


def test_with_threshold_keeps_pending_and_skipped(table):
    t = table.copy()
    t.loc[t.index[0], ["judge_status", "score"]] = ["pending", np.nan]
    t.loc[t.index[1], ["judge_status", "score"]] = ["skipped", np.nan]
    q = logic.with_threshold(t, 0.0)["quadrant"]
    assert q.iloc[0] == "Pending" and q.iloc[1] == "Skipped"
    with pytest.raises(ValueError, match="threshold"):
        logic.with_threshold(t, 7)


def test_paging_helpers():
    items = list(range(10))
    assert logic.page_count(10, 4) == 3 and logic.page_count(0, 4) == 1
    assert logic.page_items(items, 0, 4) == [0, 1, 2, 3]
    assert logic.page_items(items, 2, 4) == [8, 9]
    assert logic.page_items(items, 99, 4) == [8, 9]  # clamped to the last page
    assert logic.page_items([], 0, 4) == []
    assert logic.clamp(-3, 5) == 0 and logic.clamp(9, 5) == 4 and logic.clamp(2, 0) == 0
    with pytest.raises(ValueError, match="page_size"):
        logic.page_count(3, 0)


def test_annotation_order_and_next_pending():
    ids = [f"s{i}" for i in range(20)]
    assert logic.annotation_order(ids) == ids
    shuffled = logic.annotation_order(ids, "random", seed=3)
    assert sorted(shuffled) == sorted(ids) and shuffled != ids
    assert shuffled == logic.annotation_order(ids, "random", seed=3)  # a resumed session sees the same order
    with pytest.raises(ValueError, match="order"):
        logic.annotation_order(ids, "alphabetical")
    assert logic.next_pending(["a", "b", "c"], {"a"}) == 1
    assert logic.next_pending(["a", "b", "c"], {"b", "c"}, start=1) == 0  # wraps around
    assert logic.next_pending(["a", "b"], {"a", "b"}) is None


@pytest.mark.parametrize("text, expected", [
    ("4", ("score", 4.0)), (" 2.5 ", ("score", 2.5)), ("0", ("score", 0.0)), ("A", ("accept", None)),
    ("r", ("reject", None)), ("n", ("next", None)), ("b", ("back", None)), ("6", ("unknown", None)),
    ("-1", ("unknown", None)), ("nan", ("unknown", None)), ("hello", ("unknown", None)),
])
def test_parse_key(text, expected):
    assert logic.parse_key(text) == expected


def test_html_builders_escape_judge_text():
    row = {"id": "s<1>", "idx": 0, "label": "<i>cat</i>", "description": HOSTILE_DESCRIPTION,
           "justification": "<b>bold claim</b>", "error": "<script>x</script>", "score": 3.0, "correct": True}
    html = views.sample_card_html(row)
    no_markup(html)
    assert "&lt;i&gt;cat&lt;/i&gt;" in html and "s&lt;1&gt;" in html and "&lt;script&gt;x" in html
    raw = views.raw_response_html(HOSTILE_RAW)
    assert "<img" not in raw and "&lt;img src=x" in raw
    assert views.esc(None) == "" and views.esc(float("nan")) == "" and views.esc("a'b") == "a&#x27;b"


def test_sample_fields_format_for_people():
    fields = dict(views.sample_fields({"id": "a", "idx": 3, "score": float("nan"), "confidence": 0.5,
                                       "correct": None, "input_tokens": 10, "output_tokens": None, "cached": True}))
    assert fields["score"] == "—" and fields["confidence"] == "50.0%" and fields["correct"] == "—"
    assert fields["sample"] == "a (#3)" and fields["tokens"] == "10 in / 0 out (cached)"


def test_explain_snippet_is_valid_python_with_the_parameters():
    code = logic.explain_snippet(cam="gradcam++", alpha=30, beta=0.45, judge="offline:faithfulness", target=281)
    ast.parse(code)
    assert "cam='gradcam++'" in code and "alpha=30" in code and "beta=0.45" in code
    assert "-p cam gradcam++ -p alpha 30 -p beta 0.45 -p judge offline:faithfulness" in code


def test_render_view_matches_the_core_mask_functions(photos):
    from vlmxplain.masks import masked_image, overlay, saliency

    img = photos["coffee"].resize((160, 120))
    raw = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    arr, v, heat = np.asarray(img, np.float32), saliency(raw, img.size), np.asarray(overlay(img, raw))
    frame, kept = logic.render_view(arr, v, heat, 25, 0.6, "masked")
    assert np.array_equal(np.asarray(frame), np.asarray(masked_image(img, raw, 25, 0.6)))
    kept_at = lambda beta: logic.render_view(arr, v, heat, 25, beta, "mask")[1]  # noqa: E731
    assert kept_at(0.3) > kept > kept_at(0.8)
    side, _ = logic.render_view(arr, v, heat, 25, 0.6, "side by side")
    assert side.size == (3 * 160 + 8, 120)
    with pytest.raises(ValueError, match="view"):
        logic.render_view(arr, v, heat, 25, 0.6, "heatmap")


# =========================================================================== MaskTuner
@pytest.fixture(scope="module")
def tuner(lite0, gallery):
    return MaskTuner(lite0, gallery, view="masked")


def test_tuner_beta_rederives_the_mask_without_recomputing_the_cam(tuner):
    tuner.index, tuner.method, tuner.target, tuner.view = 0, "gradcam", None, "masked"
    computed = tuner.cam_computations
    before, kept_before = tuner.image.value, tuner.kept_share
    tuner.beta = 0.4
    assert tuner.image.value != before and tuner.kept_share > kept_before  # lower beta keeps more
    assert f"kept {tuner.kept_share:.1%}" in tuner.info.value and "beta 0.4" in tuner.info.value
    tuner._beta.value = 0.8  # as the front end does when the slider moves
    assert tuner.beta == 0.8 and tuner.kept_share < kept_before
    tuner.alpha = 5
    for view in logic.TUNER_VIEWS:
        tuner.view = view
    assert tuner.cam_computations == computed, "alpha/beta/view must not recompute the CAM"
    tuner.alpha, tuner.beta = 25, 0.6


def test_tuner_frame_is_the_pipeline_masked_image(tuner, gallery):
    from vlmxplain.masks import masked_image
    from vlmxplain.masks import preview_of

    tuner.index, tuner.method, tuner.target, tuner.view, tuner.alpha, tuner.beta = 0, "gradcam", None, "masked", 25, 0.6
    image = preview_of(gallery[0].image)
    cam = vx.compute_cams(tuner.clf, [image], "gradcam")
    expected = masked_image(image, cam.maps[0], 25, 0.6)
    assert np.array_equal(np.asarray(tuner.snapshot()), np.asarray(expected))
    assert decode(tuner.image.value).shape == np.asarray(expected).shape  # the widget shows that frame


def test_tuner_cam_cached_per_image_method_and_class(tuner):
    tuner.index, tuner.target, tuner.method = 0, None, "gradcam"
    n = tuner.cam_computations
    tuner.method = "layercam"
    assert tuner.cam_computations == n + 1 and "layercam" in tuner.info.value
    tuner.method = "gradcam"
    tuner.method = "layercam"
    assert tuner.cam_computations == n + 1, "switching back uses the cached CAMs"
    tuner.method = "gradcam"


def test_tuner_target_class_from_the_top5_dropdown(tuner, lite0):
    tuner.index, tuner.method, tuner.target = 0, "gradcam", None
    options = tuner._target.options
    assert options[0][1] == views_predicted() and len(options) == 5  # predicted + the other 4 of the top 5
    predicted = tuner._images[0].prediction
    assert [v for _, v in options].count(predicted) == 0  # the predicted class is listed once, as "predicted"
    second = options[2][1]
    before, n = tuner.image.value, tuner.cam_computations
    tuner._target.value = second  # the user picks the second most likely class
    assert tuner.target == second and tuner.explained_class == second
    assert f"explaining: {lite0.class_names[second]}" in tuner.info.value
    assert tuner.image.value != before and tuner.cam_computations == n + 1
    tuner._target.value = views_predicted()
    assert tuner.target is None and tuner.cam_computations == n + 1
    tuner.target = second
    assert tuner.cam_computations == n + 1  # computed once per (image, method, class)
    tuner.target = 1  # any class, also outside the top 5, from code
    assert tuner._target.value == 1 and tuner._target.options[-1] == (lite0.class_names[1], 1)
    assert f"explaining: {views.esc(lite0.class_names[1])}" in tuner.info.value
    tuner.target = None


def views_predicted():
    from vlmxplain.widgets.mask_tuner import PREDICTED

    return PREDICTED


def test_tuner_image_picker_switches_image_and_resets_class(tuner, lite0):
    tuner.index, tuner.target = 0, tuner._target.options[3][1]
    first_prediction = tuner.info.value
    tuner._picker.value = 1  # the user picks the second photo
    assert tuner.index == 1 and tuner.target is None
    assert tuner.info.value != first_prediction and "espresso" in tuner.info.value
    assert tuner._target.value == views_predicted()
    tuner.index = 0


def test_tuner_snippet_and_static_rendering(tuner):
    tuner.index, tuner.alpha, tuner.beta, tuner.method = 0, 30, 0.45, "gradcam"
    assert "alpha=30, beta=0.45" in tuner.code_snippet and "alpha=30, beta=0.45" in tuner.snippet.value
    ast.parse(tuner.code_snippet)
    bundle = tuner._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "data:image/jpeg;base64," in bundle["text/html"] and "beta 0.45" in bundle["text/html"]
    assert bundle["text/plain"].startswith("MaskTuner(image='chelsea'")
    tuner.alpha, tuner.beta = 25, 0.6


def test_tuner_accepts_a_single_image_and_keeps_its_size(lite0, photos):
    t = MaskTuner(lite0, photos["camera"], view="side by side", max_side=None)
    w, h = photos["camera"].size
    assert t._picker is None and t.snapshot().size == (3 * w + 8, h)


def test_tuner_bad_input_names_the_parameter(lite0, tuner, photos):
    with pytest.raises(ValueError, match="alpha"):
        tuner.alpha = -1
    with pytest.raises(ValueError, match="beta"):
        tuner.beta = 1.5
    with pytest.raises(ValueError, match="cam"):
        tuner.method = "magic-cam"
    with pytest.raises(ValueError, match="index"):
        tuner.index = 99
    with pytest.raises(ValueError, match="target"):
        tuner.target = 5000
    assert (tuner.alpha, tuner.beta) == (25, 0.6) and tuner.snapshot() is not None  # nothing lost
    with pytest.raises(TypeError, match="image_or_dataset"):
        MaskTuner(lite0, "chelsea.jpg")
    with pytest.raises(ValueError, match="image_or_dataset"):
        MaskTuner(lite0, [])
    with pytest.raises(TypeError, match="clf"):
        MaskTuner("efficientnet_lite0", photos["coffee"])
    with pytest.raises(ValueError, match="beta"):
        MaskTuner(lite0, photos["coffee"], beta=2)


def test_tuner_alpha_beyond_the_slider_is_kept(tuner):
    tuner.alpha = 150
    assert tuner.alpha == 150 and tuner._alpha.value == 150 and tuner._alpha.max >= 150
    tuner.alpha = 25


# =========================================================================== JudgeViewer
def test_viewer_pages_through_samples(run, table):
    v = JudgeViewer(run)
    ids = list(table["id"])
    assert v.current_id == ids[0] and "1 / 8" in v.position_label.value
    assert v._prev.disabled and not v._next.disabled
    first = v.masked.value
    v._next.click()
    assert v.current_id == ids[1] and f"2 / 8</b> · {ids[1]}" in v.position_label.value
    assert v.masked.value != first and ids[1] in v.card.value
    v._jump.value = 8  # the user types 8 in "go to"
    assert v.current_id == ids[7] and v._next.disabled
    v._next.click()  # at the end: stays
    assert v.current_id == ids[7]
    v._prev.click()
    assert v.current_id == ids[6]
    v.position = 100
    assert v.current_id == ids[7]


def test_viewer_shows_what_the_judge_saw(run, table):
    sid = table["id"].iloc[3]
    v = JudgeViewer(run, sample=sid)
    item = run.judge_input(sid)
    assert np.array_equal(decode(v.masked.value), decode(encode_image(item.masked)))
    assert np.array_equal(decode(v.original.value), decode(encode_image(item.image)))
    row = table.loc[sid]
    for text in (row["predicted_name"], row["label"], views.fmt_score(row["score"]), row["quadrant"], row["judge"]):
        assert views.esc(text) in v.card.value


def test_viewer_escapes_judge_text(run):
    v = JudgeViewer(run, sample=HOSTILE_SAMPLE)
    no_markup(v.card.value)
    assert "123 in / 45 out" in v.card.value
    assert "&lt;img src=x" in v.raw.value and "<img" not in v.raw.value
    assert v._raw_box.selected_index is None  # the raw response starts collapsed
    no_markup(v.to_html())
    no_markup(v._repr_mimebundle_()["text/html"])


def test_viewer_filters(run, table):
    v = JudgeViewer(run)
    q = "Wrong-Low"
    v._f_quadrant.value = q  # as the front end does
    assert v.quadrant == q and v.ids == list(table.loc[table["quadrant"] == q, "id"])
    assert v.position == 0 and f"1 / {len(v.ids)}" in v.position_label.value
    v._f_quadrant.value = "(all)"
    label = table["label"].iloc[2]
    v.label = label
    assert v.ids == [table["id"].iloc[2]] and v._f_label.value == label
    v.label = None
    v._f_score.value = (0.0, 1.0)
    assert v.score_range == (0.0, 1.0) and v.ids == list(table.loc[table["score"] <= 1.0, "id"])
    v._f_score.value = (0.0, 5.0)
    assert v.score_range is None and len(v.ids) == len(table)
    v.status = "failed"
    assert v.ids == [] and "no sample matches" in v.position_label.value and v.card.value == ""
    assert v.to_html() == "<p>no sample matches the filters</p>"
    v.status = None
    assert len(v.ids) == len(table)


def test_viewer_threshold_moves_samples_between_quadrants(run, table):
    v = JudgeViewer(run, quadrant="Correct-High")
    high = len(v.ids)
    v.threshold = 0.0
    assert len(v.ids) == int(table["correct"].astype(bool).sum()) >= high
    assert "Correct-High" in v.card.value


def test_viewer_show_clears_hiding_filters_and_rejects_unknown_ids(run, table):
    v = JudgeViewer(run, quadrant="Wrong-Low")
    other = table.loc[table["quadrant"] != "Wrong-Low", "id"].iloc[0]
    v.show(other)
    assert v.current_id == other and v.quadrant is None
    with pytest.raises(KeyError, match="sample_id"):
        v.show("no-such-sample")
    for kwargs, name in [({"quadrant": "Best"}, "quadrant"), ({"status": "done"}, "status"),
                         ({"score_range": (4, 2)}, "score_range"), ({"threshold": 6}, "threshold")]:
        with pytest.raises(ValueError, match=name):
            JudgeViewer(run, **kwargs)


# =========================================================================== QuadrantBrowser
def visible_tiles(b: QuadrantBrowser) -> list[str]:
    return [btn.tooltip.removeprefix("open ").removesuffix(" in the viewer") for tile, _, btn, _ in b._tiles
            if tile.layout.display != "none"]


def test_browser_cells_show_counts_and_clicks_fill_the_gallery(run, table):
    b = QuadrantBrowser(run)
    summary = run.quadrants()
    for q in QUADRANTS:
        assert b._cells[q].description == f"{summary.counts[q]} · {summary.shares[q]:.0%}"
    assert b.quadrant == logic.first_nonempty(summary) and visible_tiles(b) == b.selected_ids
    assert b._cells[b.quadrant].button_style == "info" and "vx-cell-selected" in b._cells[b.quadrant]._dom_classes
    b._cells["Wrong-Low"].click()
    expected = list(table.loc[table["quadrant"] == "Wrong-Low", "id"])
    assert b.quadrant == "Wrong-Low" and visible_tiles(b) == expected
    assert "vx-cell-selected" in b._cells["Wrong-Low"]._dom_classes
    assert all("vx-cell-selected" not in b._cells[q]._dom_classes for q in QUADRANTS if q != "Wrong-Low")
    assert f"Wrong-Low</b>: {len(expected)} samples" in b.page_label.value


def test_browser_threshold_recomputes_live(run):
    b = QuadrantBrowser(run)
    for t in (0.0, 0.5, 2.0, 5.0):
        b._threshold.value = t  # the user drags the slider
        counts = run.quadrants(threshold=t).counts
        assert [b._cells[q].description.split(" · ")[0] for q in QUADRANTS] == [str(counts[q]) for q in QUADRANTS]
        assert f"score ≥ {t:g}" in b._matrix_header.value
        assert b.viewer.threshold == t
    b.select("Correct-High")
    at_5 = run.table_for(threshold=5.0)
    assert visible_tiles(b) == b.selected_ids == list(at_5.loc[at_5["quadrant"] == "Correct-High", "id"])


def test_browser_class_filter(run, table):
    b = QuadrantBrowser(run)
    label = table["label"].iloc[0]
    b._class.value = label
    assert b.label == label
    assert b.summary.total == 1 and b.summary.counts[table["quadrant"].iloc[0]] == 1
    expected = quadrant_summary(table[table["label"] == label], b.threshold).counts
    assert [b._cells[q].description.split(" · ")[0] for q in QUADRANTS] == [str(expected[q]) for q in QUADRANTS]
    assert f"class {views.esc(label)}" in b.summary_label.value
    with pytest.raises(ValueError, match="label"):
        b.label = "unicorn"


def test_browser_pages_the_gallery(run):
    b = QuadrantBrowser(run, threshold=0.0, page_size=2)  # at 0 every correct sample is High
    b.select("Correct-High")
    ids = b.selected_ids
    assert len(ids) >= 3
    assert visible_tiles(b) == ids[:2] and b._prev_page.disabled and "page 1 / " in b.page_label.value
    b._next_page.click()
    assert b.page == 1 and visible_tiles(b) == ids[2:4]
    b.page = 99
    assert b.page == logic.page_count(len(ids), 2) - 1 and b._next_page.disabled
    b.select("Wrong-High")  # a new cell starts at its first page
    assert b.page == 0


def test_browser_thumbnail_opens_the_viewer(run):
    b = QuadrantBrowser(run, page_size=3)
    b.select("Wrong-Low")
    assert b.viewer.layout.display == "none"
    ids = b.selected_ids
    b._tiles[1][2].click()  # the second thumbnail
    assert b.viewer.layout.display is None and b.viewer.current_id == ids[1]
    assert b.viewer.quadrant == "Wrong-Low" and b.viewer.ids == ids
    b.viewer._next.click()
    assert b.viewer.current_id == ids[2]  # paging stays within the cell


def test_browser_static_rendering_and_bad_arguments(run):
    b = QuadrantBrowser(run)
    html = b._repr_mimebundle_()["text/html"]
    counts = run.quadrants().counts
    assert "vx-matrix" in html and f"{counts['Correct-High']} · " in html
    assert html.count("<img") == len(b.page_ids)
    for kwargs, name in [({"page_size": 0}, "page_size"), ({"thumb_view": "heat"}, "thumb_view"),
                         ({"threshold": -1}, "threshold"), ({"quadrant": "Middle"}, "quadrant")]:
        with pytest.raises(Exception, match=name):
            QuadrantBrowser(run, **kwargs)


# =========================================================================== Annotator
def test_annotator_is_blind_until_scored_and_saves_at_once(run, table):
    a = Annotator(run, "alice")
    sid = table["id"].iloc[0]
    assert a.current_id == sid and a.judge_box.layout.display == "none" and a.judge_box.value == ""
    assert a._accept.layout.display == "none"
    assert views.esc(table.loc[sid, "predicted_name"]) in a.prediction.value
    a._scores.value = "4"  # the user clicks 4
    other = RunStore(run.run_dir)  # a second connection: it is committed, not just buffered
    try:
        saved = other.annotations("alice").set_index("sample_id")
    finally:
        other.close()
    assert saved.loc[sid, "score"] == 4.0 and pd.isna(saved.loc[sid, "accept"])
    assert a.judge_box.layout.display is None and a._accept.layout.display is None
    assert views.fmt_score(table.loc[sid, "score"]) in a.judge_box.value
    no_markup(a.judge_box.value)  # the judge text is revealed escaped
    a._accept.click()
    answers = a.answers().set_index("sample_id")
    assert answers.loc[sid, "accept"] is True and answers.loc[sid, "score"] == 4.0
    assert a.current_id == table["id"].iloc[1], "accepting moves on to the next unscored sample"


def test_annotator_keyboard_commands(run, table):
    a = Annotator(run, "bob")
    ids = list(table["id"])
    a._keys.value = "3"  # typed 3 + Enter
    assert a.answers().set_index("sample_id").loc[ids[0], "score"] == 3.0 and a._keys.value == ""
    assert a._scores.value == "3"
    a._keys.value = "r"
    assert a.answers().set_index("sample_id").loc[ids[0], "accept"] is False and a.current_id == ids[1]
    a._keys.value = "b"
    assert a.current_id == ids[0] and a._scores.value == "3"  # back shows the saved answer, revealed
    assert a.judge_box.layout.display is None
    a._keys.value = "n"
    assert a.current_id == ids[1] and a._scores.value is None
    a._keys.value = "9"
    assert "unknown key" in a.status.value and len(a.answers()) == 1
    a._keys.value = "2.5"
    assert a.answers().set_index("sample_id").loc[ids[1], "score"] == 2.5


def test_annotator_resumes_where_it_stopped(run, table):
    ids = list(table["id"])
    a = Annotator(run, "carol")
    for score in (1, 2, 5):
        a.score(score)
        a.accept(True)
    assert a.current_id == ids[3]
    again = Annotator(run, "carol")  # a closed notebook, reopened
    assert again.current_id == ids[3] and "3 / 8 scored" in again.progress.value
    assert Annotator(run, "dave").current_id == ids[0]  # per annotator


def test_annotator_blind_requires_a_score_before_accepting(run, table):
    a = Annotator(run, "erin")
    a._accept.click()
    assert "score the sample first" in a.status.value and a.answers().empty
    open_view = Annotator(run, "frank", blind=False)
    assert open_view.judge_box.layout.display is None and views.esc(table["judge"].iloc[0]) in open_view.judge_box.value
    open_view._reject.click()
    assert open_view.answers().set_index("sample_id").loc[table["id"].iloc[0], "accept"] is False


def test_annotator_keeps_an_existing_note(run, table):
    sid = table["id"].iloc[0]
    run.store.put_annotation(sid, "gina", None, note="blurry photo")
    a = Annotator(run, "gina")
    a.score(2)
    a.accept(False)
    row = a.answers().set_index("sample_id").loc[sid]
    assert (row["score"], row["accept"], row["note"]) == (2.0, False, "blurry photo")


def test_annotator_finishes_and_orders(run, table):
    a = Annotator(run, "hank", order="random", seed=1)
    assert sorted(a.order) == sorted(table["id"]) and a.order == Annotator(run, "ivy", order="random", seed=1).order
    for _ in range(len(a.order)):
        a.score(3)
        a.accept(True)
    assert a.done and "all done" in a.progress.value and len(a.answers()) == len(table)
    assert "Annotator" in a._repr_mimebundle_()["text/html"]
    with pytest.raises(ValueError, match="annotator"):
        Annotator(run, "  ")
    with pytest.raises(ValueError, match="order"):
        Annotator(run, "jo", order="by-size")


# =========================================================================== executed notebooks
def test_executed_notebook_keeps_a_static_rendering_of_every_panel(run, monkeypatch, tmp_path):
    """Executed headless (nbclient, as papermill does), each panel's output carries a text/html
    rendering; a notebook saved without widget state shows it when converted to HTML."""
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    from browser_support import NOTEBOOK

    monkeypatch.setenv("VX_PANELS_RUN_DIR", str(run.run_dir))
    monkeypatch.setenv("VX_ANNOTATOR", "static-check")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    html_by_panel = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                assert "text/html" in data, cell.source
                html_by_panel[cell.source.strip().splitlines()[-1]] = data["text/html"]  # the shown name
    assert set(html_by_panel) == {"tuner", "viewer", "browser", "annotator", "broken"}
    assert "true label" in html_by_panel["tuner"] and "Scoring rubric" in html_by_panel["annotator"]
    assert "data:image/jpeg;base64," in html_by_panel["tuner"] and "kept" in html_by_panel["tuner"]
    no_markup(html_by_panel["viewer"])
    assert "vx-matrix" in html_by_panel["browser"] and "<img" in html_by_panel["browser"]
    assert "static-check" in html_by_panel["annotator"]
    nb.metadata.pop("widgets", None)  # saved without widget state (JupyterLab's default)
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert page.count("vx-static") == 5 and "&lt;img src=x onerror=" in page


# --------------------------------------------------------------------------- panels explain themselves
def test_logic_target_options_list_the_predicted_class_once():
    names = ["cat", "dog", "fox", "owl"]
    opts = logic.target_options(names, 1, 0.7, [(1, 0.7), (0, 0.2), (3, 0.1)], None)
    assert opts == [("predicted: dog (70.0%)", -1), ("cat (20.0%)", 0), ("owl (10.0%)", 3)]
    assert logic.target_options(names, 1, 0.7, [(1, 0.7)], 2)[-1] == ("fox", 2)
    assert len(logic.target_options(names, 1, 0.7, [(1, 0.7)], 1)) == 1


def test_logic_captions_rubric_tiles_and_range_text():
    assert logic.view_captions("side by side", 25, 0.6) == [
        "original", "heat-map overlay", "masked CAM image (what the judge sees), alpha 25, beta 0.6"]
    assert len(logic.view_captions("mask", 25, 0.6)) == 1
    from vlmxplain.judges.vlm.prompts import PAPER_RUBRIC

    levels = logic.rubric_levels(PAPER_RUBRIC.user)
    assert [n for n, _ in levels] == [0, 1, 2, 3, 4, 5] and levels[5][1].startswith("fully accurate")
    row = pd.Series({"score": 3.25, "label": "tabby cat, tabby", "predicted_name": "Egyptian cat"})
    assert logic.thumb_caption(row) == ("score 3.2", "tabby cat → Egyptian cat")
    assert logic.thumb_caption(pd.Series({"score": None, "label": None, "predicted_name": "x"}))[0] == "not judged"
    assert logic.score_range_text((0, 5)) == "0.0 – 5.0"


def test_tuner_shows_the_true_label_and_captions_side_by_side(tuner, gallery):
    tuner.index, tuner.view = 0, "side by side"
    assert f"true label: <b>{views.esc(gallery[0].label)}</b>" in tuner.info.value
    assert tuner.captions.value.count("vx-caption") == 3 and "what the judge sees" in tuner.captions.value
    assert "true label" in tuner._repr_mimebundle_()["text/html"]
    tuner.view = "masked"


def test_tuner_clears_the_previous_prediction_after_an_unreadable_file(lite0, tmp_path, photos):
    (tmp_path / "cat").mkdir()
    photos["chelsea"].save(tmp_path / "cat" / "a_good.png")
    (tmp_path / "cat" / "b_broken.png").write_bytes(b"not an image at all")
    t = MaskTuner(lite0, vx.datasets.folder(tmp_path))
    assert "prediction:" in t.info.value and "true label: <b>cat</b>" in t.info.value
    t.index = 1
    assert t.info.value == "" and t.captions.value == "" and t.image.value == blank_image()
    assert "b_broken" in t.status.value and t._target.options == (("predicted class", -1),)
    with pytest.raises(RuntimeError):
        t.snapshot()
    t.index = 0
    assert "prediction:" in t.info.value and t.status.value == ""


def test_annotator_shows_the_rubric(run):
    a = Annotator(run, "rubric-reader")
    assert "Scoring rubric" in a.rubric.value and "fully accurate" in a.rubric.value
    assert a.rubric in a.children and "Scoring rubric" in a.to_html()


def test_browser_tiles_caption_score_and_names(run):
    b = QuadrantBrowser(run)
    tile, img, btn, caption = b._tiles[0]
    sid = b.page_ids[0]
    row = run.table.loc[sid]
    assert f"score {row['score']:.1f}" in caption.value and sid in caption.value
    assert views.esc(str(row["label"]).split(",")[0]) in caption.value and b.thumb_size >= 200
