"""The streaming stages of ``explain``/``rejudge``: threads joined by bounded queues.

    load (decode + preprocess, a pool of workers)
      → CAMs (one thread, batches on the model's device)
      → encode (a pool: preview, masks, the judge's request — PIL and zlib release the GIL)
      → judge (``concurrency`` requests in flight continuously, cache hits answered at once)
      → write (the calling thread: one store writer committing each result as it arrives)

Every queue is bounded, so memory does not grow with the dataset. The first error in any stage
stops every stage and is raised by :meth:`Stream.write_all`; a judge's fatal reply (bad key, model
or URL) *halts* the stream instead: nothing new is produced or sent, what is in flight is written.
Writes keep the order that makes a kill at any moment safe: a sample's CAM and preview are
committed before its judgment.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..cams.extract import cams_for_batch
from ..core.records import Judgment
from ..datasets import Dataset, DecodeSize, InputSkipped, Sample
from ..judges import Judge
from ..judges.base import Request, Stopped
from ..masks.images import preview_bytes, preview_of
from ..masks.judge_input import JudgeInput, make_judge_input
from ..masks.perturbation import shows_no_attention
from ..models.classifiers import Classifier
from ..store import JudgmentCache, RunStore

END = object()
_POLL = 0.05


class Halted(Exception):
    """The stream was stopped (an error elsewhere, or an interrupt)."""


@dataclass
class ExplainSummary:
    """What one ``explain`` call did. ``rejected``: questions the provider refused (bad key, model or
    URL); ``not_sent``: samples never asked; both are asked again by a plain rerun. With
    ``repeats`` > 1 the counts are questions (sample × repeat), not samples."""

    total: int = 0
    processed: int = 0
    skipped: int = 0
    cams_computed: int = 0
    cams_reused: int = 0
    judged: int = 0
    cached: int = 0
    failed: int = 0
    rejected: int = 0
    not_sent: int = 0
    no_attention: int = 0
    submitted: int = 0  # batch judges: requests submitted as provider jobs (answered later)
    hedged: int = 0  # stragglers sent twice at the end of the stream (``hedge=True``): both requests billed
    already_done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    problem: str | None = None  # why judging stopped early, and what to fix
    stages: dict[str, int] = field(default_factory=dict)  # items through each stage
    repeats: int = 1  # answers asked per sample (repeated sampling)
    batch: Any = None  # batch judges: where the run's provider jobs stand (pipeline.batch.BatchProgress)

    def __str__(self) -> str:
        what = "samples" if self.repeats == 1 else f"questions ({self.repeats} answers per sample)"
        text = (
            f"{self.total} {what}: {self.processed} processed ({self.already_done} already done), "
            f"{self.skipped} skipped; CAMs {self.cams_computed} computed / {self.cams_reused} reused; "
            f"judgments {self.judged} new, {self.cached} from cache, {self.failed} failed"
        )
        if self.no_attention:
            text += f", {self.no_attention} blank maps not sent (no attention)"
        if self.submitted:
            text += f", {self.submitted} submitted as batch jobs"
        if self.hedged:
            text += f", {self.hedged} stragglers sent twice (hedge: both billed)"
        if self.rejected or self.not_sent:
            text += f", {self.rejected} refused, {self.not_sent} never sent"
        text += f"; tokens {self.input_tokens} in / {self.output_tokens} out; {self.seconds:.1f} s"
        if self.batch is not None:
            text += f"\n{self.batch}"
        if self.problem:
            text += (f"\nstopped: {self.problem}. Fix it and call explain() again: the refused and never-sent "
                     "samples are judged then")
        return text


class Stream:
    """The shared state of one streaming run: stop/halt flags, queues, the store and its lock,
    the cache and per-stage counters. Stages run in threads started with :meth:`spawn`."""

    def __init__(self, store: RunStore, judge: Judge, cache: JudgmentCache | None, alpha: float, beta: float,
                 summary: ExplainSummary, bar: Any, *, depth: int, repeats: int = 1,
                 done: dict[str, set[int]] | None = None) -> None:
        self.store, self.judge, self.cache = store, judge, cache
        self.repeats, self._done = repeats, done or {}  # answers per sample; those already finished
        self.alpha, self.beta = alpha, beta
        self.summary, self.bar = summary, bar
        self.stop = threading.Event()  # abort: an error or an interrupt
        self.halt = threading.Event()  # produce nothing new (a fatal judge reply)
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.store_lock = threading.Lock()  # reads from stage threads vs the writer
        self._cache_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.counts = {"loaded": 0, "cams": 0, "reused": 0, "encoded": 0, "sent": 0, "answered": 0, "hedged": 0}
        self.writes: queue.Queue = queue.Queue(maxsize=4 * depth)
        self.stopped: Stopped | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        def body() -> None:
            try:
                target(*args)
            except Halted:
                pass
            except BaseException as exc:  # the first error stops every stage
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=body, name=f"vlmx-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise Halted
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                pass

    def get(self, q: queue.Queue) -> Any:
        while True:
            if self.stop.is_set():
                raise Halted
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                pass

    def count(self, stage: str, n: int = 1) -> None:
        with self._count_lock:
            self.counts[stage] += n

    def write(self, kind: str, *args: Any) -> None:
        self.put(self.writes, (kind, *args))

    def missing(self, sample_id: str) -> list[int]:
        """The repeat indices of ``sample_id`` still to be answered."""
        done = self._done.get(sample_id, ())
        return [k for k in range(self.repeats) if k not in done]

    # -- stages --------------------------------------------------------------------------------
    def load(self, dataset: Dataset, indices: Iterable[int], out: queue.Queue, workers: int,
             preprocess: Callable[[Sample], Any], at_least: DecodeSize | None = None) -> None:
        """Decode samples (``at_least``: no more of a large JPEG than that) and preprocess those that
        need a CAM, in ``workers`` threads, in order; ``out`` gets ``(sample, tensor or None)``;
        unreadable inputs go to the writer as skipped."""

        def one(i: int) -> tuple[str, Any, Any]:
            try:
                sample = dataset.load(i, at_least=at_least)
            except InputSkipped as err:
                ref = dataset.ref(i)
                return "skip", ref, err.reason
            return "sample", sample, preprocess(sample)

        window: deque = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vlmx-load") as pool:
            try:
                for i in indices:
                    if self.halt.is_set() or self.stop.is_set():
                        break
                    window.append(pool.submit(one, i))
                    if len(window) > 2 * workers:
                        self._loaded(window.popleft().result(), out)
                while window and not self.stop.is_set():
                    self._loaded(window.popleft().result(), out)
            finally:
                for fut in window:
                    fut.cancel()
        self.put(out, END)

    def _loaded(self, got: tuple[str, Any, Any], out: queue.Queue) -> None:
        kind, what, extra = got
        if kind == "skip":
            self.write("skip", what.id, what.path, extra)
        else:
            self.count("loaded")
            self.put(out, (what, extra))

    def cams(self, clf: Classifier, method: str, method_options: dict, batch_size: int, inp: queue.Queue,
             out: queue.Queue, encoders: int, autocast: str | None = None) -> None:
        """Batch samples, compute the CAMs they lack on the model's device, commit them, and pass
        each sample on with its CAM exactly as the store holds it (float16)."""
        batch: list[tuple[Sample, Any]] = []
        while True:
            got = self.get(inp)
            if got is not END:
                batch.append(got)
            if batch and (got is END or len(batch) >= batch_size):
                if not self.halt.is_set():
                    self._cam_batch(clf, method, method_options, batch, out, autocast)
                batch = []
            if got is END:
                break
        for _ in range(encoders):
            self.put(out, END)

    def _cam_batch(self, clf: Classifier, method: str, options: dict, batch: list, out: queue.Queue,
                   autocast: str | None) -> None:
        need = [(s, x) for s, x in batch if x is not None]
        fresh: dict[str, dict] = {}
        if need:
            res = cams_for_batch(clf, method, [s.image for s, _ in need], tensors=[x for _, x in need],
                                 ids=[s.id for s, _ in need], method_options=options, autocast=autocast)
            rows = [res[k] | {"method": res.method} for k in range(len(res))]
            self.write("cams", rows)
            for row in rows:  # judges see what the store holds: the float16 map
                fresh[row["id"]] = row | {"map": np.asarray(row["map"], np.float16).astype(np.float32)}
        for sample, x in batch:
            cam = fresh.get(sample.id)
            if cam is None:
                with self.store_lock:
                    cam = self.store.get_cam(sample.id)
                self.count("reused")
            self.count("cams")
            self.put(out, (sample, cam))

    def encode(self, inp: queue.Queue, out: queue.Queue, work: Callable[[Any], JudgeInput], remaining: list) -> None:
        """Turn each item into the judge's request (``work`` builds the input, the judge encodes
        what it is sent once); the last encoder to finish ends the judge's stream."""
        try:
            while (got := self.get(inp)) is not END:
                if self.halt.is_set():
                    continue
                sample_id = got[0].id if isinstance(got, tuple) else str(got)
                try:
                    item = work(got)
                    if shows_no_attention(item):  # a blank map: recorded, never sent to a judge
                        for k in self.missing(item.sample_id):
                            self.write("judgment", item.sample_id,
                                       Judgment.no_attention(self.judge.id, self.judge.prompt_version), "", False, k)
                        continue
                    request = self.judge.prepare(item)
                except (Halted, MemoryError):
                    raise
                except Exception as exc:  # one bad input fails alone, with its reason
                    failure = Judgment.failure(self.judge.id, self.judge.prompt_version,
                                               f"bad input: {type(exc).__name__}: {exc}")
                    for k in self.missing(sample_id):
                        self.write("judgment", sample_id, failure, "", False, k)
                    continue
                self.count("encoded")
                for k in self.missing(request.sample_id):  # one request per answer still missing
                    self.put(out, request.for_repeat(k))
        finally:
            with self._count_lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.put(out, END)

    def sample_work(self, class_names: list[str]) -> Callable[[tuple[Sample, dict]], JudgeInput]:
        """``encode`` work of ``explain``: store the preview (lossless), derive the judge input from it."""

        def work(got: tuple[Sample, dict]) -> JudgeInput:
            sample, cam = got
            preview = preview_of(sample.image)
            self.write("preview", sample.id, preview_bytes(preview), sample.mask)
            return make_judge_input(sample.id, preview, cam, self.alpha, self.beta, class_names,
                                    label=sample.label, object_mask=sample.mask)

        return work

    def judging(self, inp: queue.Queue) -> None:
        """Answer cache hits at once; stream the rest through the judge. After a fatal reply, what
        is still queued is recorded as never sent and the stream halts."""

        def requests() -> Iterator[Request]:
            while (request := self.get(inp)) is not END:
                hit = self._cache_get(request.key)
                if hit is not None:
                    self.write("judgment", request.sample_id, hit, request.key, True, request.repeat)
                    continue
                self.count("sent")
                yield request

        def emit(request: Request, judgment: Judgment) -> None:
            self.count("answered")
            if request.hedged:
                self.count("hedged")
            try:
                self.write("judgment", request.sample_id, judgment, request.key, False, request.repeat)
            except Halted:
                pass

        stopped = self.judge.judge_requests(requests(), emit, self.stop)
        if stopped is not None:
            self.stopped = stopped
            self.halt.set()
            reason = stopped.unsent_reason
            while (request := self.get(inp)) is not END:
                self.write("judgment", request.sample_id,
                           Judgment.unsent(self.judge.id, self.judge.prompt_version, reason), request.key, False,
                           request.repeat)

    def _cache_get(self, key: str) -> Judgment | None:
        if self.cache is None or not key:
            return None
        with self._cache_lock:
            return self.cache.get(key)

    # -- the writer -----------------------------------------------------------------------------
    def write_all(self) -> None:
        """Commit every result as it arrives, until every stage has finished; then raise the first
        stage error, if any. Runs in the calling thread (an interrupt stops every stage)."""
        try:
            while True:
                try:
                    msg = self.writes.get(timeout=_POLL)
                except queue.Empty:
                    self._show()
                    if self.stop.is_set() or not any(t.is_alive() for t in self.threads):
                        if self.writes.empty():
                            break
                    continue
                with self.store_lock:
                    self._apply(msg)
        except BaseException:
            self.stop.set()
            raise
        finally:
            for thread in self.threads:
                thread.join(timeout=5)
            self._show(force=True)
        self.summary.cams_reused, self.summary.hedged = self.counts["reused"], self.counts["hedged"]
        self.summary.stages = dict(self.counts)
        if self.errors:
            raise self.errors[0]

    def _apply(self, msg: tuple) -> None:
        kind, *args = msg
        s = self.summary
        if kind == "cams":
            self.store.put_cams(args[0])
            s.cams_computed += len(args[0])
        elif kind == "preview":
            self.store.put_preview(*args)
        elif kind == "skip":
            self.store.add_skipped(*args)
            s.skipped += 1
            self.bar.update(self.repeats)
        elif kind == "judgment":
            sample_id, judgment, key, cached, repeat = args
            self.store.put_judgment(sample_id, judgment, alpha=self.alpha, beta=self.beta, cache_key=key,
                                    cached=cached, repeat=repeat)
            if cached:
                s.cached += 1
            elif judgment.status == "not_sent":
                return
            elif judgment.status == "no_attention":
                s.no_attention += 1
            else:
                if self.cache is not None and key:
                    with self._cache_lock:
                        self.cache.put(key, judgment)
                s.input_tokens += judgment.input_tokens
                s.output_tokens += judgment.output_tokens
                if judgment.ok:
                    s.judged += 1
                elif judgment.status == "rejected":
                    s.rejected += 1
                else:
                    s.failed += 1
            s.processed += 1
            self.bar.update(1)

    _last_show = 0.0

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_show < 0.25:
            return
        self._last_show = now
        c, s = dict(self.counts), self.summary
        self.bar.set_postfix(loaded=c["loaded"], cams=c["cams"], encoded=c["encoded"],
                             inflight=c["sent"] - c["answered"], done=s.judged, failed=s.failed + s.rejected,
                             cached=s.cached, refresh=force)
