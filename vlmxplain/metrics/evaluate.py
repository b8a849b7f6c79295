"""``evaluate(run, metrics=[...], classifier=clf)``: faithfulness and localisation metrics for an
existing run, from its stored CAMs and images, written into its store (resumable, with a
progress bar) and shown as columns of ``run.table``.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from ..core.selection import in_order
from ..masks.perturbation import DEFAULT_BASELINE, DEFAULT_STEPS, check_baseline, check_steps
from ..models import Classifier, resolve_classifier
from ..store import Run
from ..store.metrics_table import MetricsTable
from .faithfulness import METRICS, check_metrics, faithfulness, variant_of


def run_classifier(run: Run, classifier: Classifier | None = None) -> Classifier:
    """``classifier`` checked against the run's fingerprint, or the run's own classifier rebuilt
    from its recorded specs."""
    info = run.config.classifier
    if classifier is None:
        if info.spec is None:
            raise ValueError(f"classifier: {run.run_dir} does not record how its classifier was built; "
                             "pass classifier= (the model the run was computed with)")
        classifier = resolve_classifier(info.spec, run.config.dataset.spec, progress=False)
    if classifier.fingerprint != info.fingerprint:
        raise ValueError("classifier: not the classifier this run was computed with (fingerprints differ)")
    return classifier


def evaluate(
    run: Run, metrics: Sequence[str] | str | None = None, *, classifier: Classifier | None = None,
    baseline: str = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS, tolerance: int = 0, batch_size: int = 64,
    chunk: int = 16, progress: bool = True,
) -> pd.DataFrame:
    """Compute ``metrics`` (default: every metric but ROAD) for every sample of ``run`` with a CAM
    and store them; samples already evaluated with the same settings are skipped, so an
    interrupted call resumes. Returns the stored values (wide: one column per metric, as in
    ``run.table``).

    The target class is the one each CAM explains; ``baseline`` is ``blur`` (default),
    ``mean`` or ``black``. Localisation metrics need object masks (stored with the run's
    samples); samples without one get status ``no_object``.
    """
    names = check_metrics(metrics)
    check_baseline(baseline)
    steps = check_steps(steps)
    if chunk < 1:
        raise ValueError(f"chunk: must be >= 1, got {chunk}")
    table = MetricsTable(run.store)
    ids = sorted(run.store.cam_ids())
    todo = {m: set(ids) - table.done_ids(m, variant_of(m, baseline, steps)) for m in names}
    pending = in_order(sorted(set().union(*todo.values())), "shuffled")  # stopped early: a random sample
    needs_model = any(METRICS[m].kind != "localisation" and todo[m] for m in names)
    clf = run_classifier(run, classifier) if needs_model else None
    bar = tqdm(total=len(ids), initial=len(ids) - len(pending), desc=f"evaluate [{', '.join(names)}]", unit="img",
               disable=not progress)
    with bar:
        for start in range(0, len(pending), chunk):
            part = pending[start : start + chunk]
            cams = [run.cam(i) for i in part]
            images = [run.image(i) for i in part]
            masks = [run.object_mask(i) for i in part]
            wanted = [m for m in names if todo[m] & set(part)]
            model_metrics = [m for m in wanted if METRICS[m].kind != "localisation"]
            frame = faithfulness(
                clf, images, [c["map"] for c in cams], [c["target"] for c in cams],
                metrics=wanted, baseline=baseline, steps=steps, object_masks=masks, tolerance=tolerance,
                batch_size=batch_size,
            ) if model_metrics else faithfulness(
                None, images, [c["map"] for c in cams], [c["target"] for c in cams], metrics=wanted,
                object_masks=masks, tolerance=tolerance,
            )
            rows = []
            for k, sample_id in enumerate(part):
                for m in wanted:
                    if sample_id not in todo[m]:
                        continue
                    status = frame.at[k, "status"]
                    if status == "ok" and METRICS[m].kind == "localisation" and masks[k] is None:
                        status = "no_object"
                    detail = {}
                    if m == "deletion_auc" and "deletion_curve" in frame:
                        detail = {"curve": frame.at[k, "deletion_curve"], "steps": steps}
                    elif m == "insertion_auc" and "insertion_curve" in frame:
                        detail = {"curve": frame.at[k, "insertion_curve"], "steps": steps}
                    rows.append(dict(sample_id=sample_id, metric=m, variant=variant_of(m, baseline, steps),
                                     status=status, value=frame.at[k, m] if status == "ok" else None, detail=detail,
                                     classifier=run.config.classifier.fingerprint))
            table.put(rows)
            bar.update(len(part))
    wide = table.wide()
    return wide.reindex(ids)
