"""``mislabel_report(run, true_labels)``: how well :meth:`Run.mislabel_suspects` finds wrong
labels — precision, recall and F1 of the flagged (Wrong-High) samples, average precision and the
PR curve of the suspicion ranking — side by side with a confidence-only baseline (confident
learning's self-confidence: flag a prediction that disagrees with the label, rank by
``1 - p(label)``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..store import Run


@dataclass
class MislabelReport:
    """``summary``: one row per method; ``curves``: method → DataFrame(precision, recall, threshold)."""

    summary: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    suspects: pd.DataFrame


def _true_labels(run: Run, true_labels) -> pd.Series:
    if isinstance(true_labels, str) and true_labels == "meta":
        samples = run.store.samples()
        values = [m.get("true_label") for m in samples["meta"]]
        if any(v is None for v in values):
            raise ValueError("true_labels: some samples have no meta['true_label'] (only shapes with label_noise do)")
        return pd.Series(values, index=samples["id"])
    if isinstance(true_labels, dict):
        true_labels = pd.Series(true_labels)
    if not isinstance(true_labels, pd.Series):
        raise TypeError("true_labels: give a pandas Series or dict of class names by sample id, or 'meta'")
    return true_labels.astype(str)


def _scores(flags: np.ndarray, truth: np.ndarray, ranking: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score

    tp = int((flags & truth).sum())
    precision = tp / flags.sum() if flags.sum() else np.nan
    recall = tp / truth.sum() if truth.sum() else np.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    ap = float(average_precision_score(truth, ranking)) if 0 < truth.sum() < len(truth) else np.nan
    return dict(precision=precision, recall=recall, f1=f1, average_precision=ap, n_flagged=int(flags.sum()),
                true_positives=tp)


def mislabel_report(run: Run, true_labels, threshold: float | None = None) -> MislabelReport:
    """Score the run's mislabel suspects against ``true_labels`` (class names by sample id, or
    ``"meta"`` for the shapes set's recorded true labels)."""
    from sklearn.metrics import precision_recall_curve

    truth_by_id = _true_labels(run, true_labels)
    s = run.mislabel_suspects(threshold=threshold)
    s = s[s["id"].isin(truth_by_id.index)]
    if s.empty:
        raise ValueError("true_labels: no judged, labelled sample of the run has a true label")
    truth = (s["label"].to_numpy() != truth_by_id.reindex(s["id"]).to_numpy())
    methods = {
        "judge (Wrong-High)": (s["flagged"].to_numpy(bool), s["suspicion"].to_numpy(float)),
        "confidence only": ((s["predicted_name"] != s["label"]).to_numpy(bool), s["baseline_suspicion"].to_numpy(float)),
    }
    rows, curves = [], {}
    for name, (flags, ranking) in methods.items():
        rows.append(dict(method=name, n=len(s), n_mislabelled=int(truth.sum()), **_scores(flags, truth, ranking)))
        if 0 < truth.sum() < len(truth):
            p, r, th = precision_recall_curve(truth, ranking)
            curves[name] = pd.DataFrame({"precision": p, "recall": r, "threshold": np.append(th, np.nan)})
    return MislabelReport(pd.DataFrame(rows).set_index("method"), curves, s.assign(mislabelled=truth))
