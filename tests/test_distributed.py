"""explain_on_dask: shards run as tasks on a real Dask LocalCluster (2 worker processes, one thread
each) and merge into one run equal to the unsharded run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vlmxplain as vx
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # two worker processes each import torch: ~20-70 s on a 2-core machine


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def test_shards_on_two_dask_workers_merge_into_the_unsharded_run(client, tmp_path):
    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(24, seed=10)
    run = vx.explain_on_dask(clf, data, shards=4, run_dir=tmp_path / "run", client=client,
                             judge="offline:groundtruth", batch_size=4, cache=False)
    summaries = run.shard_summaries
    assert sorted(tuple(s["shard"]) for s in summaries) == [(k, 4) for k in range(4)]
    assert sum(s["judged"] for s in summaries) == 24
    assert len({s["pid"] for s in summaries}) == 2  # both worker processes took shards
    full = vx.explain(clf, data, run_dir=tmp_path / "full", judge="offline:groundtruth", batch_size=4,
                      cache=False, progress=False, verbose=False)
    a, b = run.table.sort_values("id"), full.table.sort_values("id")
    assert list(a["id"]) == list(b["id"]) and (a["judge_status"] == "ok").all()
    assert list(a["prediction"]) == list(b["prediction"])
    np.testing.assert_allclose(a["score"].to_numpy(float), b["score"].to_numpy(float), atol=0.02)

    again = vx.explain_on_dask(clf, data, shards=4, run_dir=tmp_path / "run", client=client,
                               judge="offline:groundtruth", batch_size=4, cache=False)  # a rerun: every shard is done
    assert all(s["already_done"] == s["total"] and s["cams_computed"] == 0 for s in again.shard_summaries)
    assert len(again.table) == 24


def test_a_spending_cap_is_the_whole_runs_split_between_the_shards(client, tmp_path):
    import os

    from loopback_server import LoopbackServer

    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(8, seed=3)
    cams = vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path / "cams", progress=False, verbose=False)
    probe = vx.make_judge("openai:gpt-4o-mini", api_key="sk-test-probe")
    probe.cap_spend(1.0)
    requests = [probe.prepare(cams.judge_input(sid)) for sid in cams.table["id"]]
    e, tokens = max(probe.spend_cap.estimate(r) for r in requests), max(r.payload[2] for r in requests)
    worker_env = {"OPENAI_API_KEY": "sk-test-DASK-1234567890", "VLMXPLAIN_CACHE": str(tmp_path / "cache.sqlite")}
    client.run(lambda: os.environ.update(worker_env))  # in each worker process
    with LoopbackServer(usage=(tokens - 300, 300)) as server:  # each answer costs e
        run = vx.explain_on_dask(clf, data, shards=2, run_dir=tmp_path / "run", client=client, max_cost=3.2 * e,
                                 judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url,
                                                                            "concurrency": 1})
        # 1.6e per shard: one request each (a cap given to every shard whole would let each send 3)
        assert len(server.requests) == 2 and run.cost().usd == pytest.approx(2 * e)
        assert all("max_cost" in s["problem"] for s in run.shard_summaries)


def test_bad_arguments_fail_before_any_task(client, tmp_path):
    with pytest.raises(ValueError, match="shards"):
        vx.explain_on_dask("efficientnet_lite0", "gallery", shards=0, run_dir=tmp_path / "r", client=client)
    with pytest.raises(ValueError, match="shard: set by explain_on_dask"):
        vx.explain_on_dask("efficientnet_lite0", "gallery", shards=2, shard=(0, 2), run_dir=tmp_path / "r",
                           client=client)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real local Ray cluster of two CPUs (offline; no dashboard, session files in a temp folder)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # no token written under ~/.ray
        mp.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()


def test_shards_as_ray_tasks_merge_into_the_unsharded_run(ray_cluster, tmp_path):
    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(16, seed=11)
    run = vx.explain_on_ray(clf, data, shards=3, run_dir=tmp_path / "run", judge="offline:groundtruth",
                            batch_size=4, cache=False)
    assert sorted(tuple(s["shard"]) for s in run.shard_summaries) == [(k, 3) for k in range(3)]
    assert sum(s["judged"] for s in run.shard_summaries) == 16
    full = vx.explain(clf, data, run_dir=tmp_path / "full", judge="offline:groundtruth", batch_size=4,
                      cache=False, progress=False, verbose=False)
    a, b = run.table.sort_values("id"), full.table.sort_values("id")
    assert list(a["id"]) == list(b["id"]) and list(a["prediction"]) == list(b["prediction"])
    np.testing.assert_allclose(a["score"].to_numpy(float), b["score"].to_numpy(float), atol=0.02)
    again = vx.explain_on_ray(clf, data, shards=3, run_dir=tmp_path / "run", judge="offline:groundtruth",
                              batch_size=4, cache=False)
    assert all(s["cams_computed"] == 0 for s in again.shard_summaries) and len(again.table) == 16
    with pytest.raises(ValueError, match="verbose: set by explain_on_ray"):
        vx.explain_on_ray(clf, data, shards=2, run_dir=tmp_path / "r", verbose=True)
