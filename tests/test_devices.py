"""Device-agnostic CAMs: devices are resolved explicitly, maps and predictions come back to the
host whatever device computed them, and mixed precision (bf16 autocast, run here on the CPU) leaves
the maps equal to float32 within the stated tolerance."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vlmxplain as vx
from vlmxplain.masks.saliency import saliency
from vlmxplain.models.classifiers import resolve_device

#: bf16 vs float32, on normalised maps at input resolution (measured: ≤ 0.04 and ≥ 0.9994 on the
#: gallery for gradcam / layercam / eigencam / gradcam++; the README states these tolerances)
MAX_ABS_DIFF, MIN_CORRELATION = 0.06, 0.995


def test_resolve_device_is_explicit():
    auto = resolve_device("auto")
    assert auto == resolve_device(None)
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected"):
        resolve_device("tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("method", ["gradcam", "eigencam"])
def test_bf16_autocast_keeps_maps_within_tolerance(lite0, method):
    data = vx.datasets.gallery()
    items = [data[i] for i in range(len(data))]
    full = vx.compute_cams(lite0, items, method)
    mixed = vx.compute_cams(lite0, items, method, autocast="bf16")
    assert mixed.maps.dtype == np.float32 and mixed.confidences.dtype == np.float32  # back on the host, float32
    for k in range(len(items)):
        a, b = saliency(full.maps[k], (224, 224)), saliency(mixed.maps[k], (224, 224))
        assert np.abs(a - b).max() <= MAX_ABS_DIFF
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= MIN_CORRELATION
    clear = full.top_probs[:, 0] - full.top_probs[:, 1] > 0.1  # the top class is not a near tie
    assert clear.sum() >= 4 and (full.predictions[clear] == mixed.predictions[clear]).all()
    # a control the tolerance must reject: another image's map
    a, b = saliency(full.maps[0], (224, 224)), saliency(full.maps[1], (224, 224))
    assert np.abs(a - b).max() > MAX_ABS_DIFF


def test_explain_takes_device_and_autocast_and_rejects_bad_values(lite0, tmp_path):
    data = vx.datasets.gallery().limit(4)
    with pytest.raises(ValueError, match="autocast"):
        vx.explain(lite0, data, autocast="fp8", judge="offline:faithfulness", run_dir=tmp_path / "bad",
                   progress=False, verbose=False)
    assert not (tmp_path / "bad").exists()  # rejected before any work
    run = vx.explain(lite0, data, device="cpu", autocast="bf16", judge="offline:faithfulness",
                     run_dir=tmp_path / "run", progress=False, verbose=False)
    assert lite0.device.type == "cpu" and (run.table["judge_status"] == "ok").all()


def test_preprocessing_threads_take_only_the_cores_torch_leaves_free_on_the_cpu(lite0, monkeypatch):
    from vlmxplain.cams import extract

    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    try:
        torch.set_num_threads(cores)  # torch on every core: another thread would preempt one of its own
        assert extract.preprocess_workers("cpu") == 0
        assert extract.preprocess_workers("cuda:0") >= 1  # an accelerator leaves the cores to preprocessing
        torch.set_num_threads(1)
        assert extract.preprocess_workers(torch.device("cpu")) == min(8, cores - 1)
    finally:
        torch.set_num_threads(threads)
    # in line or on threads, the same maps
    images = [vx.datasets.gallery()[i].image for i in range(5)]
    monkeypatch.setattr(extract, "preprocess_workers", lambda device: 0)
    inline = vx.compute_cams(lite0, images, batch_size=2)
    monkeypatch.setattr(extract, "preprocess_workers", lambda device: 2)
    threaded = vx.compute_cams(lite0, images, batch_size=2)
    assert np.array_equal(inline.maps, threaded.maps) and np.array_equal(inline.predictions, threaded.predictions)


def test_the_device_script_runs_to_its_last_line_on_the_cpu():
    """``benchmarks/gpu_check.py`` runs on a GPU only in the rare sessions that have one; here it
    runs through the same device-agnostic code, so it cannot rot in between (it once did: photos
    that skimage does not ship, a dataset built from bare images)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    out = subprocess.run([sys.executable, str(script), "--device", "cpu", "--n", "8", "--batches", "4",
                          "--repeats", "1"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TQDM_DISABLE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = [line.split() for line in out.stdout.splitlines() if line.split()[:1] == ["4"]]
    forward, fp32, bf16 = map(float, row[1:4])
    assert min(forward, fp32, bf16) > 0
    deltas = [float(d) for d in row[5:8:2]]  # max Δmap bf16 / fp16, same class explained
    assert all(0 <= d <= 1 for d in deltas)
    same = re.search(r"predictions agree (\d+)%; max Δmap ([\d.]+)", out.stdout)
    assert same and same.group(1) == "100" and float(same.group(2)) == 0.0  # a fresh copy: the same maps
    assert "(8/8 judged)" in out.stdout
