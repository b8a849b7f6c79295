"""Real-browser tests of the panels: headless Debian Chromium (Playwright) against JupyterLab and Voila.

One JupyterLab page runs ``tests/notebooks/panels.ipynb`` over the offline demo run (with one
hostile judge description) and each test drives one panel in it, as a user would; one Voila
page checks the tuner and the escaping there. Screenshots go to ``test-artifacts/browser/``; those of
the states a user must be able to read (true label, captions, rubric, ...) to the test's tmp dir.
Without ``/usr/bin/chromium`` the module skips (fails when ``CI`` is set).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from vlmxplain.core.quadrants import QUADRANTS

from browser_support import (
    HOSTILE_SAMPLE, NOTEBOOK, NotebookServer, build_demo_run, lab_run_notebook, open_browser,
    plant_hostile_judgment, require_chromium, screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ANNOTATOR = "browser-test"
WAIT = 30_000  # ms: one kernel round trip is well under a second; this only bounds a hang
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def demo_run(chromium, tmp_path_factory, lite0):
    run = build_demo_run(tmp_path_factory.mktemp("panels") / "run", lite0)
    plant_hostile_judgment(run)
    return run


@pytest.fixture(scope="module")
def context(chromium):
    with open_browser(chromium) as ctx:
        yield ctx


def _server_env(run, tmp) -> dict[str, str]:
    return {"VX_PANELS_RUN_DIR": str(run.run_dir), "VX_ANNOTATOR": ANNOTATOR,
            "VLMXPLAIN_CACHE": str(tmp / "cache.sqlite")}


def _no_injection(page) -> None:
    """Nothing from the hostile judge text became markup or ran."""
    assert page.evaluate("() => window.__vx_xss === undefined"), "judge text was executed as HTML/script"
    assert page.locator('img[src="x"]').count() == 0
    assert not page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('__vx_xss'))")


@pytest.fixture(scope="module")
def lab(demo_run, context, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    with NotebookServer("lab", NOTEBOOK, tmp, env=_server_env(demo_run, tmp)) as server:
        page = context.new_page()
        try:
            lab_run_notebook(page, server)
            page.wait_for_selector(".vx-annotator .vx-progress", timeout=90_000)
        except Exception as err:
            screenshot(page, "lab-startup-failure")
            raise RuntimeError(f"JupyterLab did not render the panels: {err}\n--- server log ---\n"
                               f"{server.log_tail()}") from err
        yield page
        screenshot(page, "lab-all-panels")
        _no_injection(page)
        page.close()


def _src(locator) -> str:
    return locator.get_attribute("src") or ""


def _move_slider(panel, css: str, key: str, presses: int) -> None:
    """Move a slider with the keyboard, as a user can: focus its handle, press arrow keys."""
    handle = panel.locator(f"{css} .noUi-handle")
    handle.focus()
    for _ in range(presses):
        handle.press(key)


def _kept_percent(text: str) -> float:
    return float(re.search(r"kept ([\d.]+)%", text).group(1))


def test_mask_tuner_beta_slider_changes_image(lab):
    tuner = lab.locator(".vx-mask-tuner:not(.vx-broken-demo)")
    image, info = tuner.locator("img.vx-image"), tuner.locator(".vx-info")
    expect(info).to_contain_text("beta 0.6")
    src, kept_before = _src(image), _kept_percent(info.inner_text())
    _move_slider(tuner, ".vx-beta", "ArrowLeft", 10)  # 0.60 → 0.50
    expect(info).to_contain_text("beta 0.5")
    expect(image).not_to_have_attribute("src", src)  # a new frame came from the kernel
    assert _kept_percent(info.inner_text()) > kept_before, "a lower beta keeps more of the image"
    expect(tuner.locator(".vx-snippet")).to_contain_text("beta=0.5")
    screenshot(tuner, "mask-tuner")


def test_judge_viewer_shows_judge_text_as_text_and_pages(lab, demo_run):
    viewer = lab.locator(".vx-judge-viewer:not(.vx-embedded)")
    ids = list(demo_run.table["id"])
    n = len(ids)
    assert ids[0] == HOSTILE_SAMPLE
    position, card = viewer.locator(".vx-position"), viewer.locator(".vx-card")
    expect(position).to_contain_text(f"1 / {n} · {ids[0]}")
    text = card.inner_text()  # the hostile HTML shows as literal text
    assert '<img src=x onerror="window.__vx_xss=1">' in text and "<script>window.__vx_xss=2</script>" in text
    assert "<b>bold claim</b>" in text
    raw = viewer.locator(".vx-raw")
    expect(raw).to_be_hidden()  # the raw response starts collapsed
    viewer.locator(".vx-raw-box .jupyter-widget-Collapse-header").first.click()
    expect(raw).to_contain_text('<img src=x onerror=\\"window.__vx_xss=4\\">')
    _no_injection(lab)
    screenshot(viewer, "judge-viewer-hostile")

    masked = viewer.locator("img.vx-masked")
    src = _src(masked)
    viewer.locator("button.vx-next").click()
    expect(position).to_contain_text(f"2 / {n} · {ids[1]}")
    expect(masked).not_to_have_attribute("src", src)
    expect(card).to_contain_text(ids[1])
    jump = viewer.locator(".vx-jump input")
    jump.fill("5")
    jump.press("Enter")
    expect(position).to_contain_text(f"5 / {n} · {ids[4]}")
    viewer.locator("button.vx-prev").click()
    expect(position).to_contain_text(f"4 / {n} · {ids[3]}")
    screenshot(viewer, "judge-viewer-paged")


def test_quadrant_browser_cell_click_changes_gallery(lab, demo_run):
    table = demo_run.table
    panel = lab.locator(".vx-quadrant-browser")
    members = {q: list(table.loc[table["quadrant"] == q, "id"]) for q in QUADRANTS}
    tiles = panel.locator(".vx-thumb-open:visible")
    captions = panel.locator(".vx-thumb-caption:visible")
    first = next(q for q in QUADRANTS if members[q])  # selected at start
    expect(panel.locator(f".vx-cell-{first.lower()}")).to_have_class(re.compile("vx-cell-selected"))
    expect(captions).to_have_text([re.compile(re.escape(i)) for i in members[first][:4]])
    target = next(q for q in reversed(QUADRANTS) if members[q] and q != first)
    cell = panel.locator(f".vx-cell-{target.lower()}")
    expect(cell).to_have_text(re.compile(f"^{len(members[target])} · "))
    cell.click()
    expect(captions).to_have_text([re.compile(re.escape(i)) for i in members[target][:4]])
    expect(cell).to_have_class(re.compile("vx-cell-selected"))
    screenshot(panel, "quadrant-browser-cell")

    tiles.first.click()  # opens that sample in the viewer inside the panel
    embedded = panel.locator(".vx-judge-viewer.vx-embedded .vx-position")
    expect(embedded).to_be_visible()
    expect(embedded).to_contain_text(f"1 / {len(members[target])} · {members[target][0]}")
    screenshot(panel, "quadrant-browser-viewer")


def test_annotator_score_is_saved_to_the_run_store(lab, demo_run):
    from vlmxplain.store import RunStore

    ids = list(demo_run.table["id"])
    panel = lab.locator(".vx-annotator")
    progress, saved_line, judge = panel.locator(".vx-progress"), panel.locator(".vx-saved"), panel.locator(".vx-judge")
    expect(progress).to_contain_text(f"({ids[0]})")
    expect(judge).to_be_hidden()  # blind: the judge's verdict is hidden before scoring
    panel.locator(".vx-score button", has_text="4").click()
    expect(saved_line).to_contain_text(f"score 4 for {ids[0]}")
    store = RunStore(demo_run.run_dir)  # a second connection to the same SQLite file
    try:
        assert store.annotations(ANNOTATOR).set_index("sample_id").loc[ids[0], "score"] == 4.0
        expect(judge).to_be_visible()
        expect(judge).to_contain_text('<img src=x onerror="window.__vx_xss=1">')  # revealed, as text
        screenshot(panel, "annotator-revealed")

        keys = panel.locator(".vx-keys input")  # keyboard: accept, then score the next sample
        keys.fill("a")
        keys.press("Enter")
        expect(progress).to_contain_text(f"({ids[1]})")
        keys.fill("2")
        keys.press("Enter")
        expect(saved_line).to_contain_text(f"score 2 for {ids[1]}")
        saved = store.annotations(ANNOTATOR).set_index("sample_id")
        assert saved.loc[ids[0], "accept"] is True and saved.loc[ids[1], "score"] == 2.0
    finally:
        store.close()
    _no_injection(lab)
    screenshot(panel, "annotator-keyboard")


def test_voila_renders_tuner_and_escapes_judge_text(demo_run, context, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voila")
    env = {**_server_env(demo_run, tmp), "VX_ANNOTATOR": "voila-test"}
    with NotebookServer("voila", NOTEBOOK, tmp, env=env) as server:
        page = context.new_page()
        try:
            page.goto(f"{server.base_url}/?token={server.token}", wait_until="domcontentloaded", timeout=90_000)
            page.wait_for_selector(".vx-annotator .vx-progress", timeout=90_000)
        except Exception as err:
            screenshot(page, "voila-startup-failure")
            raise RuntimeError(f"Voila did not render the panels: {err}\n{server.log_tail()}") from err
        tuner = page.locator(".vx-mask-tuner:not(.vx-broken-demo)")
        image, info = tuner.locator("img.vx-image"), tuner.locator(".vx-info")
        expect(info).to_contain_text("beta 0.6")
        src = _src(image)
        _move_slider(tuner, ".vx-beta", "ArrowRight", 5)  # 0.60 → 0.65
        expect(info).to_contain_text("beta 0.65")
        expect(image).not_to_have_attribute("src", src)
        card = page.locator(".vx-judge-viewer:not(.vx-embedded) .vx-card")
        expect(card).to_contain_text('<img src=x onerror="window.__vx_xss=1">')
        _no_injection(page)
        screenshot(page, "voila-panels")
        page.close()


# --------------------------------------------------------------------------- what a user sees
@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Screenshots of every panel state below, kept under the test's tmp dir."""
    return tmp_path_factory.mktemp("screenshots")


def _shot(target, name: str, folder: Path) -> None:
    path = screenshot(target, name, folder)
    assert path.stat().st_size > 1000, f"empty screenshot {path}"


def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_mask_tuner_shows_true_label_captions_and_each_class_once(lab, demo_run, shots):
    tuner = lab.locator(".vx-mask-tuner:not(.vx-broken-demo)")
    label = demo_run.table["label"].iloc[0]
    expect(tuner.locator(".vx-info")).to_contain_text(f"true label: {label}")
    tuner.locator(".vx-view button", has_text="side by side").click()
    expect(tuner.locator(".vx-caption")).to_have_text(
        ["original", "heat-map overlay", re.compile(r"^masked CAM image \(what the judge sees\)")])
    options = [o.strip() for o in tuner.locator(".vx-target select option").all_inner_texts()]
    predicted = options[0].removeprefix("predicted: ").rsplit(" (", 1)[0]
    assert sum(o.rsplit(" (", 1)[0] == predicted for o in options[1:]) == 0, options
    _shot(tuner, "mask-tuner-true-label-side-by-side", shots)


def test_mask_tuner_clears_after_an_unreadable_file(lab, shots):
    tuner = lab.locator(".vx-broken-demo")
    info, status = tuner.locator(".vx-info"), tuner.locator(".vx-status")
    expect(info).to_contain_text("prediction:")
    _shot(tuner, "mask-tuner-readable", shots)
    tuner.locator(".vx-picker select").select_option(index=1)  # the broken file
    expect(status).to_contain_text("b_broken")
    expect(info).to_have_text("")
    expect(tuner.locator(".vx-caption")).to_have_count(0)
    _shot(tuner, "mask-tuner-unreadable-cleared", shots)


def test_judge_viewer_score_range_readout_clear_of_its_slider(lab, shots):
    viewer = lab.locator(".vx-judge-viewer:not(.vx-embedded)")
    readout, track = viewer.locator(".vx-filter-score-range"), viewer.locator(".vx-filter-score .noUi-target")
    expect(readout).to_have_text("0.0 – 5.0")
    assert not _overlap(readout.bounding_box(), track.bounding_box())
    _shot(viewer.locator(".vx-filter-score").locator("xpath=.."), "judge-viewer-score-filter", shots)


def test_quadrant_browser_tiles_are_big_and_captions_readable(lab, demo_run, shots):
    panel = lab.locator(".vx-quadrant-browser")
    caption = panel.locator(".vx-thumb-caption:visible").first
    expect(caption).to_contain_text("score ")
    expect(caption).to_contain_text("→")
    assert panel.locator("img.vx-thumb-image:visible").first.bounding_box()["width"] >= 190
    assert caption.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "caption cut off"
    _shot(panel.locator(".vx-gallery"), "quadrant-browser-tiles", shots)


def test_annotator_shows_the_rubric(lab, shots):
    panel = lab.locator(".vx-annotator")
    rubric = panel.locator(".vx-rubric")
    expect(rubric).to_contain_text("Scoring rubric (0–5)")
    expect(rubric).to_contain_text("fully accurate")
    expect(rubric).to_contain_text("scattered or irrelevant")
    _shot(panel, "annotator-rubric", shots)
