"""The requests on the wire of one judging stream.

At most ``slots`` attempts are in flight; a slot freed by a reply is taken again at once by the
next request. With ``hedge``, once nothing is left to send, a request still on the wire past the
stream's 75th latency percentile is sent a second time on a free slot, and the first answer wins
("hedged requests", Dean & Barroso, *The Tail at Scale*, CACM 2013). A dataset's throughput is set
by ``slots ÷ mean latency`` whatever the tail; what the tail costs is the end of the stream, where
the last replies are waited for one by one with the other slots idle.

Attempts run on daemon threads (kept for the stream, at most ``slots``): a straggler whose twin
already answered never keeps the interpreter from exiting, and it stops at its next check (no
retries) once the answer is in.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ...core.records import Judgment
from ..base import Emit, Request

#: A request is hedged once it has been on the wire longer than this quantile of the stream's latencies ...
HEDGE_QUANTILE = 0.75
#: ... measured on at least this many replies (fewer say nothing about what is slow).
HEDGE_MIN_REPLIES = 10
_POLL = 0.05


class Signal(Protocol):
    """What an attempt checks to give up (a :class:`threading.Event` or :class:`Either`)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Either:
    """Set when any of ``events`` is: the run's stop or this request's own cancellation."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = _POLL if end is None else min(_POLL, end - time.monotonic())
            if left <= 0:
                break
            self.events[0].wait(left)
        return self.is_set()


#: ``attempt(request, give_up, on_wire)``: one request's judgment. ``on_wire(True)`` before each send
#: (False: do not send, the answer is already in) and ``on_wire(False)`` after it.
Attempt = Callable[[Request, Signal, Callable[[bool], bool]], Judgment]


class _Workers:
    """At most ``size`` daemon threads running jobs, started as needed (an idle one is reused:
    starting a thread per request costs the sender a thread switch each time)."""

    def __init__(self, size: int) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._size, self._started = size, 0

    def submit(self, job: Callable[[], None]) -> None:
        if not self._idle.acquire(blocking=False) and self._started < self._size:
            self._started += 1
            threading.Thread(target=self._work, name="vlmx-judge", daemon=True).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()  # never raises: an attempt turns every error into a judgment
            self._idle.release()

    def close(self) -> None:
        """Each thread ends once its current job is done."""
        for _ in range(self._started):
            self._jobs.put(None)


@dataclass(eq=False)
class _Pending:
    """A request sent and not yet emitted."""

    request: Request
    cancel: threading.Event = field(default_factory=threading.Event)
    running: set[int] = field(default_factory=lambda: {0})  # attempts still running: 0 the original, 1 its twin
    sent: set[int] = field(default_factory=set)  # attempts that went on the wire (the provider bills them)
    twin: bool = False  # a twin was started
    decided: bool = False  # its judgment is chosen (being emitted)
    wire_since: float | None = None  # when the original's current send started (None: not on the wire)
    finished: list[Judgment] = field(default_factory=list)  # failed attempts while the other still ran


class Flight:
    """Send requests on at most ``slots`` attempts at once; emit one judgment per request.

    ``blocked()`` true (a fatal reply) or ``stop`` set: nothing more is sent. The judgment emitted
    for a hedged request counts both requests' tokens (the unfinished one's estimated as its twin's):
    the provider bills both.
    """

    def __init__(self, attempt: Attempt, emit: Emit, stop: threading.Event, slots: int, *, hedge: bool = False,
                 blocked: Callable[[], bool] = lambda: False,
                 may_hedge: Callable[[Request], bool] = lambda request: True) -> None:
        self._attempt, self._emit, self.stop, self.hedge, self._blocked = attempt, emit, stop, hedge, blocked
        self._may_hedge = may_hedge  # False: this straggler gets no twin (e.g. the spending cap has no room)
        self._cond = threading.Condition()
        self._free = slots
        self._workers = _Workers(slots)
        self._pending: list[_Pending] = []  # in the order sent
        self._latencies: list[float] = []
        self.hedges = 0  # twins sent

    def halted(self) -> bool:
        return self.stop.is_set() or self._blocked()

    def send(self, request: Request) -> bool:
        """Start ``request`` once a slot is free. False (nothing sent) when the stream is halted."""
        with self._cond:
            while self._free == 0 and not self.halted():
                self._cond.wait(_POLL)
            if self.halted():
                return False
            pending = _Pending(request)
            self._pending.append(pending)
            self._start(pending)
        return True

    def drain(self) -> None:
        """Wait until every request sent is emitted, hedging stragglers meanwhile (with ``hedge``).
        Returns at once once ``stop`` is set: what is on the wire then is not waited for."""
        with self._cond:
            while self._pending and not self.stop.is_set():
                due = self._hedge_stragglers() if self.hedge and not self._blocked() else None
                self._cond.wait(_POLL if due is None else min(_POLL, max(due, 0.001)))
        self._workers.close()

    # -- internals (the condition's lock held unless said otherwise) ------------------------------
    def _start(self, pending: _Pending, attempt: int = 0) -> None:
        self._free -= 1
        self._workers.submit(lambda: self._run(pending, attempt))

    def _on_wire(self, pending: _Pending, attempt: int, sending: bool) -> bool:
        with self._cond:
            if sending:
                if pending.decided:
                    return False  # its twin answered first: nothing more is sent (or billed)
                if attempt == 1 and not pending.request.hedged:
                    pending.request.hedged = True
                    self.hedges += 1
                pending.sent.add(attempt)
            if attempt == 0 and not pending.twin:  # a hedged request is never hedged again
                pending.wire_since = time.monotonic() if sending else None
            return True

    def _hedge_stragglers(self) -> float | None:
        """Send a twin of each request on the wire past the latency quantile while slots are free;
        return the seconds until the next one is due (None: none is)."""
        if len(self._latencies) < HEDGE_MIN_REPLIES or self._free == 0:
            return None
        ordered = sorted(self._latencies)
        threshold = ordered[int(HEDGE_QUANTILE * (len(ordered) - 1))]
        now, due = time.monotonic(), None
        for p in self._pending:
            if p.decided or p.twin or p.wire_since is None:
                continue
            wait = p.wire_since + threshold - now
            if wait > 0:
                due = wait if due is None else min(due, wait)
            elif self._free > 0 and self._may_hedge(p.request):
                p.twin = True
                p.running.add(1)
                self._start(p, 1)
        return due

    def _run(self, pending: _Pending, attempt: int) -> None:  # on a worker thread; takes the lock itself
        judgment = self._attempt(pending.request, Either(self.stop, pending.cancel),
                                 lambda sending: self._on_wire(pending, attempt, sending))
        with self._cond:
            pending.running.discard(attempt)
            if judgment.answered and judgment.latency_s > 0 and not pending.cancel.is_set():
                self._latencies.append(judgment.latency_s)
            verdict = None
            if not pending.decided:
                if judgment.ok or not pending.running or judgment.status == "rejected":
                    pending.decided = True
                    pending.cancel.set()  # the twin, if any, stops at its next check
                    verdict = self._with_twin(pending, judgment)
                else:  # the twin may still answer
                    pending.finished.append(judgment)
            if verdict is None:
                self._free += 1
                self._cond.notify_all()
                return
        try:
            self._emit(pending.request, verdict)  # before the slot is freed: the verdict is recorded first
        finally:
            with self._cond:
                self._pending.remove(pending)
                self._free += 1
                self._cond.notify_all()

    @staticmethod
    def _with_twin(pending: _Pending, judgment: Judgment) -> Judgment:
        """The judgment with the tokens (and request) of the other attempt added: its own if it
        finished (an error that produced no tokens is not billed), else estimated as this one's if
        it went on the wire (a twin that was never sent costs nothing)."""
        if not pending.request.hedged:
            return judgment
        unfinished = len(pending.running & pending.sent)
        extra_in = sum(j.input_tokens for j in pending.finished) + unfinished * judgment.input_tokens
        extra_out = sum(j.output_tokens for j in pending.finished) + unfinished * judgment.output_tokens
        billed = sum(1 for j in pending.finished if j.input_tokens or j.output_tokens)
        return judgment.model_copy(update={"input_tokens": judgment.input_tokens + extra_in,
                                           "output_tokens": judgment.output_tokens + extra_out,
                                           "requests": 1 + unfinished + billed})
