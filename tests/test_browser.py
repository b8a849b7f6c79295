"""Real-browser tests of the panels: headless Debian Chromium (Playwright) against JupyterLab and Voila.

One JupyterLab page runs ``tests/notebooks/panels.ipynb`` over the offline demo run (with one
hostile judge description) and each test drives one panel in it, as a user would; one Voila
page checks the tuner and the escaping there. Screenshots go to ``test-artifacts/browser/``.
Without ``/usr/bin/chromium`` the module skips (fails when ``CI`` is set).
"""
from __future__ import annotations

import re

import pytest

from browser_support import (
    HOSTILE_DESCRIPTION, HOSTILE_SAMPLE, NOTEBOOK, NotebookServer, build_demo_run, lab_run_notebook, open_browser,
    plant_hostile_judgment, require_chromium, screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ANNOTATOR = "browser-test"
WAIT = 30_000  # ms: one kernel round trip is well under a second; this only bounds a hang


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
    return {"VX_PANELS_RUN_DIR": str(run.run_dir), "VX_ANNOTATOR": ANNOTATOR, "VLMXPLAIN_CACHE": str(tmp / "cache.sqlite")}


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
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
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


def _wait_changed(page, locator, before: str, what: str) -> str:
    """Wait until the element's ``src`` differs from ``before``; return the new value."""
    handle = locator.element_handle()
    page.wait_for_function("([el, old]) => el.getAttribute('src') && el.getAttribute('src') !== old",
                           arg=[handle, before], timeout=WAIT)
    return _src(locator)


def test_mask_tuner_beta_slider_changes_image(lab):
    page = lab
    tuner = page.locator(".vx-mask-tuner")
    image, kept = tuner.locator("img.vx-image"), tuner.locator(".vx-kept")
    page.wait_for_function("() => document.querySelector('.vx-mask-tuner img.vx-image').naturalWidth > 100",
                           timeout=WAIT)
    src, kept_before = _src(image), kept.inner_text()
    assert "kept" in kept_before and "beta 0.6" in tuner.locator(".vx-params").inner_text()
    handle = tuner.locator(".vx-beta .noUi-handle")
    handle.focus()
    for _ in range(10):
        handle.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('.vx-mask-tuner .vx-params').textContent.includes('beta 0.5')",
                           timeout=WAIT)
    _wait_changed(page, image, src, "tuner image")
    kept_after = kept.inner_text()
    share = lambda text: float(re.search(r"([\d.]+)%", text).group(1))  # noqa: E731
    assert share(kept_after) > share(kept_before), "a lower beta keeps more of the image"
    assert "beta=0.5" in tuner.locator(".vx-snippet").inner_text()
    screenshot(tuner, "mask-tuner")


def test_judge_viewer_shows_judge_text_as_text_and_pages(lab, demo_run):
    page = lab
    viewer = page.locator(".vx-judge-viewer:not(.vx-embedded)")
    ids = list(demo_run.table["id"])
    position = viewer.locator(".vx-position")
    assert position.inner_text().startswith(f"1 / {len(ids)}") and ids[0] in position.inner_text()
    assert ids[0] == HOSTILE_SAMPLE
    card = viewer.locator(".vx-card")
    assert '<img src=x onerror="window.__vx_xss=1">' in card.inner_text()
    assert "<script>window.__vx_xss=2</script>" in card.inner_text()
    assert "<b>bold claim</b>" in card.inner_text()
    viewer.locator(".vx-raw-box .jupyter-widget-Collapse-header").first.click()
    raw = viewer.locator(".vx-raw")
    raw.wait_for(state="visible", timeout=WAIT)
    assert "<img src=x" in raw.inner_text()
    _no_injection(page)
    screenshot(viewer, "judge-viewer-hostile")

    masked = viewer.locator("img.vx-masked")
    src = _src(masked)
    viewer.locator("button.vx-next").click()
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.includes(text)",
        arg=[".vx-judge-viewer:not(.vx-embedded) .vx-position", f"2 / {len(ids)} · {ids[1]}"], timeout=WAIT)
    _wait_changed(page, masked, src, "viewer masked image")
    assert ids[1] in card.inner_text()
    jump = viewer.locator(".vx-jump input")
    jump.fill("5")
    jump.press("Enter")
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.includes(text)",
        arg=[".vx-judge-viewer:not(.vx-embedded) .vx-position", f"5 / {len(ids)} · {ids[4]}"], timeout=WAIT)
    viewer.locator("button.vx-prev").click()
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.includes(text)",
        arg=[".vx-judge-viewer:not(.vx-embedded) .vx-position", f"4 / {len(ids)} · {ids[3]}"], timeout=WAIT)
    screenshot(viewer, "judge-viewer-paged")


def _visible_tiles(panel) -> list[str]:
    return [t.split(" · ")[0] for t in panel.locator(".vx-thumb-open:visible").all_inner_texts()]


def test_quadrant_browser_cell_click_changes_gallery(lab, demo_run):
    page = lab
    table = demo_run.table
    panel = page.locator(".vx-quadrant-browser")
    by_quadrant = {q: list(table.loc[table["quadrant"] == q, "id"]) for q in table["quadrant"].unique()}
    start = panel.locator(".vx-cell-selected")
    first = next(q for q in ("Correct-High", "Correct-Low", "Wrong-High", "Wrong-Low") if by_quadrant.get(q))
    assert f"vx-cell-{first.lower()}" in start.get_attribute("class")
    assert _visible_tiles(panel) == by_quadrant[first][:4]
    target = next(q for q in ("Wrong-Low", "Correct-Low", "Wrong-High") if by_quadrant.get(q) and q != first)
    expected = by_quadrant[target][:4]
    cell = panel.locator(f".vx-cell-{target.lower()}")
    assert cell.inner_text().startswith(f"{len(by_quadrant[target])} · ")
    cell.click()
    page.wait_for_function(
        """([expected]) => JSON.stringify([...document.querySelectorAll('.vx-quadrant-browser .vx-thumb-open')]
               .filter(b => b.offsetParent !== null).map(b => b.textContent.split(' · ')[0]))
               === JSON.stringify(expected)""",
        arg=[expected], timeout=WAIT)
    assert "vx-cell-selected" in cell.get_attribute("class")
    screenshot(panel, "quadrant-browser-cell")

    panel.locator(".vx-thumb-open:visible").first.click()
    embedded = panel.locator(".vx-judge-viewer.vx-embedded .vx-position")
    embedded.wait_for(state="visible", timeout=WAIT)
    page.wait_for_function(
        "([text]) => document.querySelector('.vx-quadrant-browser .vx-embedded .vx-position').textContent.includes(text)",
        arg=[f"1 / {len(by_quadrant[target])} · {expected[0]}"], timeout=WAIT)
    screenshot(panel, "quadrant-browser-viewer")


def test_annotator_score_is_saved_to_the_run_store(lab, demo_run):
    from vlmxplain.store import RunStore

    page = lab
    ids = list(demo_run.table["id"])
    panel = page.locator(".vx-annotator")
    assert f"({ids[0]})" in panel.locator(".vx-progress").inner_text()
    assert not panel.locator(".vx-judge").is_visible(), "blind: the judge's verdict is hidden before scoring"
    panel.locator(".vx-score button", has_text="4").click()
    page.wait_for_function(
        "() => document.querySelector('.vx-annotator .vx-saved').textContent.includes('score 4')", timeout=WAIT)
    store = RunStore(demo_run.run_dir)  # a second connection to the same SQLite file
    try:
        saved = store.annotations(ANNOTATOR).set_index("sample_id")
        assert saved.loc[ids[0], "score"] == 4.0
        judge = panel.locator(".vx-judge")
        judge.wait_for(state="visible", timeout=WAIT)
        assert HOSTILE_DESCRIPTION.split(">")[0] in judge.inner_text()  # revealed, and shown as text
        screenshot(panel, "annotator-revealed")

        keys = panel.locator(".vx-keys input")  # keyboard: accept, then score the next sample
        keys.fill("a")
        keys.press("Enter")
        page.wait_for_function(
            "([id]) => document.querySelector('.vx-annotator .vx-progress').textContent.includes('(' + id + ')')",
            arg=[ids[1]], timeout=WAIT)
        keys.fill("2")
        keys.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.vx-annotator .vx-saved').textContent.includes('score 2')", timeout=WAIT)
        saved = store.annotations(ANNOTATOR).set_index("sample_id")
        assert saved.loc[ids[0], "accept"] is True
        assert saved.loc[ids[1], "score"] == 2.0
    finally:
        store.close()
    _no_injection(page)
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
        tuner = page.locator(".vx-mask-tuner")
        image = tuner.locator("img.vx-image")
        page.wait_for_function("() => document.querySelector('.vx-mask-tuner img.vx-image').naturalWidth > 100",
                               timeout=WAIT)
        src = _src(image)
        handle = tuner.locator(".vx-beta .noUi-handle")
        handle.focus()
        for _ in range(5):
            handle.press("ArrowRight")
        page.wait_for_function(
            "() => document.querySelector('.vx-mask-tuner .vx-params').textContent.includes('beta 0.65')", timeout=WAIT)
        _wait_changed(page, image, src, "tuner image")
        card = page.locator(".vx-judge-viewer:not(.vx-embedded) .vx-card")
        assert '<img src=x onerror="window.__vx_xss=1">' in card.inner_text()
        _no_injection(page)
        screenshot(page, "voila-panels")
        page.close()
