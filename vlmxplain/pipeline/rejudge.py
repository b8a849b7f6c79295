"""rejudge(): judge a run again at another alpha/beta or with another judge, from its store."""
from __future__ import annotations

import queue
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..core.checks import check_int, validate_mask_params, validate_threshold
from ..core.host_memory import frozen_existing_objects, keep_freed_memory_on, releasing_freed_memory
from ..core.records import RunView
from ..core.selection import Order, check_order, in_order, orders_used
from ..judges import Judge, NeedsClassifier, make_judge
from ..models import Classifier, resolve_classifier
from ..store import JudgmentCache, Run
from ..store.batch_jobs import BatchJobs
from .batch import BatchProgress, BatchStream, clear_spool, collect, is_batch, open_cache
from .explain import _judging, cap_spending, count_spent, encode_workers
from .stages import END, ExplainSummary, Stream


def rejudge(
    run: Run,
    *,
    judge: str | Judge | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    threshold: float | None = None,
    judge_options: dict | None = None,
    classifier: Classifier | None = None,
    cache: JudgmentCache | str | Path | bool = True,
    repeats: int = 1,
    max_cost: float | None = None,
    order: Order = "shuffled",
    progress: bool = True,
    make_current: bool = True,
) -> Run:
    """Judge an existing run again at another alpha/beta and/or with another judge, from the
    stored CAMs and images alone (no dataset, no CAM recomputation); returns the run.

    Already judged samples are skipped, so it resumes too. With ``make_current`` (default) the
    new judge/alpha/beta becomes the run's current view (``run.table``, ``run.quadrants()``), as
    with ``explain``. A judge that needs the classifier (``offline:faithfulness``) gets
    ``classifier``, or the run's own classifier rebuilt from its recorded spec. ``repeats=n``
    asks for ``n`` answers per sample (see :func:`~vlmxplain.pipeline.explain.explain`); a rerun
    with a larger ``n`` asks only for the answers still missing. ``max_cost`` (USD) caps what the
    judge spends in this run, as in ``explain``; ``order`` is ``explain``'s too (default: a fixed
    pseudo-random permutation, so a call stopped early has judged a random sample).
    """
    t0 = time.perf_counter()
    view = run.view
    a, b = validate_mask_params(view.alpha if alpha is None else alpha, view.beta if beta is None else beta)
    cut = validate_threshold(view.threshold if threshold is None else threshold)
    repeats, order = check_int("repeats", repeats), check_order(order)
    spec = judge or view.judge.judge
    if classifier is not None and classifier.fingerprint != run.config.classifier.fingerprint:
        raise ValueError("classifier: not the classifier this run was computed with (fingerprints differ)")
    try:
        the_judge = make_judge(spec, classifier=classifier, **(judge_options or {}))
    except NeedsClassifier:
        the_judge = make_judge(spec, classifier=reload_classifier(run), **(judge_options or {}))
    cap_spending(the_judge, max_cost)
    store = run.store
    lock = store.lock()  # one process per run directory (a second one gets RunDirBusy)
    store.record_judge(the_judge.settings())
    store.set_config(judging_orders=orders_used(store.get_config("judging_orders"), order))
    batch = BatchProgress() if is_batch(the_judge) else None
    if batch is not None:  # a batch judge submits jobs and returns: collect what finished, never resubmit
        clear_spool(store.run_dir)
        with open_cache(cache) as judgment_cache:  # under the lock taken above
            collect(store, the_judge, judgment_cache, batch)
    count_spent(the_judge, store)  # after the jobs that finished are ingested
    done = store.judged_repeats(the_judge.id, the_judge.prompt_version, a, b)
    if batch is not None:
        for sid, ks in BatchJobs(store).in_flight_repeats(the_judge.id, the_judge.prompt_version, a, b).items():
            done.setdefault(sid, set()).update(ks)
    have = store.cam_ids()
    todo = {sid: repeats - sum(k < repeats for k in done.get(sid, ())) for sid in have}
    ids = in_order((sid for sid in store.sample_ids() if todo.get(sid, 0) > 0), order)  # "dataset": by idx
    questions = sum(todo.values())  # answers still to get (sample × repeat)
    summary = ExplainSummary(total=len(have) * repeats, already_done=len(have) * repeats - questions, repeats=repeats)
    bar = tqdm(total=summary.total, initial=summary.already_done, desc=f"rejudge [α={a:g} β={b:g} → {the_judge.id}]",
               unit="img", disable=not progress)
    model = getattr(the_judge, "classifier", None)  # offline judges run it in the stage threads
    if isinstance(model, Classifier):
        keep_freed_memory_on(model.device)
    with lock, _judging(the_judge, cache) as judgment_cache, bar, releasing_freed_memory(), \
            frozen_existing_objects():
        depth = max(32, the_judge.concurrency)
        if batch is None:
            stream = Stream(store, the_judge, judgment_cache, a, b, summary, bar, depth=depth, repeats=repeats,
                            done=done)
        else:
            stream = BatchStream(store, the_judge, judgment_cache, a, b, summary, bar, depth=depth, repeats=repeats,
                                 done=done, progress=batch)
        todo, requests = queue.Queue(maxsize=depth), queue.Queue(maxsize=depth)
        encoders = [encode_workers()]

        def source() -> None:
            for sid in ids:
                if stream.halt.is_set():
                    break
                stream.put(todo, sid)
            for _ in range(encoders[0]):
                stream.put(todo, END)

        def work(sid: str):
            with stream.store_lock:  # the stored CAM and preview (reads share the writer's connection)
                return run.judge_input(sid, a, b)

        stream.spawn("source", source)
        for k in range(encoders[0]):
            stream.spawn(f"encode-{k}", stream.encode, todo, requests, work, encoders)
        stream.spawn("judge", stream.judging, requests)
        stream.write_all()
    summary.not_sent = questions - summary.processed - summary.submitted
    summary.batch = batch
    if stream.stopped is not None:
        summary.problem = str(stream.stopped)
    summary.seconds = time.perf_counter() - t0
    if make_current:
        store.set_view(RunView(judge=the_judge.settings(), alpha=a, beta=b, threshold=cut))
    run.last_summary = summary
    return run


def reload_classifier(run: Run) -> Classifier:
    """The run's classifier, rebuilt from the specs in its record (checked by fingerprint)."""
    info, data = run.config.classifier, run.config.dataset
    if info.spec is None:
        raise ValueError(f"classifier: {run.run_dir} does not record how its classifier was built; "
                         "pass classifier= (the model the run was computed with)")
    clf = resolve_classifier(info.spec, data.spec, progress=False)
    if clf.fingerprint != info.fingerprint:
        raise ValueError(f"classifier: {info.spec!r} no longer builds the model this run used (fingerprints "
                         "differ); pass classifier=")
    return clf
