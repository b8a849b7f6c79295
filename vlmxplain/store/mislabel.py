"""Ranking samples whose label may be wrong, from a run table (pure table arithmetic).

A label is suspect when the classifier confidently predicts another class *and* the judge finds
its attention good — the Wrong-High quadrant: a plausible answer that disagrees with the label.
``suspicion = confidence × score / 5`` for wrong predictions (× 0.5 when unjudged), 0 for
correct ones; ``flagged`` marks Wrong-High. ``label_confidence`` is the classifier's probability
of the given label (from the stored top classes; 0 when outside them), the confident-learning
self-confidence whose complement is the confidence-only baseline.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SUSPECT_COLUMNS = ["id", "label", "predicted_name", "confidence", "label_confidence", "score", "quadrant",
                   "suspicion", "baseline_suspicion", "flagged"]


def mislabel_suspects(table: pd.DataFrame, cams: pd.DataFrame) -> pd.DataFrame:
    """Every labelled sample with a prediction, most suspect first (see the module docstring)."""
    t = table[table["correct"].notna() & table["prediction"].notna()].copy()
    probs = cams.set_index("id")[["top_classes", "top_probs"]]
    label_p = []
    for sid, targets in zip(t["id"], t["targets"]):
        classes, p = probs.loc[sid, "top_classes"], probs.loc[sid, "top_probs"]
        label_p.append(float(sum(q for c, q in zip(classes, p) if int(c) in set(targets))))
    t["label_confidence"] = label_p
    wrong = ~t["correct"].astype(bool)
    judged = (t["score"] / 5.0).fillna(0.5).clip(0, 1)
    t["suspicion"] = np.where(wrong, t["confidence"].astype(float) * judged, 0.0)
    t["baseline_suspicion"] = 1.0 - t["label_confidence"]
    t["flagged"] = t["quadrant"] == "Wrong-High"
    return t.sort_values(["suspicion", "baseline_suspicion"], ascending=False)[SUSPECT_COLUMNS]
