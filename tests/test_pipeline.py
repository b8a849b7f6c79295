"""explain() end to end: resume after SIGKILL, the cross-run cache, offline judges, tables."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import binary_dilation

import vlmxplain as vx
from vlmxplain.judges.offline import GroundTruthJudge
from vlmxplain.masks import make_judge_input
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))


@pytest.fixture(scope="module")
def shapes_clf():
    """A trained ShapesNet (≈10 s): the offline judges need a model that sees shapes."""
    torch.manual_seed(0)
    from vlmxplain.models.shapesnet import train_shapes_classifier

    return train_shapes_classifier(vx.datasets.shapes(1800, seed=101), epochs=4, progress=False)


class CountingJudge(GroundTruthJudge):
    """The real ground-truth judge, counting what it is asked (to prove nothing is asked twice)."""

    def __init__(self):
        self.calls = 0

    def judge_many(self, items):
        self.calls += len(items)
        yield from super().judge_many(items)


def test_explain_gallery_table_and_quadrants(lite0, tmp_path):
    data = vx.datasets.gallery()
    run = vx.explain(lite0, data, run_dir=tmp_path / "run", progress=False, verbose=False)
    t = run.table
    assert len(t) == len(data) and list(t["id"]) == data.ids
    assert set(t["judge_status"]) == {"ok"} and t["score"].between(0, 5).all()
    assert t.loc["chelsea", "correct"] is True and "cat" in t.loc["chelsea", "predicted_name"]
    assert t.loc["coffee", "predicted_name"] == "espresso"
    assert t.loc["grace_hopper", "target_names"] == ["military uniform"]  # the truth, not the model's guess
    assert t["correct"].value_counts().get(False, 0) >= 1  # the gallery has genuine mistakes (rocket, ...)
    assert "not a vision-language model" in t.loc["chelsea", "description"]
    q = run.quadrants(threshold=2.5)
    assert q.total == len(data) and q.counts.sum() == len(data)
    assert int(q.counts["Correct-High"] + q.counts["Correct-Low"]) == int(t["correct"].sum())
    reopened = vx.open_run(tmp_path / "run")
    assert reopened.table[["score", "quadrant"]].equals(t[["score", "quadrant"]])
    assert len(reopened.skipped) == 0


def test_threshold_and_alpha_beta_change_later_without_cams(lite0, tmp_path):
    run = vx.explain(lite0, vx.datasets.gallery()[:3], run_dir=tmp_path / "r", progress=False, verbose=False)
    low, high = run.quadrants(threshold=0.0), run.quadrants(threshold=5.0)
    assert low.counts[["Correct-Low", "Wrong-Low"]].sum() == 0
    assert high.counts[["Correct-High", "Wrong-High"]].sum() <= (run.table["score"] == 5).sum()
    before = run.table["score"]
    same = vx.rejudge(run, beta=0.3, classifier=lite0, progress=False, make_current=False)
    assert same.last_summary.judged == 3 and same.last_summary.cams_computed == 0
    other = run.table_for(beta=0.3)
    assert other["score"].notna().all() and not np.allclose(other["score"], before)
    assert run.beta == 0.6  # make_current=False: the current view is unchanged
    # as the README shows it: the default judge needs the classifier, rebuilt from the run record
    again = vx.rejudge(vx.open_run(tmp_path / "r"), beta=0.3, progress=False)
    assert again.last_summary.judged == 0 and again.beta == 0.3  # cached in the store; now the current view
    reopened = vx.open_run(tmp_path / "r")
    assert reopened.beta == 0.3 and np.allclose(reopened.table["score"], other["score"])


def test_cache_second_run_in_new_dir_makes_zero_judge_calls(tmp_path):
    torch.manual_seed(0)  # an untrained net: without a seed, which maps come out blank varies by run
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(12, seed=3)
    first, second = CountingJudge(), CountingJudge()
    a = vx.explain(clf, data, judge=first, run_dir=tmp_path / "a", progress=False, verbose=False)
    sent = 12 - a.last_summary.no_attention  # a blank map is recorded as such, never sent to a judge
    run = vx.explain(clf, data, judge=second, run_dir=tmp_path / "b", progress=False, verbose=False)
    assert sent >= 6 and first.calls == sent and second.calls == 0
    assert run.last_summary.cached == sent and run.table["cached"].sum() == sent
    assert run.table["score"].tolist() == vx.open_run(tmp_path / "a").table["score"].tolist()
    third = CountingJudge()
    vx.explain(clf, data, judge=third, run_dir=tmp_path / "c", cache=False, progress=False, verbose=False)
    assert third.calls == sent  # cache off: asked again


def test_rerun_of_finished_run_recomputes_nothing(tmp_path):
    torch.manual_seed(0)  # an untrained net: without a seed, which maps come out blank varies by run
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(10, seed=4)
    judge = CountingJudge()
    first = vx.explain(clf, data, judge=judge, run_dir=tmp_path / "r", progress=False, verbose=False)
    sent = 10 - first.last_summary.no_attention  # a blank map is recorded as such, never sent to a judge
    again = vx.explain(clf, data, judge=judge, run_dir=tmp_path / "r", progress=False, verbose=False)
    s = again.last_summary
    assert sent >= 5 and judge.calls == sent
    assert s.already_done == 10 and s.cams_computed == 0 and s.processed == 0


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    import vlmxplain as vx
    from vlmxplain.judges.offline import GroundTruthJudge
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    class SlowJudge(GroundTruthJudge):
        def judge_many(self, items):
            for i, j in super().judge_many(items):
                time.sleep(0.03)
                yield i, j

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    run = vx.explain(clf, vx.datasets.shapes(int(sys.argv[2]), seed=5), judge=SlowJudge(), run_dir=sys.argv[1],
                     batch_size=8, progress=False, verbose=False)
    s = run.last_summary
    print(f"RESULT cams={s.cams_computed} judged={s.judged} done_before={s.already_done}")
    """
)


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_midway_then_resume_ends_with_one_result_per_sample(tmp_path):
    n, run_dir = 60, tmp_path / "killed"
    script = tmp_path / "resume_run.py"
    script.write_text(RESUME_SCRIPT)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), str(n)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = run_dir / "run.sqlite"
    deadline = time.time() + 120
    while _count(db, "judgments") < 12:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the run never got going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    judged_at_kill, cams_at_kill = _count(db, "judgments"), _count(db, "cams")
    assert 12 <= judged_at_kill < n and cams_at_kill < n

    out = subprocess.run([sys.executable, str(script), str(run_dir), str(n)], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    stats = dict(kv.split("=") for kv in out.split("RESULT ")[1].split())
    assert int(stats["done_before"]) == judged_at_kill
    assert int(stats["judged"]) == n - judged_at_kill  # finished ones were not judged again
    assert int(stats["cams"]) == n - cams_at_kill  # nor their CAMs recomputed
    t = vx.open_run(run_dir).table
    assert len(t) == n and t["id"].is_unique and set(t["judge_status"]) == {"ok"}
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT sample_id) FROM judgments").fetchone() == (n, n)


def _background_patch(mask: np.ndarray) -> np.ndarray:
    """A square of background as large as the object, in the image corner farthest from it."""
    h, w = mask.shape
    side = max(8, int(np.sqrt(mask.sum())))
    ys, xs = np.nonzero(mask)
    y0 = 0 if ys.mean() > h / 2 else h - side
    x0 = 0 if xs.mean() > w / 2 else w - side
    patch = np.zeros_like(mask)
    patch[y0 : y0 + side, x0 : x0 + side] = True
    return patch & ~mask


def _object_and_background_inputs(clf, sample):
    """Two masked versions of one shapes image: attention on the object vs on a background patch."""
    cam = vx.compute_cams(clf, [sample])[0]

    def attending(region):
        raw = np.asarray(Image.fromarray(region.astype(np.float32)).resize((16, 16), Image.BILINEAR))
        return make_judge_input(sample.id, sample.image, cam | {"map": raw}, 25, 0.6, clf.class_names,
                                object_mask=sample.mask)

    # The attended region covers the object with a margin, so its outline (corners) stays visible.
    region = binary_dilation(sample.mask, iterations=8)
    return attending(region), attending(_background_patch(region))


# The masked-image faithfulness score does not have this property on every machine (the black
# background is out of distribution; 16-21 of 24 wins over training seeds), so it is not asserted
# for it here; an offline judge that measures attention must pass the inverted-map control instead.
@pytest.mark.parametrize("judge_name", ["groundtruth"])
def test_offline_judges_prefer_object_over_background(shapes_clf, judge_name):
    judge = GroundTruthJudge()
    data = vx.datasets.shapes(24, seed=202)
    pairs = [_object_and_background_inputs(shapes_clf, data[i]) for i in range(len(data))]
    s_obj = np.array([judge.judge(obj).score for obj, _ in pairs])
    s_bg = np.array([judge.judge(bg).score for _, bg in pairs])
    wins = int((s_obj > s_bg).sum())
    assert wins >= 0.8 * len(data), f"{judge_name}: object beat background on {wins}/{len(data)}"
    assert s_obj.mean() > s_bg.mean() + 1.0


def test_groundtruth_judge_fails_with_reason_without_mask(lite0, tmp_path):
    run = vx.explain(lite0, vx.datasets.gallery()[:2], judge="offline:groundtruth", run_dir=tmp_path / "g",
                     progress=False, verbose=False)
    t = run.table
    assert set(t["judge_status"]) == {"failed"} and t["error"].str.contains("no object mask").all()
    assert set(t["quadrant"]) == {"Unjudged"} and run.acceptance_rate() == 0.0


def test_bad_inputs_are_skipped_with_reason_and_the_run_goes_on(lite0, tmp_path):
    good = tmp_path / "data" / "tabby cat"  # folder names map onto ImageNet names ("tabby, tabby cat")
    good.mkdir(parents=True)
    vx.datasets.gallery()[0].image.save(good / "chelsea.jpg")
    (good / "broken.jpg").write_bytes(b"not really a jpeg")
    (good / "empty.png").write_bytes(b"")
    data = vx.datasets.folder(tmp_path / "data")
    run = vx.explain(lite0, data, run_dir=tmp_path / "run", progress=False, verbose=False)
    assert len(run.skipped) == 2 and run.skipped["reason"].str.len().gt(5).all()
    t = run.table
    assert (t["judge_status"] == "skipped").sum() == 2 and t.loc["tabby cat/chelsea.jpg", "correct"] is not None
    assert t.loc["tabby cat/chelsea.jpg", "target_names"] == ["tabby, tabby cat"]


def test_bad_parameters_fail_before_any_work(lite0, tmp_path):
    data = vx.datasets.gallery()[:1]
    for kwargs, name in [({"alpha": -1}, "alpha"), ({"beta": 2}, "beta"), ({"cam": "nope"}, "cam"),
                         ({"judge": "nope:x"}, "judge"), ({"threshold": 9}, "threshold"), ({"limit": 0}, "limit")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            vx.explain(lite0, data, run_dir=tmp_path / "x", progress=False, verbose=False, **kwargs)
    assert not (tmp_path / "x").exists()


def test_wrong_labels_and_incompatible_run_dir_are_clear(lite0, tmp_path):
    data = vx.datasets.from_list([(vx.datasets.gallery()[0].image, "zebra-ish")], classes=["zebra-ish"])
    with pytest.raises(ValueError, match="labels: dataset classes \\['zebra-ish'\\]"):
        vx.explain(lite0, data, run_dir=tmp_path / "r", progress=False, verbose=False)
    vx.explain(lite0, vx.datasets.gallery()[:1], run_dir=tmp_path / "ok", progress=False, verbose=False)
    with pytest.raises(ValueError, match="run_dir: .* holds another run \\(cam 'gradcam' vs 'layercam'\\)"):
        vx.explain(lite0, vx.datasets.gallery()[:1], cam="layercam", run_dir=tmp_path / "ok", progress=False,
                   verbose=False)


def test_store_keeps_cams_compact_and_exact_enough(lite0, tmp_path):
    data = vx.datasets.gallery()[:2]
    run = vx.explain(lite0, data, run_dir=tmp_path / "r", progress=False, verbose=False)
    fresh = vx.compute_cams(lite0, [data[0]])
    stored = run.cam(data.ids[0])
    assert stored["map"].shape == (7, 7)
    np.testing.assert_allclose(stored["map"], fresh.maps[0], rtol=2e-3, atol=1e-3)  # float16
