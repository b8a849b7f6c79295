"""Exports on an offline run: the table as CSV (and Parquet where pyarrow is installed), and a
FiftyOne-format folder whose files hold what the run holds."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import vlmxplain as vx
from browser_support import HOSTILE_DESCRIPTION, HOSTILE_SAMPLE, build_demo_run, plant_hostile_judgment
from vlmxplain.exports.tables import read_table


@pytest.fixture(scope="module")
def run(tmp_path_factory, lite0):
    r = build_demo_run(tmp_path_factory.mktemp("export") / "run", lite0)
    plant_hostile_judgment(r)
    return vx.open_run(r.run_dir)


def test_csv_round_trips_the_table(run, tmp_path):
    path = vx.export_table(run, tmp_path / "results.csv")
    back, table = read_table(path), run.table.reset_index(drop=True)
    assert list(back["id"]) == list(table["id"]) and list(back.columns) == list(table.columns)
    assert np.allclose(back["score"], table["score"]) and list(back["quadrant"]) == list(table["quadrant"])
    assert back["targets"].tolist() == [list(t) for t in table["targets"]]
    assert back.set_index("id").loc[HOSTILE_SAMPLE, "description"] == HOSTILE_DESCRIPTION  # text kept verbatim
    at4 = read_table(vx.export_table(run, tmp_path / "t4.csv", threshold=4))
    assert list(at4["quadrant"]) == list(run.table_for(threshold=4)["quadrant"])
    with pytest.raises(ValueError, match="^path: give a .csv or .parquet"):
        vx.export_table(run, tmp_path / "results.xlsx")


def test_parquet(run, tmp_path):
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(ImportError, match="Parquet needs pyarrow"):
            vx.export_table(run, tmp_path / "results.parquet")
        return
    back = pd.read_parquet(vx.export_table(run, tmp_path / "results.parquet"))
    assert list(back["id"]) == list(run.table["id"])


def test_fiftyone_folder_holds_images_heatmaps_and_fields(run, tmp_path):
    root = vx.export_fiftyone(run, tmp_path / "fo")
    samples = json.loads((root / "samples.json").read_text())["samples"]
    meta = json.loads((root / "metadata.json").read_text())
    table = run.table
    assert meta["media_type"] == "image" and meta["default_classes"] == run.class_names
    assert meta["info"]["vlmxplain"]["config"]["cam"] == run.config.cam
    assert [s["sample_id"] for s in samples] == list(table["id"])
    for s in samples:
        row, item = table.loc[s["sample_id"]], run.judge_input(s["sample_id"])
        image = Image.open(root / s["filepath"])
        heat = np.asarray(Image.open(s["cam"]["map_path"]))
        assert image.size == item.image.size and heat.shape == item.saliency.shape[:2]
        assert np.abs(heat / 255.0 - item.saliency).max() <= 1 / 255 + 1e-6  # the CAM, not a picture of it
        assert s["score"] == pytest.approx(row["score"]) and s["quadrant"] == row["quadrant"] == s["tags"][0]
        assert s["ground_truth"] == {"_cls": "Classification", "label": row["label"]}
        assert s["prediction"]["label"] == row["predicted_name"]
        assert s["prediction"]["confidence"] == pytest.approx(row["confidence"])
        assert s["cam"]["_cls"] == "Heatmap" and s["correct"] == bool(row["correct"])
    hostile = next(s for s in samples if s["sample_id"] == HOSTILE_SAMPLE)
    assert hostile["description"] == HOSTILE_DESCRIPTION
