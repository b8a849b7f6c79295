"""Training says what it does: a text bar that reaches 100% (it survives in executed notebooks and
streams through the CLI), and a line when a model is trained rather than loaded."""
from __future__ import annotations

from vlmxplain import datasets
from vlmxplain.models import shapesnet


def test_training_bar_is_text_and_completes(capfd, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    shapesnet.train_shapes_classifier(datasets.shapes(n=48, size=32, seed=3), epochs=2, batch_size=16, progress=True)
    err = capfd.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("train shapesnet (48 images, 2 epochs): 100%") and "6/6" in final


def test_a_cache_miss_says_it_trains_once(capfd, monkeypatch, tmp_path):
    monkeypatch.setenv("VLMXPLAIN_MODELS", str(tmp_path))
    spec = {"n": 30, "size": 32, "seed": 11}
    shapesnet.shapes_model(spec, epochs=1, progress=False)
    assert "vlmxplain: training a ShapesNet on 30 shapes images (1 epochs), once; cached at" in capfd.readouterr().err
    shapesnet.shapes_model(spec, epochs=1, progress=False)
    assert "training" not in capfd.readouterr().err  # loaded from the cache
