"""explain(): Dataset → classifier → CAMs → masks → judge → RunStore, streaming and resumable.

The stages (:mod:`.stages`) run concurrently, joined by bounded queues: decoding and
preprocessing in parallel workers, CAMs in batches on the model's device, previews and judge
requests in a thread pool, judging with ``concurrency`` requests in flight across the whole
dataset, and one writer committing each CAM, judgment and skipped input the moment it exists.
Memory stays flat in N; calling ``explain`` again on the same run directory does only what is
missing. Judgments are also looked up in (and added to) the content-addressed cache shared
across runs, so the same question is never asked twice.
"""
from __future__ import annotations

import contextlib
import os
import queue
import re
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm.auto import tqdm

from ..cams import CostlyMethodWarning, get_cam_method
from ..cams.extract import check_autocast
from ..core.catalog import closest_values
from ..core.checks import (check_flag, check_int, check_options, check_run_dir, check_usd, validate_mask_params,
                           validate_threshold)
from ..core.defaults import (DEFAULT_ALPHA, DEFAULT_BATCH_SIZE, DEFAULT_BETA, DEFAULT_CAM, DEFAULT_JUDGE,
                             DEFAULT_THRESHOLD, PREVIEW_SIZE)
from ..core.host_memory import frozen_existing_objects, keep_freed_memory_on, releasing_freed_memory
from ..core.records import ClassifierInfo, DatasetInfo, RunConfig, RunView
from ..core.selection import Order, check_order, check_shard, in_order, orders_used, shard_of
from ..datasets import Dataset, DecodeSize, from_list
from ..judges import Judge, make_judge
from ..models.classifiers import Classifier, load_classifier
from ..store import JudgmentCache, Run, RunStore
from ..store.batch_jobs import BatchJobs
from .batch import BatchProgress, BatchStream, clear_spool, collect, is_batch, open_cache
from .stages import ExplainSummary, Stream
from .versions import library_versions

__all__ = ["ExplainSummary", "align_targets", "cap_spending", "check_shard", "count_spent", "default_workers",
           "encode_workers", "explain", "shard_of"]

#: ``explain(decode=...)``: a large JPEG decoded at a reduced scale that covers what the run uses, or every pixel
DECODE_MODES = ("reduced", "full")


def default_workers() -> int:
    """Threads decoding and preprocessing images: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def encode_workers() -> int:
    """Threads building previews and judge requests (PIL and zlib release the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


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


def cap_spending(judge: Judge, max_cost: Any) -> None:
    """Give ``judge`` a spending cap of ``max_cost`` USD (None: no cap). Raises ``ValueError`` for
    a judge that pays for nothing or whose model has no price."""
    if max_cost is not None:
        judge.cap_spend(check_usd("max_cost", max_cost))


def count_spent(judge: Judge, store: RunStore) -> None:
    """Record this call's cap in the run (:func:`~vlmxplain.sync` submits under it) and charge a
    capped judge with what its answers already stored in the run cost."""
    cap = judge.spend_cap
    store.set_config(max_cost=None if cap is None else cap.limit)
    if cap is not None:
        cap.charge(cap.usd(*store.paid_tokens(judge.id)))


def partial_precision(run: Run) -> str:
    """What a run stopped early says about the whole dataset: judged in the shuffled order, its
    judged samples are a random sample, so each quadrant's share is known within its interval."""
    q = run.quadrants()
    if q.total == 0:
        return "nothing judged yet: no quadrant share to estimate"
    if run.judged_at_random is None:
        return (f"{q.total} samples judged so far; the run does not record its judging order (an older vlmxplain "
                "wrote it), so whether they are a random sample of it is not known")
    if not run.judged_at_random:
        return (f"the {q.total} samples judged so far were taken in the dataset's order (order='dataset'): they "
                "need not be a random sample, and their quadrant shares describe them alone")
    ci = q.intervals()
    half = float(((ci["ci_high"] - ci["ci_low"]) / 2).max())
    everything = q.total + q.unjudged + q.unlabelled  # every row of the run's table
    return (f"the {q.total} samples judged so far are a random sample of the {everything} (order='shuffled'): "
            f"each quadrant's share of the whole is known to about ±{half:.1%} (95 %; run.quadrants().intervals())")


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
    workers: int | None = None,
    device: str | None = None,
    autocast: str | None = None,
    shard: tuple[int, int] | None = None,
    repeats: int = 1,
    decode: str = "reduced",
    max_cost: float | None = None,
    order: Order = "shuffled",
    progress: bool = True,
    verbose: bool = True,
):
    """Explain ``classifier`` on ``data`` and return the :class:`~vlmxplain.store.Run`.

    Resumable: calling it again with the same ``run_dir`` computes only what is missing.
    A new ``alpha``/``beta``/``judge`` on an existing run reuses its CAMs and becomes the
    run's current view. ``cache=False`` disables the cross-run judgment cache. ``workers``:
    threads decoding and preprocessing images (default: one per CPU core, at most 8).
    ``device`` (``"cuda"``, ``"mps"``, ``"cpu"``, ``"auto"``) moves the classifier there first
    (default: leave it where it is); ``autocast="bf16"``/``"fp16"`` runs the CAM forward pass in
    mixed precision. ``shard=(k, n)`` computes only the k-th of n disjoint shards of the dataset
    (by a stable hash of the sample id) into this run directory; :func:`~vlmxplain.merge_runs`
    joins the shards' stores into one run. ``repeats=n`` asks the judge ``n`` times per sample
    (repeated sampling, with e.g. ``judge_options={"temperature": 0.7}``): each answer is its own
    judgment (repeat 0..n-1), cached and resumed like a single one; ``run.table`` shows repeat 0
    and ``run.repeats()`` every answer (see :func:`vlmxplain.metrics.reliability`).
    ``decode="reduced"`` (default) decodes a JPEG larger than the run uses at 1/2, 1/4 or 1/8
    scale (the decoder's DCT scaling), never below the stored preview (longest side 512) or the
    model's input size: several times faster for camera photos, with previews and maps within a
    small tolerance of a full decode (see the README); ``"full"`` decodes every pixel.
    ``max_cost`` (USD) caps what the judge spends in this run directory, earlier calls included: a
    request is sent only while the recorded spend, the estimates of the requests on the wire and
    its own fit; the first that does not stops judging, and a call with a larger ``max_cost``
    judges the rest (see :func:`cap_spending`). ``order="shuffled"`` (default) works through the
    samples in a fixed pseudo-random permutation (a hash of each id; a resumed call continues it),
    so a run stopped early — at its cap, by a kill or a fatal reply — has judged a random sample of
    the dataset; ``"dataset"`` keeps the dataset's order (see :mod:`vlmxplain.core.selection`).

    A batch judge (``openai-batch:<model>``, ``gemini-batch:<model>``) submits the pending
    judgments as provider jobs and returns at once (``run.last_summary.batch``); calling ``explain``
    again, or :func:`~vlmxplain.sync`, polls them and collects the answers (see
    :mod:`vlmxplain.pipeline.batch`).

    If the judge's provider refuses a request (a bad key, model or URL: HTTP 401/403/404),
    nothing more is sent; the summary says what to fix, and the next call judges the refused
    and never-sent samples.
    """
    t0 = time.perf_counter()
    run_dir = check_run_dir(run_dir)
    judge_options, cam_options = check_options("judge_options", judge_options), check_options("cam_options", cam_options)
    retry_failed, progress, verbose = (check_flag(n, v) for n, v in (
        ("retry_failed", retry_failed), ("progress", progress), ("verbose", verbose)))
    if not isinstance(cache, (bool, str, Path, JudgmentCache)):
        raise ValueError(f"cache: True, False, a file path or a JudgmentCache, got a {type(cache).__name__}")
    if not isinstance(classifier, (str, Classifier)):
        raise ValueError(f"classifier: a Classifier (vx.load_classifier) or a name, got a {type(classifier).__name__}")
    alpha, beta = validate_mask_params(alpha, beta)
    threshold = validate_threshold(threshold)
    method = get_cam_method(cam).name
    check_int("batch_size", batch_size)
    repeats = check_int("repeats", repeats)
    if limit is not None:
        check_int("limit", limit)
    check_autocast(autocast)
    if decode not in DECODE_MODES:
        raise ValueError(f"decode: one of {', '.join(map(repr, DECODE_MODES))}, got {decode!r}")
    shard, order = check_shard(shard), check_order(order)
    clf = load_classifier(classifier, device=device or "auto") if isinstance(classifier, str) else classifier
    if device is not None:
        clf.to(device)
    dataset = _as_dataset(data)
    if limit is not None:
        dataset = dataset.limit(int(limit))
    mapping = align_targets(dataset, clf.class_names)
    try:
        the_judge = make_judge(judge, classifier=clf, **judge_options)
    except TypeError as err:  # an option the judge does not take (the message names it, not its value)
        raise ValueError(f"judge_options: {err}") from None
    cap_spending(the_judge, max_cost)  # a judge that cannot be capped fails here, before the run exists
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    store = RunStore(run_dir)
    lock = store.lock()  # one process per run directory (a second one gets RunDirBusy)
    store.init_run(
        RunConfig(
            classifier=ClassifierInfo(name=clf.name, fingerprint=clf.fingerprint, target_layer=clf.target_layer_name,
                                      class_names=list(clf.class_names), spec=clf.meta.get("spec")),
            dataset=DatasetInfo(name=dataset.name, n_samples=len(dataset), classes=dataset.classes,
                                spec=getattr(dataset, "spec", None)),
            cam=method, cam_options=dict(cam_options or {}), versions=library_versions(), shard=shard,
        ),
        RunView(judge=the_judge.settings(), alpha=alpha, beta=beta, threshold=threshold),
    )
    store.set_config(judging_orders=orders_used(store.get_config("judging_orders"), order))
    refs = {i: dataset.ref(i) for i in range(len(dataset))}
    if shard is not None:
        refs = {i: r for i, r in refs.items() if shard_of(r.id, shard[1]) == shard[0]}
    store.add_samples(
        {"idx": i, "id": r.id, "path": r.path, "label": r.label,
         "targets": [mapping.get(t, t) for t in r.targets], "meta": r.meta}
        for i, r in refs.items()
    )
    for entry in dataset.skipped_entries:  # entries of the source that are not samples (e.g. a FIFO)
        store.add_skipped(entry.id, entry.path, entry.reason)
    batch = BatchProgress() if is_batch(the_judge) else None
    if batch is not None:  # poll the run's jobs first: ingest what finished, never resubmit what is in flight
        clear_spool(run_dir)
        with open_cache(cache) as judgment_cache:
            collect(store, the_judge, judgment_cache, batch)
    count_spent(the_judge, store)  # after the jobs that finished are ingested (those in flight: see BatchStream)
    done = store.judged_repeats(the_judge.id, the_judge.prompt_version, alpha, beta, include_failed=not retry_failed)
    if batch is not None:
        for sid, ks in BatchJobs(store).in_flight_repeats(the_judge.id, the_judge.prompt_version, alpha, beta).items():
            done.setdefault(sid, set()).update(ks)
    skipped_before = store.skipped_ids()
    have_cam = store.cam_ids()
    todo = {i: repeats - sum(k < repeats for k in done.get(r.id, ())) for i, r in refs.items()
            if r.id not in skipped_before}
    pending = in_order((i for i, n in todo.items() if n > 0), order, sample_id=lambda i: refs[i].id)
    questions = sum(todo.values())  # answers still to get (sample × repeat)
    total = len(refs) * repeats
    del refs, todo
    skipped_count = len(skipped_before)
    summary = ExplainSummary(total=total, already_done=total - questions, skipped=skipped_count, repeats=repeats)
    if pending and get_cam_method(method).costly:
        warnings.warn(f"{method} runs one forward pass per target-layer channel: ~40 s per image on a CPU for "
                      f"EfficientNet-Lite0 ({len(pending)} images). Prefer gradcam for large runs.",
                      CostlyMethodWarning, stacklevel=2)
    bar = tqdm(total=total, initial=summary.already_done, desc=f"explain [{method} → {the_judge.id}]",
               unit="img", disable=not progress)
    workers = default_workers() if workers is None else check_int("workers", workers)

    def preprocess(sample) -> Any:
        return None if sample.id in have_cam else clf.preprocess(sample.image)

    keep_freed_memory_on(clf.device)  # before the stage threads start
    with lock, _judging(the_judge, cache) as judgment_cache, bar, releasing_freed_memory(), \
            frozen_existing_objects():
        depth = max(batch_size, the_judge.concurrency)
        if batch is None:
            stream = Stream(store, the_judge, judgment_cache, alpha, beta, summary, bar, depth=depth, repeats=repeats,
                            done=done)
        else:
            stream = BatchStream(store, the_judge, judgment_cache, alpha, beta, summary, bar, depth=depth,
                                 repeats=repeats, done=done, progress=batch)
        loaded, with_cams, requests = (queue.Queue(maxsize=2 * batch_size), queue.Queue(maxsize=2 * batch_size),
                                       queue.Queue(maxsize=depth))
        encoders = [encode_workers()]
        # what the run uses of an image: the preview and the model's input, (width, height)
        at_least = None if decode == "full" else DecodeSize(PREVIEW_SIZE, tuple(map(int, clf.input_size[::-1])))
        stream.spawn("load", stream.load, dataset, pending, loaded, workers, preprocess, at_least)
        stream.spawn("cams", stream.cams, clf, method, dict(cam_options or {}), batch_size, loaded, with_cams,
                     encoders[0], autocast)
        work = stream.sample_work(list(clf.class_names))
        for k in range(encoders[0]):
            stream.spawn(f"encode-{k}", stream.encode, with_cams, requests, work, encoders)
        stream.spawn("judge", stream.judging, requests)
        stream.write_all()
    summary.skipped = len(store.skipped_ids())
    summary.not_sent = (questions - summary.processed - summary.submitted
                        - (summary.skipped - skipped_count) * repeats)
    summary.batch = batch
    if stream.stopped is not None:
        summary.problem = str(stream.stopped)
    summary.seconds = time.perf_counter() - t0
    run = Run(run_dir, store=store)
    run.last_summary = summary
    if verbose:
        print(f"vlmxplain: {summary}")
        if summary.problem:
            print(f"vlmxplain: {summary.not_sent} samples were never sent and {summary.rejected} refused: "
                  f"{summary.problem}")
            print(f"vlmxplain: {partial_precision(run)}")
        rate = run.acceptance_rate()
        if rate is not None:
            print(f"vlmxplain: acceptance rate {rate:.1%} (valid judgments / judged samples); run in {run_dir}")
        if the_judge.is_vlm:
            print(f"vlmxplain: judge requests of this run (cache hits are free): {run.cost()}")
    return run
