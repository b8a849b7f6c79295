"""Shards and merging: ``explain(shard=(k, n))`` computes disjoint shards by a stable hash of the
sample id; ``merge_runs`` joins them into one run equal to the unsharded run, idempotently, and
refuses runs that are not of one classifier, CAM method and dataset."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch

import vlmxplain as vx
from vlmxplain.core.records import Judgment
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
from vlmxplain.pipeline.explain import shard_of

QUIET = dict(progress=False, verbose=False, judge="offline:groundtruth", batch_size=8)


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(0)
    return shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])


def counts(run_dir) -> dict[str, int]:
    with sqlite3.connect(run_dir / "run.sqlite") as c:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("samples", "cams", "previews", "judgments", "skipped", "judges")}


def test_shard_of_is_stable_and_balanced():
    ids = [f"img-{k:05d}" for k in range(3000)]
    assert [shard_of(i, 5) for i in ids[:6]] == [shard_of(i, 5) for i in ids[:6]]
    assert shard_of("shapes-00000", 4) == int.from_bytes(
        __import__("hashlib").sha256(b"shapes-00000").digest()[:8], "little") % 4  # the same on every machine
    sizes = np.bincount([shard_of(i, 5) for i in ids], minlength=5)
    assert sizes.min() > 0.8 * 600 and sizes.max() < 1.2 * 600  # binomial sd ≈ 22: 27 sd of margin


@pytest.mark.parametrize("bad", [(2, 2), (-1, 2), (0, 0), "0/2", (True, 2), (0.0, 2), (1,)])
def test_bad_shard_is_rejected_before_any_work(clf, tmp_path, bad):
    with pytest.raises(ValueError, match="shard"):
        vx.explain(clf, vx.datasets.shapes(4), shard=bad, run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_shards_are_disjoint_and_merge_into_the_unsharded_run_idempotently(clf, tmp_path):
    n, k = 30, 3
    data = vx.datasets.shapes(n, seed=6)
    full = vx.explain(clf, data, run_dir=tmp_path / "full", **QUIET)
    parts = [vx.explain(clf, data, shard=(i, k), run_dir=tmp_path / f"shard{i}", **QUIET) for i in range(k)]
    ids = [set(p.table["id"]) for p in parts]
    assert sum(map(len, ids)) == n and set().union(*ids) == set(data.ids)  # disjoint, covering
    assert all(p.config.shard == (i, k) for i, p in enumerate(parts))

    merged = vx.merge_runs([tmp_path / f"shard{i}" for i in range(k)], into=tmp_path / "merged")
    assert merged.config.shard is None and merged.config.classifier == full.config.classifier
    a, b = merged.table.sort_values("id"), full.table.sort_values("id")
    assert list(a["id"]) == list(b["id"]) and (a["judge_status"] == "ok").all()
    assert list(a["prediction"]) == list(b["prediction"])
    np.testing.assert_allclose(a["score"].to_numpy(float), b["score"].to_numpy(float), atol=0.02)
    sid = data.ids[0]
    assert merged.judge_input(sid).masked.tobytes() == full.judge_input(sid).masked.tobytes() or np.allclose(
        merged.cam(sid)["map"], full.cam(sid)["map"], atol=1e-2)
    before = counts(tmp_path / "merged")
    assert before["samples"] == before["cams"] == before["previews"] == before["judgments"] == n
    vx.merge_runs([tmp_path / f"shard{i}" for i in range(k)], into=tmp_path / "merged")  # again: nothing new
    assert counts(tmp_path / "merged") == before


def test_merge_takes_answers_over_unfinished_and_keeps_finished(clf, tmp_path):
    data = vx.datasets.shapes(10, seed=7)
    first = vx.explain(clf, data, shard=(0, 2), run_dir=tmp_path / "s0", **QUIET)
    sid = first.table["id"].iloc[0]
    view = first.view
    unsent = Judgment.unsent("offline:groundtruth", "groundtruth-v1", "stopped")
    merged = vx.merge_runs([tmp_path / "s0"], into=tmp_path / "m")
    score = merged.table.loc[sid, "score"]
    merged.store.put_judgment(sid, unsent, alpha=view.alpha, beta=view.beta, cache_key="", cached=False)
    assert merged.table.loc[sid, "judge_status"] == "pending"
    merged = vx.merge_runs([tmp_path / "s0"], into=tmp_path / "m")  # the source's answer replaces it
    assert merged.table.loc[sid, "judge_status"] == "ok" and merged.table.loc[sid, "score"] == score
    other = Judgment(judge_id="offline:groundtruth", prompt_version="groundtruth-v1", score=0.5, parse_path="offline")
    merged.store.put_judgment(sid, other, alpha=view.alpha, beta=view.beta, cache_key="x", cached=False)
    merged = vx.merge_runs([tmp_path / "s0"], into=tmp_path / "m")  # a finished answer is never replaced
    assert merged.table.loc[sid, "score"] == 0.5


def test_merge_refuses_other_classifier_cam_or_dataset_and_writes_nothing(clf, tmp_path):
    data = vx.datasets.shapes(12, seed=8)
    vx.explain(clf, data, shard=(0, 2), run_dir=tmp_path / "s0", **QUIET)
    vx.explain(clf, data, shard=(1, 2), run_dir=tmp_path / "eigen", cam="eigencam", **QUIET)
    torch.manual_seed(1)
    other = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    vx.explain(other, data, shard=(1, 2), run_dir=tmp_path / "other", **QUIET)
    vx.explain(clf, vx.datasets.shapes(12, seed=9, name="shapes-b"), shard=(1, 2), run_dir=tmp_path / "data", **QUIET)
    vx.merge_runs([tmp_path / "s0"], into=tmp_path / "m")
    before = counts(tmp_path / "m")
    for bad, what in (("eigen", "cam 'gradcam' vs 'eigencam'"), ("other", "classifier"), ("data", "dataset")):
        with pytest.raises(ValueError, match="cannot be merged") as err:
            vx.merge_runs([tmp_path / "s0", tmp_path / bad], into=tmp_path / "m")
        assert what in str(err.value) and str(tmp_path / bad) in str(err.value)
        assert counts(tmp_path / "m") == before
    with pytest.raises(FileNotFoundError):
        vx.merge_runs([tmp_path / "nowhere"], into=tmp_path / "m")
    with pytest.raises(ValueError, match="also a source"):
        vx.merge_runs([tmp_path / "s0"], into=tmp_path / "s0")
