"""Client-side limits for VLM calls: request/token rate limits, retry with backoff.

- :class:`RateLimiter` — requests-per-minute and tokens-per-minute token buckets shared by all
  worker threads of a judge, plus a shared cool-down set from ``Retry-After`` (one 429 pauses
  every worker, not just the one that got it).
- :class:`RetryPolicy` — bounded attempts, exponential backoff with jitter, ``Retry-After``
  honoured (never retried sooner than the server asked).
- :func:`parse_retry_after` — ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date).
- :class:`SpendCap` — a ceiling in USD on what a judge spends (``explain(..., max_cost=...)``).

The SDKs' own retries are switched off so that these are the only ones.
"""
from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Mapping

from ...core.records import Judgment
from ..base import Request, Stopped
from .cost import DEFAULT_OUTPUT_TOKENS, ModelPrice, cost_usd

#: HTTP statuses worth retrying: request timeout, conflict/lock, rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Statuses that will fail every request the same way (bad key, no access, unknown model).
FATAL_STATUS = frozenset({401, 403, 404})
_STATUS_KINDS = {400: "bad request", 401: "authentication failed", 403: "permission denied",
                 404: "not found (model or URL)", 408: "request timeout", 409: "conflict",
                 413: "request too large", 422: "unprocessable request", 429: "rate limited"}


def status_kind(status: int) -> str:
    """A short name for an HTTP error status ("authentication failed", "rate limited", ...)."""
    return _STATUS_KINDS.get(status, "server error" if status >= 500 else "request rejected")


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    Attempt ``n`` (1-based) that failed with a retryable error waits
    ``min(max_delay, base_delay * 2**(n-1))`` scaled by a random factor in ``[0.5, 1]``, or the
    server's ``Retry-After`` when that is longer (capped by ``max_retry_after``).
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        rng = rng or random
        backoff = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        backoff *= 0.5 + 0.5 * rng.random()
        if retry_after is not None:
            # Honour the server: never sooner than asked; a little jitter avoids a thundering herd.
            asked = min(retry_after, self.max_retry_after)
            return max(backoff, asked + 0.05 * asked * rng.random())
        return backoff


@dataclass
class _Bucket:
    rate: float  # units per second
    capacity: float
    level: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``min(amount, capacity)`` units are available (0 if now)."""
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need / self.rate


class RateLimiter:
    """Thread-safe request/token rate limiter with a shared cool-down.

    ``rpm``/``tpm`` of ``None`` mean unlimited. Buckets hold one second's worth (at least one
    request); a request larger than the token bucket waits for a full bucket and then runs into
    debt, so it can never deadlock. :meth:`settle` corrects a token estimate with actual usage.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {value}")
        self.rpm, self.tpm = rpm, tpm
        self._requests = _Bucket(rpm / 60.0, max(1.0, rpm / 60.0)) if rpm else None
        self._tokens = _Bucket(tpm / 60.0, max(1.0, tpm / 60.0)) if tpm else None
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every caller of :meth:`acquire` for ``seconds`` from now (e.g. after a 429)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + max(0.0, seconds))

    def acquire(self, tokens: float = 0.0, stop: threading.Event | None = None) -> bool:
        """Block until one request of ``tokens`` estimated tokens may start. False if ``stop`` was set."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = max(0.0, self._resume_at - now)
                for bucket, amount in ((self._requests, 1.0), (self._tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait_for(amount))
                if wait <= 0:
                    if self._requests is not None:
                        self._requests.level -= 1.0
                    if self._tokens is not None:
                        self._tokens.level -= tokens
                    return True
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)

    def settle(self, estimated: float, actual: float) -> None:
        """Charge (or refund) the difference between estimated and actual tokens of a finished call."""
        if self._tokens is None or actual <= 0:
            return
        with self._lock:
            self._tokens.refill(time.monotonic())
            self._tokens.level -= actual - estimated

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm})"


class SpendCap:
    """A ceiling on what a judge spends, in USD, shared by all its worker threads.

    A request may start only if the spend so far (``spent``: earlier calls' recorded cost plus the
    replies of this one), the estimates of the requests still on the wire (``reserved``) and its
    own estimate stay within ``limit``; each reply then replaces its estimate by what it cost. The
    total can pass ``limit`` only by how much the replies on the wire exceed their estimates.
    Costs are ``price``'s (at the batch-API rate with ``batch``); a request's output is estimated
    at ``output_tokens``.
    """

    def __init__(self, limit: float, price: ModelPrice, *, batch: bool = False,
                 output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        if not limit > 0:
            raise ValueError(f"a spending cap must be > 0 USD, got {limit!r}")
        self.limit, self.price, self.batch, self.output_tokens = float(limit), price, batch, output_tokens
        self.spent = self.reserved = 0.0
        self._held: dict[int, float] = {}  # id(request) -> USD set aside for it (twice for a hedged twin)
        self._lock = threading.Lock()

    def usd(self, input_tokens: float, output_tokens: float) -> float:
        """What these tokens cost."""
        return cost_usd(self.price, input_tokens, output_tokens, self.batch) or 0.0

    def estimate(self, request: Request) -> float:
        """What ``request`` is estimated to cost (``payload[2]``: its input and output tokens)."""
        if isinstance(request.payload, Exception):
            return 0.0  # a bad input is never sent
        return self.usd(max(0, request.payload[2] - self.output_tokens), self.output_tokens)

    def reserve(self, request: Request, *, settled_later: bool = True) -> bool:
        """Set ``request``'s estimate aside before it is sent; False (nothing set aside) if it does not
        fit. With ``settled_later=False`` (a batch job's request, answered after this call) the
        estimate is charged as spent at once."""
        usd = self.estimate(request)
        with self._lock:
            if self.spent + self.reserved + usd > self.limit:
                return False
            if not settled_later:
                self.spent += usd
                return True
            self.reserved += usd
            self._held[id(request)] = self._held.get(id(request), 0.0) + usd
            return True

    def settle(self, request: Request, judgment: Judgment | None = None) -> None:
        """``request`` ended: release what was set aside for it and charge what ``judgment`` was billed
        (its tokens; nothing when it was never sent)."""
        actual = 0.0 if judgment is None else self.usd(judgment.input_tokens, judgment.output_tokens)
        with self._lock:
            self.reserved = max(0.0, self.reserved - self._held.pop(id(request), 0.0))
            self.spent += actual

    def charge(self, usd: float) -> None:
        """Count ``usd`` as spent (what earlier calls' answers cost)."""
        with self._lock:
            self.spent += usd

    def stopped(self, request: Request) -> Stopped:
        """Why judging stops when ``request`` does not fit."""
        return Stopped(f"the spending cap max_cost=${self.limit:.4f} is reached (${self.spent + self.reserved:.4f} "
                       f"spent or on the wire; the next request is estimated at ${self.estimate(request):.4f})",
                       "raise max_cost to judge the rest",
                       unsent=f"not sent: the spending cap max_cost=${self.limit:.4f} was reached")

    def __repr__(self) -> str:
        return f"SpendCap(limit=${self.limit:.4f}, spent=${self.spent:.4f}, on the wire=${self.reserved:.4f})"
