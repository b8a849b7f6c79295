"""Quadrant arithmetic against hand-built tables: ties at the threshold, missing scores, empty classes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmxplain.core.quadrants import QUADRANTS, assign_quadrants, quadrant_summary
from vlmxplain.viz.figures import plot_quadrant_matrix, plot_score_histogram


def table(rows):
    return pd.DataFrame(rows, columns=["label", "correct", "score"])


HAND = table([
    ("cat", True, 5.0),     # Correct-High
    ("cat", True, 2.5),     # tie at the threshold → High
    ("cat", True, 2.49),    # Correct-Low
    ("dog", False, 4.0),    # Wrong-High
    ("dog", False, 0.0),    # Wrong-Low
    ("dog", False, None),   # failed judgment → Unjudged, not in the matrix
    ("fox", None, 3.0),     # no label → Unlabelled
])


def test_assignment_by_hand_including_ties():
    q = assign_quadrants(HAND["correct"], HAND["score"], 2.5).tolist()
    assert q == ["Correct-High", "Correct-High", "Correct-Low", "Wrong-High", "Wrong-Low", "Unjudged", "Unlabelled"]


def test_counts_shares_and_matrix():
    s = quadrant_summary(HAND, threshold=2.5)
    assert s.counts.to_dict() == {"Correct-High": 2, "Correct-Low": 1, "Wrong-High": 1, "Wrong-Low": 1}
    assert s.total == 5 and s.unjudged == 1 and s.unlabelled == 1
    assert s.shares["Correct-High"] == pytest.approx(0.4) and s.shares.sum() == pytest.approx(1.0)
    assert s.matrix.to_numpy().tolist() == [[2, 1], [1, 1]]


def test_threshold_moves_ties_and_bounds():
    assert quadrant_summary(HAND, threshold=2.51).counts["Correct-Low"] == 2
    everything_high = quadrant_summary(HAND, threshold=0)
    assert everything_high.counts["Correct-Low"] == 0 and everything_high.counts["Wrong-Low"] == 0
    only_fives = quadrant_summary(HAND, threshold=5)
    assert only_fives.counts["Correct-High"] == 1 and only_fives.counts["Wrong-High"] == 0
    for bad in (-0.1, 5.1, float("nan"), "high"):
        with pytest.raises(ValueError, match="^threshold"):
            quadrant_summary(HAND, threshold=bad)


def test_per_class_includes_empty_classes_without_nan():
    s = quadrant_summary(HAND, threshold=2.5)
    per = s.per_class
    assert list(per.index) == ["cat", "dog", "fox"]
    assert per.loc["cat", list(QUADRANTS)].tolist() == [2, 1, 0, 0] and per.loc["cat", "n"] == 3
    assert per.loc["dog", "n"] == 2  # the unjudged dog is not counted
    assert per.loc["fox", "n"] == 0 and per.loc["fox", [f"{q} share" for q in QUADRANTS]].tolist() == [0, 0, 0, 0]
    assert not per.isna().any().any()
    assert per.loc["cat", "Correct-High share"] == pytest.approx(2 / 3)


def test_empty_table():
    s = quadrant_summary(table([]), threshold=2.5)
    assert s.total == 0 and s.shares.tolist() == [0, 0, 0, 0] and s.per_class.empty


def test_figures_render_counts():
    s = quadrant_summary(HAND, threshold=2.5)
    fig = plot_quadrant_matrix(s)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"2\n40%\n95% CI 12–77%", "1\n20%\n95% CI 4–62%"} <= texts  # with the Wilson interval of 2 and 1 of 5
    fig2 = plot_score_histogram(HAND, 2.5)
    heights = [p.get_height() for p in fig2.axes[0].patches if p.get_height() > 0]
    assert sum(heights) == 5  # every judged, labelled sample lands in a bar
    assert "Correct-High" in s._repr_html_() and "unjudged" in repr(s)


def test_vx_agreement_on_annotations_saved_in_the_run(lite0, tmp_path, monkeypatch):
    import vlmxplain as vx

    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))
    run = vx.explain(lite0, vx.datasets.gallery(), run_dir=tmp_path / "r", progress=False, verbose=False)
    with pytest.raises(ValueError, match="no human annotations"):
        vx.agreement(run)
    scores = run.table["score"]
    for sid, score in scores.items():  # a human who agrees in rank with the judge
        run.store.put_annotation(sid, "alice", float(score))
    table = vx.agreement(run, "alice", n_boot=0)
    spearman = table.set_index("method").loc["spearman", "estimate"]
    assert spearman == pytest.approx(1.0) and int(table["n"].iloc[0]) == len(scores)


def _classes(seed: int, low_rate) -> pd.DataFrame:
    """10 classes × 40 right answers, each Low (score 1) with probability ``low_rate(class)``."""
    rng = np.random.default_rng(seed)
    low = np.concatenate([rng.random(40) < low_rate(c) for c in range(10)])
    return pd.DataFrame({"correct": True, "score": np.where(low, 1.0, 4.0), "label": np.repeat([f"c{c}" for c in range(10)], 40)})


def test_a_class_right_for_the_wrong_reasons_is_flagged_and_chance_is_not():
    planted = quadrant_summary(_classes(0, lambda c: 0.6 if c == 3 else 0.1), 2.5).over_represented()
    assert list(planted.index[planted["flagged"]]) == ["c3"] and planted.index[0] == "c3"
    assert planted.loc["c3", "share"] > 0.5 > planted.loc["c3", "rest_share"] and planted.loc["c3", "q"] < 1e-6
    assert list(planted.columns) == ["n", "count", "share", "rest_share", "p", "q", "flagged"]
    # the control: Low at the same rate in every class. Benjamini-Hochberg at 5 % flags some class in
    # about 5 % of such tables (10 of 200 seeds measured; 1 of these 20)
    null = [quadrant_summary(_classes(seed, lambda c: 0.15), 2.5).over_represented()["flagged"].sum()
            for seed in range(20)]
    assert sum(n > 0 for n in null) <= 3
    # another quadrant, and input checks
    assert not quadrant_summary(_classes(0, lambda c: 0.6 if c == 3 else 0.1), 2.5).over_represented("Wrong-Low")[
        "flagged"].any()  # every answer is right: no class has more wrong ones
    with pytest.raises(ValueError, match="quadrant"):
        quadrant_summary(_classes(0, lambda c: 0.1), 2.5).over_represented("Correct-low")
    with pytest.raises(ValueError, match="fdr"):
        quadrant_summary(_classes(0, lambda c: 0.1), 2.5).over_represented(fdr=5)


def test_a_class_is_not_flagged_for_being_easy():
    """Low on 20 % of right answers in every class; class c0 is right 100 % of the time, the others
    40 %: c0 has the most Correct-Low samples of its class, yet not more per right answer."""
    rng = np.random.default_rng(1)
    rows = []
    for c in range(8):
        correct = rng.random(200) < (1.0 if c == 0 else 0.4)
        low = rng.random(200) < 0.2
        rows.append(pd.DataFrame({"correct": correct, "score": np.where(low, 1.0, 4.0), "label": f"c{c}"}))
    s = quadrant_summary(pd.concat(rows), 2.5)
    share_of_class = s.per_class["Correct-Low share"]
    assert share_of_class.idxmax() == "c0" and share_of_class["c0"] > 2 * share_of_class.drop("c0").max()
    test = s.over_represented()
    assert not test["flagged"].any() and test.loc["c0", "n"] == s.per_class.loc["c0", ["Correct-High", "Correct-Low"]].sum()
