"""Reports and comparisons on offline runs: one self-contained, escaped HTML file; transition
tables and per-class differences that agree with the runs' own tables (and are zero against
a run compared with itself)."""
from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import vlmxplain as vx
from browser_support import HOSTILE_DESCRIPTION, HOSTILE_JUSTIFICATION, build_demo_run, plant_hostile_judgment
from vlmxplain.core.quadrants import QUADRANTS

ROOT = Path(__file__).resolve().parent.parent


class Resources(HTMLParser):
    """Every tag and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "data", "action")]


@pytest.fixture(scope="module")
def run(tmp_path_factory, lite0):
    r = build_demo_run(tmp_path_factory.mktemp("report") / "run", lite0)
    plant_hostile_judgment(r)
    return vx.open_run(r.run_dir)


@pytest.fixture(scope="module")
def other(tmp_path_factory, lite0):
    """The same photos at another beta: some samples change quadrant."""
    return vx.explain(lite0, vx.datasets.gallery(), beta=0.35, run_dir=tmp_path_factory.mktemp("other") / "run",
                      cache=False, progress=False, verbose=False)


@pytest.fixture(scope="module")
def page(run, tmp_path_factory) -> str:
    path = vx.report(run, tmp_path_factory.mktemp("html") / "report.html")
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained(page):
    parsed = Resources()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    assert parsed.urls and all(u.startswith("data:image/") for u in parsed.urls)
    assert page.count("<img") >= 4 + 8  # figures + one thumbnail per sample


def test_report_escapes_judge_text(page):
    assert HOSTILE_DESCRIPTION not in page and HOSTILE_JUSTIFICATION not in page
    assert "&lt;script&gt;window.__vx_xss=2&lt;/script&gt;" in page


def test_report_holds_configuration_matrix_classes_galleries_and_cost(run, page):
    for section in ("configuration", "quadrants", "per-class", "gallery", "gallery-per-class", "samples", "cost"):
        assert f"id='{section}'" in page
    assert run.config.classifier.fingerprint in page and run.view.judge.prompt_version in page
    assert "not a vision-language model" in page  # the offline judge labelled as what it is
    for label in run.table["label"].unique():
        assert f"<h3>{label}</h3>" in page  # a gallery per class
    counts = run.quadrants().counts
    assert all(f"<th>{q}</th>\n      <td>{int(counts[q])}</td>" in page for q in QUADRANTS)
    assert "requests paid" in page
    assert "Classes with more Correct-Low than the rest" in page and "Benjamini-Hochberg" in page


def test_report_cli(run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "r.html"
    done = subprocess.run([sys.executable, "-m", "vlmxplain.cli", "report", str(run.run_dir), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = subprocess.run([sys.executable, "-m", "vlmxplain.cli", "report", str(tmp_path / "nothing")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "run_dir:" in bad.stderr


def test_compare_transitions_agree_with_both_tables(run, other):
    c = vx.compare(run, other)
    a, b = run.table, other.table
    assert len(c.table) == len(a) == len(b)
    moved = {i for i in a.index if a.loc[i, "quadrant"] != b.loc[i, "quadrant"]}
    assert set(c.moved["id"]) == moved and len(moved) > 0  # beta 0.35 vs 0.6 moves samples
    t = c.transitions
    assert int(t.to_numpy().sum()) == len(a)
    for qa in t.index:
        for qb in t.columns:
            assert t.loc[qa, qb] == int(((a["quadrant"] == qa) & (b["quadrant"] == qb)).sum())
    pc = c.per_class
    for label, g in a.groupby("label"):
        gb = b.loc[g.index]
        assert pc.loc[label, "mean_score_diff"] == pytest.approx(gb["score"].mean() - g["score"].mean())
    assert np.allclose(c.score_change.sort_index(), (b["score"] - a["score"]).sort_index())


def test_compare_with_itself_moves_nothing(run):
    c = vx.compare(run, run)
    assert len(c.moved) == 0 and (c.score_change == 0).all()
    diffs = c.per_class[[col for col in c.per_class if col.endswith("_diff")]]
    assert (diffs.to_numpy() == 0).all()
    t = c.transitions
    assert int(np.trace(t.to_numpy())) == len(run.table)


def test_compare_figures(run, other):
    c = vx.compare(run, other)
    fig = c.plot_transitions()
    texts = [int(x.get_text()) for x in fig.axes[0].texts]
    assert sorted(texts) == sorted(c.transitions.to_numpy().ravel().tolist())
    assert f"{len(c.moved)} of {len(c.table)} samples moved" in fig.axes[0].get_title()
    fig2 = c.plot_scores()
    n_points = sum(len(col.get_offsets()) for col in fig2.axes[0].collections)
    both = c.table["score_a"].notna() & c.table["score_b"].notna()
    assert n_points == int(both.sum())
    assert "moved quadrant" in c._repr_html_()


def test_compare_refuses_runs_without_shared_samples(run, tmp_path, lite0, photos):
    (tmp_path / "photos" / "tabby").mkdir(parents=True)
    photos["chelsea"].save(tmp_path / "photos" / "tabby" / "mine.png")
    mine = vx.explain(lite0, vx.datasets.folder(tmp_path / "photos"), run_dir=tmp_path / "mine", cache=False,
                      progress=False, verbose=False)
    with pytest.raises(ValueError, match="^compare: .* share no sample id"):
        vx.compare(run, mine)
