"""explain(): Dataset → classifier → CAMs → masks → judge → RunStore, resumable.

The dataset is processed in batches (bounded memory: only one batch of images is decoded at
a time, and only raw low-res CAMs are kept). Each CAM, judgment and skipped input is committed
to the run store the moment it exists; calling ``explain`` again on the same run directory
does only what is missing. Judgments are also looked up in (and added to) the content-
addressed cache shared across runs, so the same question is never asked twice.
"""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm.auto import tqdm

from ..cams import compute_cams, get_cam_method
from ..core.catalog import closest_values
from ..core.checks import check_int, validate_mask_params, validate_threshold
from ..core.defaults import DEFAULT_ALPHA, DEFAULT_BATCH_SIZE, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_JUDGE, DEFAULT_THRESHOLD
from ..core.records import ClassifierInfo, DatasetInfo, RunConfig, RunView
from ..datasets import Dataset, InputSkipped, Sample, from_list
from ..judges import Judge, make_judge
from ..masks.images import png_bytes, preview_of
from ..masks.judge_input import JudgeInput, make_judge_input
from ..models.classifiers import Classifier, load_classifier
from ..store import JudgmentCache, Run, RunStore
from .versions import library_versions


@dataclass
class ExplainSummary:
    """What one ``explain`` call did."""

    total: int = 0
    processed: int = 0
    skipped: int = 0
    cams_computed: int = 0
    cams_reused: int = 0
    judged: int = 0
    cached: int = 0
    failed: int = 0
    already_done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.total} samples: {self.processed} processed ({self.already_done} already done), "
            f"{self.skipped} skipped; CAMs {self.cams_computed} computed / {self.cams_reused} reused; "
            f"judgments {self.judged} new, {self.cached} from cache, {self.failed} failed; "
            f"tokens {self.input_tokens} in / {self.output_tokens} out; {self.seconds:.1f} s"
        )


@contextlib.contextmanager
def _judging(judge: Judge, cache: JudgmentCache | str | Path | bool) -> Iterator[JudgmentCache | None]:
    """Open the judgment cache (unless ``cache=False``) for a judging session; release the judge
    and any cache opened here afterwards."""
    opened = None
    if cache is not False and not isinstance(cache, JudgmentCache):
        opened = JudgmentCache(None if cache is True else cache)
    try:
        yield cache if isinstance(cache, JudgmentCache) else opened
    finally:
        judge.close()
        if opened is not None:
            opened.close()


def align_targets(dataset: Dataset, class_names: Sequence[str]) -> dict[int, int]:
    """Map the dataset's class indices onto the classifier's (by name when they differ)."""
    if dataset.classes is None or list(dataset.classes) == list(class_names):
        return {}
    lookup: dict[str, int] = {}
    for i, name in enumerate(class_names):
        lookup.setdefault(name.lower(), i)
        for part in name.split(","):
            lookup.setdefault(part.strip().lower(), i)
    mapping, missing = {}, []
    for i, name in enumerate(dataset.classes):
        key = name.strip().lower()
        if key in lookup:
            mapping[i] = lookup[key]
        else:
            missing.append(name)
    if missing:
        near = {m: [class_names[lookup[k]] for k in _closest_classes(m.strip().lower(), lookup)] for m in missing[:5]}
        hints = "; ".join(f"{m!r}: closest {', '.join(map(repr, dict.fromkeys(c)))}" if c else f"{m!r}: none close"
                          for m, c in near.items())
        raise ValueError(
            f"labels: dataset classes {missing[:10]} are not classes of the classifier ({len(class_names)} classes; "
            f"{hints}); rename the folders or pass classes= matching the model"
        )
    return mapping


def _closest_classes(name: str, lookup: dict[str, int], n: int = 3) -> list[str]:
    """Class-name keys closest to ``name``: those containing it as a word first (``cat`` →
    ``tabby cat``), then difflib's closest."""
    words = sorted((k for k in lookup if re.search(rf"\b{re.escape(name)}\b", k)), key=len)
    return list(dict.fromkeys([*words, *closest_values(name, lookup, n=n)]))[:n]


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (list, tuple)):
        return from_list(list(data))
    raise TypeError(f"data: expected a vlmxplain Dataset or a list of images, got {type(data).__name__}")


def explain(
    classifier: Classifier | str,
    data: Dataset | Sequence[Any],
    *,
    cam: str = DEFAULT_CAM,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    judge: str | Judge = DEFAULT_JUDGE,
    run_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    judge_options: dict | None = None,
    cam_options: dict | None = None,
    cache: JudgmentCache | str | Path | bool = True,
    retry_failed: bool = False,
    progress: bool = True,
    verbose: bool = True,
):
    """Explain ``classifier`` on ``data`` and return the :class:`~vlmxplain.store.Run`.

    Resumable: calling it again with the same ``run_dir`` computes only what is missing.
    A new ``alpha``/``beta``/``judge`` on an existing run reuses its CAMs and becomes the
    run's current view. ``cache=False`` disables the cross-run judgment cache.
    """
    t0 = time.perf_counter()
    alpha, beta = validate_mask_params(alpha, beta)
    threshold = validate_threshold(threshold)
    method = get_cam_method(cam).name
    check_int("batch_size", batch_size)
    if limit is not None:
        check_int("limit", limit)
    clf = load_classifier(classifier) if isinstance(classifier, str) else classifier
    dataset = _as_dataset(data)
    if limit is not None:
        dataset = dataset.limit(int(limit))
    mapping = align_targets(dataset, clf.class_names)
    the_judge = make_judge(judge, classifier=clf, **(judge_options or {}))
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    store = RunStore(run_dir)
    store.init_run(
        RunConfig(
            classifier=ClassifierInfo(name=clf.name, fingerprint=clf.fingerprint, target_layer=clf.target_layer_name,
                                      class_names=list(clf.class_names), spec=clf.meta.get("spec")),
            dataset=DatasetInfo(name=dataset.name, n_samples=len(dataset), classes=dataset.classes,
                                spec=getattr(dataset, "spec", None)),
            cam=method, cam_options=dict(cam_options or {}), versions=library_versions(),
        ),
        RunView(judge=the_judge.settings(), alpha=alpha, beta=beta, threshold=threshold),
    )
    refs = [dataset.ref(i) for i in range(len(dataset))]
    store.add_samples(
        {"idx": i, "id": r.id, "path": r.path, "label": r.label,
         "targets": [mapping.get(t, t) for t in r.targets], "meta": r.meta}
        for i, r in enumerate(refs)
    )
    done = store.judged_ids(the_judge.id, the_judge.prompt_version, alpha, beta, include_failed=not retry_failed)
    skipped_before = store.skipped_ids()
    have_cam = store.cam_ids()
    pending = [i for i, r in enumerate(refs) if r.id not in done and r.id not in skipped_before]
    summary = ExplainSummary(total=len(refs), already_done=len(refs) - len(pending), skipped=len(skipped_before))
    bar = tqdm(total=len(refs), initial=summary.already_done, desc=f"explain [{method} → {the_judge.id}]",
               unit="img", disable=not progress)
    with _judging(the_judge, cache) as judgment_cache, bar:
        for start in range(0, len(pending), batch_size):
            batch = _load_batch(dataset, pending[start : start + batch_size], store, summary, bar)
            if not batch:
                continue
            need = [s for s in batch if s.id not in have_cam]
            if need:
                res = compute_cams(clf, need, method, batch_size=batch_size, method_options=cam_options)
                store.put_cams(res[k] | {"method": method} for k in range(len(res)))
                have_cam.update(res.ids)
                summary.cams_computed += len(need)
            summary.cams_reused += len(batch) - len(need)
            # Judges see what the store holds (float16 CAM, stored preview), so a resumed run or
            # rejudge() derives byte-identical inputs and hits the same cache keys.
            items = []
            for s in batch:
                preview = preview_of(s.image)
                store.put_preview(s.id, png_bytes(preview), s.mask)
                items.append(make_judge_input(
                    s.id, preview, store.get_cam(s.id), alpha, beta, clf.class_names, label=s.label,
                    object_mask=s.mask,
                ))
            _judge_items(the_judge, items, store, judgment_cache, alpha, beta, summary, bar)
    summary.seconds = time.perf_counter() - t0
    run = Run(run_dir, store=store)
    run.last_summary = summary
    if verbose:
        print(f"vlmxplain: {summary}")
        rate = run.acceptance_rate()
        if rate is not None:
            print(f"vlmxplain: acceptance rate {rate:.1%} (valid judgments / judged samples); run in {run_dir}")
        if the_judge.is_vlm:
            print(f"vlmxplain: judge requests of this run (cache hits are free): {run.cost()}")
    return run


def _load_batch(dataset: Dataset, indices: list[int], store: RunStore, summary: ExplainSummary, bar) -> list[Sample]:
    batch = []
    for i in indices:
        try:
            batch.append(dataset[i])
        except InputSkipped as err:
            ref = dataset.ref(i)
            store.add_skipped(ref.id, ref.path, err.reason)
            summary.skipped += 1
            bar.update(1)
    return batch


def _judge_items(
    judge: Judge, items: list[JudgeInput], store: RunStore, cache: JudgmentCache | None, alpha: float, beta: float,
    summary: ExplainSummary, bar,
) -> None:
    keys = [judge.cache_key(it) for it in items]
    to_ask = []
    for item, key in zip(items, keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            store.put_judgment(item.sample_id, hit, alpha=alpha, beta=beta, cache_key=key, cached=True)
            summary.cached += 1
            summary.processed += 1
            bar.update(1)
        else:
            to_ask.append((item, key))
    if summary.cached:
        bar.set_postfix(done=summary.judged, failed=summary.failed, cached=summary.cached)
    if not to_ask:
        return
    for k, judgment in judge.judge_many([it for it, _ in to_ask]):
        item, key = to_ask[k]
        store.put_judgment(item.sample_id, judgment, alpha=alpha, beta=beta, cache_key=key, cached=False)
        if cache is not None:
            cache.put(key, judgment)
        summary.processed += 1
        summary.input_tokens += judgment.input_tokens
        summary.output_tokens += judgment.output_tokens
        if judgment.ok:
            summary.judged += 1
        else:
            summary.failed += 1
        bar.update(1)
        bar.set_postfix(done=summary.judged, failed=summary.failed, cached=summary.cached)
