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


def test_judgment_cache_env_takes_a_folder_or_a_file(monkeypatch, tmp_path):
    from vlmxplain.core.defaults import judgment_cache_path
    from vlmxplain.store import JudgmentCache

    for given, expected in [(tmp_path, tmp_path / "judgments.sqlite"),  # an existing folder
                            (f"{tmp_path / 'new'}/", tmp_path / "new" / "judgments.sqlite"),  # a new one, with /
                            (tmp_path / "fresh", tmp_path / "fresh" / "judgments.sqlite"),  # new, no suffix
                            (tmp_path / "mine.sqlite", tmp_path / "mine.sqlite")]:  # a file
        monkeypatch.setenv("VLMXPLAIN_CACHE", str(given))
        assert judgment_cache_path() == expected
        JudgmentCache()  # opens (folders created), no sqlite3.OperationalError
        assert expected.is_file()
