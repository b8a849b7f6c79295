"""Figures read right: asserted on the matplotlib objects, not on pixels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from browser_support import build_demo_run
from vlmxplain.core.quadrants import QUADRANTS, quadrant_summary
from vlmxplain.viz import figures as vxf
from vlmxplain.viz.agreement import plot_agreement
from vlmxplain.viz.sweep import plot_sweep_heatmap


def many(correct_high: int, wrong_high: int, wrong_low: int) -> pd.DataFrame:
    n = correct_high + wrong_high + wrong_low
    correct = [True] * correct_high + [False] * (wrong_high + wrong_low)
    score = [4.0] * (correct_high + wrong_high) + [1.0] * wrong_low
    return pd.DataFrame({"correct": correct, "score": score, "label": ["a"] * n})


def test_small_cells_never_read_zero_and_partial_never_hundred():
    fig = vxf.plot_quadrant_matrix(quadrant_summary(many(598, 1, 1), 2.5))
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    # count, share and its 95 % Wilson interval: never 0 above nothing nor 100 % below everything
    assert texts == ["0\n0%\n95% CI 0.0–0.6%", "1\n0.2%\n95% CI 0.03–0.94%", "1\n0.2%\n95% CI 0.03–0.94%", "598\n99.7%\n95% CI 98.8–99.9%"]
    assert vxf.interval_text(0.98, 0.9996) == "98.00–99.96%" and vxf.interval_text(0.2, 0.45) == "20–45%"
    assert vxf.interval_text(0.0, 1.0) == "0–100%" and vxf.interval_text(1e-6, 0.0004) == "0.000–0.040%"
    assert vxf.share_text(1, 5000) == "<0.1%" and vxf.share_text(4999, 5000) == ">99.9%"
    assert vxf.share_text(3, 10) == "30%" and vxf.share_text(0, 10) == "0%" and vxf.share_text(10, 10) == "100%"
    assert vxf.share_text(597, 600) == "99.5%" and vxf.share_text(3, 600) == "0.5%"  # a real run's cells
    for total in (7, 600, 5000, 123457):  # no partial cell reads 0% or 100%
        for count in range(1, min(total, 400)):
            assert vxf.share_text(count, total) not in ("0%", "0.0%")
            assert vxf.share_text(total - count, total) not in ("100%", "100.0%")


def test_score_histogram_centres_bars_shows_wrong_counts_and_integer_ticks():
    table = pd.DataFrame({"correct": [True] * 300 + [False] * 3, "score": [4.0] * 200 + [5.0] * 100 + [1.0, 1.0, 4.0]})
    fig = vxf.plot_score_histogram(table, 2.5)
    ax = fig.axes[0]
    fig.canvas.draw()
    correct = [p for p in ax.patches if p.get_gid() == "correct"]
    wrong = [p for p in ax.patches if p.get_gid() == "wrong"]
    assert len(correct) == len(wrong) == 11
    for c, w in zip(correct, wrong):  # each pair sits side by side, centred on its score
        centre = (c.get_x() + w.get_x() + w.get_width()) / 2
        assert centre == pytest.approx(round(centre * 2) / 2)
    assert sorted(w.get_height() for w in wrong if w.get_height()) == [1, 2]  # the 3 wrong predictions are drawn
    labels = [t.get_text() for t in ax.texts]
    assert "2" in labels and "1" in labels and "200" in labels  # counts written on the bars
    assert all(float(t).is_integer() for t in ax.get_yticks())
    assert [int(t) for t in ax.get_xticks()] == [0, 1, 2, 3, 4, 5]


def test_figures_are_not_pyplots_and_render_themselves():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = quadrant_summary(many(5, 1, 1), 2.5).plot()  # run.quadrants().plot()
    assert plt.get_fignums() == before  # pyplot will not draw it a second time
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # shown as a cell's value, whatever the backend


@pytest.fixture(scope="module")
def run(tmp_path_factory, lite0):
    return build_demo_run(tmp_path_factory.mktemp("figures") / "run", lite0)


def test_gallery_captions_show_true_label_prediction_and_score_uncut(run):
    table = run.table
    fig = vxf.plot_quadrant_gallery(run, per_quadrant=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    shown = table[table["quadrant"].isin(QUADRANTS)].groupby("quadrant").head(4)
    assert len(titles) == len(shown)
    for _, row in shown.iterrows():
        expected = f"{row['label'].split(',')[0]} → {str(row['predicted_name']).split(',')[0]}"
        assert any(expected in t.replace("\n", " ") for t in titles), (expected, titles)  # wrapped, not cut
    assert all(t.splitlines()[-1].startswith("score ") for t in titles)


def test_gallery_has_no_empty_boxes(run):
    fig = vxf.plot_quadrant_gallery(run, per_quadrant=4)
    visible = [ax for ax in fig.axes if ax.axison]
    assert all(ax.images for ax in visible)  # every visible box holds an image
    present = [q for q in QUADRANTS if (run.table["quadrant"] == q).any()]
    missing = [q for q in QUADRANTS if q not in present]
    if missing:
        assert all(q in fig._suptitle.get_text() for q in missing)


def test_agreement_points_stay_in_range_and_the_stats_box_off_them():
    rng = np.random.default_rng(0)
    judge = pd.Series(rng.integers(0, 6, 80).astype(float), index=[f"s{i}" for i in range(80)])
    human = (judge + rng.integers(-1, 2, 80)).clip(0, 5)
    fig = plot_agreement(judge, human, jitter=0.3)
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert points.min() >= 0 and points.max() <= 5
    fig.canvas.draw()
    box = ax.texts[0].get_window_extent()
    shown = ax.transData.transform(points)
    inside = (shown[:, 0] >= box.x0) & (shown[:, 0] <= box.x1) & (shown[:, 1] >= box.y0) & (shown[:, 1] <= box.y1)
    assert not inside.any()


def test_sweep_marks_the_papers_cell_at_its_centre():
    from vlmxplain.experiments.sweep import SweepResult

    cells = [(a, b) for a in (15.0, 20.0, 25.0, 30.0) for b in (0.3, 0.4, 0.5, 0.6, 0.7)]
    rho = np.linspace(0, 1, len(cells))
    table = pd.DataFrame({"alpha": [a for a, _ in cells], "beta": [b for _, b in cells],
                          "spearman": rho, "spearman_ci_low": rho - 0.05, "spearman_ci_high": rho + 0.05})
    fig = plot_sweep_heatmap(SweepResult(table, "spearman", "offline:groundtruth", "ground truth"))
    marker = [ln for ln in fig.axes[0].lines if ln.get_gid() == "paper-setting"]
    assert len(marker) == 1
    assert (marker[0].get_xdata()[0], marker[0].get_ydata()[0]) == (3.5, 2.5)  # beta 0.6 column, alpha 25 row


def test_bias_curve_legend_and_note_sit_outside_the_data():
    from vlmxplain.experiments.bias import BiasParams, BiasResult
    from vlmxplain.viz.bias import plot_bias_curve

    rates = [0.0, 0.25, 0.5, 0.75, 1.0]
    cols = ["flagged_share", "correct_low_share", "energy_on_shortcut", "accuracy_clean", "accuracy_dotted"]
    table = pd.DataFrame({"kind": ["shortcut"] * 5 + ["control"], "rate": rates + [1.0],
                          **{c: list(np.linspace(0.1, 0.9, 5)) + [0.5] for c in cols}})
    corr = pd.DataFrame({"pearson_r": [0.9]}, index=["flagged_share"])
    fig = plot_bias_curve(BiasResult(BiasParams(), table, pd.DataFrame(), {}, corr))
    ax = fig.axes[0]
    fig.canvas.draw()
    data_area = ax.get_window_extent()
    assert ax.get_legend().get_window_extent().x0 >= data_area.x1
    assert all(t.get_window_extent().x0 >= data_area.x1 for t in ax.texts)


def test_per_class_matrix_counts_and_shades_by_share():
    table = pd.DataFrame({"correct": [True, True, False, True, True, True], "score": [4, 1, 4, 4, 4, 4],
                          "label": ["a", "a", "a", "b", "b", "b"]})
    fig = vxf.plot_per_class_matrix(quadrant_summary(table, 2.5))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (n=3)", "b (n=3)"]
    assert [t.get_text() for t in ax.texts] == ["1", "1", "1", "0", "3", "0", "0", "0"]
    shades = ax.collections[0].get_array().reshape(2, 4)
    assert np.allclose(shades, [[1 / 3, 1 / 3, 1 / 3, 0], [1, 0, 0, 0]])
    assert ax.get_xlabel() == ""  # 3 samples a class: nothing stands out beyond chance


def test_per_class_matrix_marks_a_class_right_for_the_wrong_reasons():
    low = {"a": 0.1, "b": 0.8, "c": 0.1, "d": 0.1}  # b: mostly right answers with low scores
    rng = np.random.default_rng(0)
    table = pd.concat([pd.DataFrame({"correct": True, "score": np.where(rng.random(40) < r, 1.0, 4.0), "label": c})
                       for c, r in low.items()])
    ax = vxf.plot_per_class_matrix(quadrant_summary(table, 2.5)).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (n=40)", "b (n=40) *", "c (n=40)", "d (n=40)"]
    assert "more Correct-Low" in ax.get_xlabel()
