"""``vx.export_fiftyone(run, "run-fiftyone/")``: a folder in FiftyOne's ``FiftyOneDataset``
exchange format, written without FiftyOne (its database need not run here).

Layout (FiftyOne's legacy serialized-JSON form of ``fo.types.FiftyOneDataset``)::

    <folder>/metadata.json     media type, classes, the run's configuration in ``info``
    <folder>/samples.json      {"samples": [...]}: one serialized sample per judged input
    <folder>/data/<n>.jpg      the stored working copy of each image (what the judge saw masked)
    <folder>/heatmaps/<n>.png  the CAM saliency at image size, 0-255 (a ``Heatmap`` label)

Each sample carries ``ground_truth`` and ``prediction`` (``Classification``), ``cam``
(``Heatmap`` with ``map_path``), and the fields ``score``, ``quadrant``, ``correct``,
``description``, ``justification``, ``judge``, ``alpha``, ``beta``, ``sample_id``. Load it with
``fo.Dataset.from_dir(folder, dataset_type=fo.types.FiftyOneDataset)``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..store import Run, open_run


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/None → None, numpy scalars → Python."""
    if value is None:
        return None
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _classification(label: Any, confidence: Any = None) -> dict | None:
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return None
    out = {"_cls": "Classification", "label": str(label)}
    if confidence is not None:
        out["confidence"] = _clean(confidence)
    return out


def export_fiftyone(run: "Run | str | Path", folder: str | Path, *, threshold: float | None = None) -> Path:
    """Write ``run`` as a FiftyOne dataset folder (see the module doc); returns the folder."""
    run = run if isinstance(run, Run) else open_run(run)
    root = Path(folder).expanduser().resolve()
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "heatmaps").mkdir(parents=True, exist_ok=True)
    table = run.table_for(threshold=threshold)
    samples = []
    for n, (_, row) in enumerate(table.iterrows()):
        try:
            item = run.judge_input(row["id"])
        except KeyError:  # skipped or pending: no stored image
            continue
        image_name, heat_name = f"{n:06d}.jpg", f"{n:06d}.png"
        item.image.convert("RGB").save(root / "data" / image_name, quality=95)
        heat = np.clip(np.asarray(item.saliency, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(heat, mode="L").save(root / "heatmaps" / heat_name)
        samples.append({
            "filepath": f"data/{image_name}",
            "tags": [str(row["quadrant"])],
            "metadata": None,
            "sample_id": str(row["id"]),
            "ground_truth": _classification(row["label"]),
            "prediction": _classification(row["predicted_name"], row["confidence"]),
            "cam": {"_cls": "Heatmap", "map_path": str(root / "heatmaps" / heat_name), "range": [0, 255]},
            "score": _clean(row["score"]),
            "quadrant": str(row["quadrant"]),
            "correct": None if row["correct"] is None or (isinstance(row["correct"], float)
                                                          and math.isnan(row["correct"])) else bool(row["correct"]),
            "description": row["description"] if isinstance(row["description"], str) else None,
            "justification": row["justification"] if isinstance(row["justification"], str) else None,
            "judge": str(row["judge"]) if row["judge"] is not None else None,
            "alpha": run.alpha, "beta": run.beta,
        })
    cfg = run.config
    metadata = {"name": f"vlmxplain-{cfg.dataset.name}", "media_type": "image",
                "default_classes": list(cfg.classifier.class_names),
                "info": {"vlmxplain": {"config": cfg.model_dump(mode="json"), "view": run.view.model_dump(mode="json"),
                                       "threshold": run.threshold if threshold is None else threshold}}}
    (root / "metadata.json").write_text(json.dumps(metadata, indent=1), encoding="utf-8")
    (root / "samples.json").write_text(json.dumps({"samples": samples}, indent=1), encoding="utf-8")
    return root
