"""Shared machinery of the VLM judges: options, the concurrent judging loop, retries, and turning
a provider's reply into a :class:`~vlmxplain.judges.base.Judgment`.

Backends (:mod:`.openai_backend`, :mod:`.gemini_backend`) only build a client and implement
:meth:`VLMJudge._send` (one request → :class:`Reply`, or :class:`CallError` for a transport/HTTP
problem). Everything else — bounded concurrency, rate limits, backoff, failure reasons, token
accounting, secrets hygiene — lives here, identical for every provider.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import queue
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit
from collections.abc import Iterable, Iterator, Sequence

from pydantic import ValidationError

from ...core.checks import describe_option_errors
from ...core.records import JudgeResponse, JudgeSettings, Judgment
from ...core.specs import JudgeSpec
from ...masks.images import encode_image
from ...masks.judge_input import JudgeInput, judge_view
from ..base import Emit, Judge, Request, Stopped, content_key
from .cost import DEFAULT_OUTPUT_TOKENS, ModelPrice, image_tokens, lookup_price, price_of, text_tokens
from .flight import Flight, Signal
from .keys import RedactingFilter, Redactor, Secret, check_env_urls
from .limits import RateLimiter, RetryPolicy, SpendCap
from .options import VLMOptions
from .parsing import ParseFailure, parse_judge_text
from .prompts import PromptTemplate

log = logging.getLogger("vlmxplain.judges.vlm")

_RAW_LIMIT = 20_000


@dataclass
class Reply:
    """One provider reply, normalised. ``finish`` is ``stop``, ``length``, ``refusal``, ``blocked`` or ``empty``."""

    text: str | None
    parsed: JudgeResponse | None = None  # set when the SDK itself validated the schema
    finish: str = "stop"
    detail: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    body: str = ""  # raw response body, kept when there is no text


class CallError(Exception):
    """A request that did not produce a reply (HTTP error, timeout, connection, bad body)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retryable: bool = False,
                 fatal: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status
        self.retryable, self.fatal, self.retry_after = retryable, fatal, retry_after

    def reason(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.kind}{status}: {self.message}"


def _settling(cap: SpendCap, emit: Emit) -> Emit:
    """``emit`` that first settles the request's cost with ``cap``."""
    def settled(request: Request, judgment: Judgment) -> None:
        cap.settle(request, judgment)
        emit(request, judgment)
    return settled


class VLMJudge(Judge):
    """Base of the VLM judges: ``judge_many`` runs requests concurrently and yields as they finish.

    ``id`` is the spec string; ``prompt_version`` is the template's hashed version plus every
    option that changes the question (input kind, image size, detail, temperature), so the
    content-addressed cache key changes when any of them does.
    """

    is_vlm = True
    provider: str = ""
    allowed_details: tuple[str | None, ...] = ("low", "high", "auto")
    base_url_env: tuple[str, ...] = ()  # variables the SDK reads a server URL from

    def __init__(self, spec: JudgeSpec | str, *, api_key: str | None = None, **options: Any) -> None:
        spec = JudgeSpec.parse(spec)
        self.spec = spec
        self.id = str(spec)
        self.model = spec.model
        try:
            self.options = VLMOptions(**options)
        except ValidationError as exc:  # never echo a value: a key under a wrong option name would show
            raise ValueError(f"judge {self.id!r}: invalid option(s): {describe_option_errors(exc, VLMOptions)}"
                             ) from None
        self.detail = self.options.resolved_detail(self.provider)
        if self.detail not in self.allowed_details:
            raise ValueError(f"judge {self.id!r}: detail={self.options.detail!r} is not supported; "
                             f"use one of {[d for d in self.allowed_details if d]}")
        self.template: PromptTemplate = self.options.template  # type: ignore[assignment]
        o = self.options
        self.prompt_version = (f"{self.template.version}|input={o.input_kind}|size={o.image_size}"
                               f"|detail={self.detail or 'default'}|temperature={o.temperature}")
        self.policy = RetryPolicy(max_attempts=o.max_retries + 1, base_delay=o.backoff_base, max_delay=o.backoff_max)
        self.limiter = RateLimiter(o.rpm, o.tpm)
        if self.options.base_url is None and spec.base_url is None:
            check_env_urls(self.base_url_env)
        self._key: Secret = self._resolve_key(api_key)  # missing key: clear error, before any work
        self._redact = Redactor(self._key)
        self._log_filter = RedactingFilter(self._redact).install()
        self._client = self._make_client(self._key)
        self.price: ModelPrice | None = o.price or lookup_price(self.model)
        self.spend_cap: SpendCap | None = None

    # -- backend hooks -------------------------------------------------------------------
    def _resolve_key(self, explicit: str | None) -> Secret:
        raise NotImplementedError

    def _make_client(self, key: Secret) -> Any:
        raise NotImplementedError

    def _send(self, image: bytes, prompt: str) -> Reply:
        """One request. Returns a :class:`Reply` or raises :class:`CallError`."""
        raise NotImplementedError

    @property
    def mime_type(self) -> str:
        """The media type of the image sent."""
        return f"image/{self.options.image_format}"

    @property
    def concurrency(self) -> int:
        return self.options.concurrency

    # -- what the judge is shown -----------------------------------------------------------
    def view(self, item: JudgeInput):
        """The PIL image sent for ``item`` (see :func:`~.views.judge_view`)."""
        return judge_view(item, self.options.input_kind, self.options.image_size)

    def view_bytes(self, item: JudgeInput) -> bytes:
        """Exactly the image bytes sent for ``item`` (PNG, or JPEG with ``image_format="jpeg"``)."""
        return self.prepare(item).payload[0]

    def render_prompt(self, item: JudgeInput) -> str:
        """Exactly the user text sent for ``item``."""
        return self.template.render(item, self.options.input_kind)

    # cache_key (from Judge) is prepare(item).key: the rendered prompt names the predicted class, so
    # the same image asked about another class is another question.

    def estimated_tokens(self, prompt: str, width: int, height: int) -> int:
        price = self.price or ModelPrice(input_per_mtok=0, output_per_mtok=0)
        out = self.options.max_output_tokens or DEFAULT_OUTPUT_TOKENS
        return image_tokens(price, width, height, self.detail) + text_tokens(self.template.system + prompt) + out

    # -- what it costs -------------------------------------------------------------------------
    def cap_spend(self, limit_usd: float, *, batch: bool = False) -> None:
        """Send no request that could take this judge's spend past ``limit_usd`` (``batch``: priced at
        the batch-API rate): the first request that does not fit stops the stream, as a fatal reply
        does, and what is left is recorded as never sent (see :class:`~.limits.SpendCap`)."""
        billed = price_of(self.id, option=self.options.price)
        if billed is None:
            raise ValueError(f"max_cost: there is no price for model {self.model!r}; pass "
                             "judge_options={'price': {'input_per_mtok': ..., 'output_per_mtok': ...}}")
        if not (billed.input_per_mtok or billed.output_per_mtok):
            raise ValueError(f"max_cost: judge {self.id!r} is not billed per token (a local server is free; a "
                             "hosted one: pass judge_options={'price': {...}})")
        self.spend_cap = SpendCap(limit_usd, billed, batch=batch,
                                  output_tokens=self.options.max_output_tokens or DEFAULT_OUTPUT_TOKENS)

    def settings(self) -> JudgeSettings:
        """How this judge is configured, for the run record (no key; URLs never carry credentials)."""
        opts = self.options.model_dump(exclude={"template"})
        opts.update(provider=self.provider, model=self.model, template=self.template.name,
                    template_version=self.template.version, detail=self.detail, key_source=self._key.source)
        return JudgeSettings(judge=self.id, prompt_version=self.prompt_version, is_vlm=True,
                             input_kind=self.options.input_kind, options=opts)

    # -- judging -----------------------------------------------------------------------------
    def prepare(self, item: JudgeInput) -> Request:
        """The request for ``item``: the image sent (encoded once), the prompt, a token estimate,
        and the cache key built on exactly those bytes. The heavy input itself is not kept."""
        image = self.view(item)
        data = encode_image(image, self.options.image_format)
        prompt = self.render_prompt(item)
        return Request(item.sample_id, content_key(self.id, self.prompt_version, prompt, data),
                       payload=(data, prompt, self.estimated_tokens(prompt, *image.size)))

    def judge_many(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Judgment]]:
        """Judge ``items`` concurrently (at most ``concurrency`` requests in flight); yield
        ``(index, Judgment)`` as each finishes — one per item, failures included, never raising
        for a single item. Closing the iterator early cancels what has not started."""
        if not items:
            return
        stop = threading.Event()
        done: queue.SimpleQueue = queue.SimpleQueue()
        seen: set[int] = set()
        # Requests are prepared (resize + PNG encode, GIL released) ahead of the senders.
        prep = ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix="vlmx-prep")

        def requests() -> Iterator[Request]:
            for k, fut in enumerate([prep.submit(self._prepare_safe, it) for it in items]):
                if stop.is_set():
                    return
                try:
                    request = fut.result()
                except CancelledError:  # the caller closed the iterator
                    return
                request.tag = k
                yield request

        def emit(request: Request, judgment: Judgment) -> None:
            seen.add(request.tag)
            done.put((request.tag, judgment))

        def run() -> None:
            try:
                stopped = self.judge_requests(requests(), emit, stop)
                reason = stopped.unsent_reason if stopped else "judging was stopped"
                for k in range(len(items)):  # one judgment per item: the rest were never sent
                    if k not in seen:
                        done.put((k, self._unsent(reason)))
            finally:
                done.put(None)

        feeder = threading.Thread(target=run, name="vlmx-judge-many", daemon=True)
        feeder.start()
        try:
            while (got := done.get()) is not None:
                yield got
        finally:
            stop.set()
            prep.shutdown(wait=False, cancel_futures=True)

    def _prepare_safe(self, item: JudgeInput) -> Request:
        try:
            return self.prepare(item)
        except Exception as exc:  # a bad input fails alone, with its reason
            return Request(item.sample_id, "", payload=exc)

    def judge_requests(self, requests: Iterable[Request], emit: Emit, stop: threading.Event) -> Stopped | None:
        """Keep ``concurrency`` requests in flight continuously over the whole stream (a slot
        freed by one reply is refilled at once, whatever the others do); ``emit`` each judgment
        as it arrives. The first fatal reply (401/403/404) stops everything before another
        request is sent: the rest are emitted as never sent, and the reason is returned. With
        ``hedge``, stragglers at the end of the stream are sent twice (see :mod:`.flight`)."""
        fatal: list[CallError] = []
        cap = self.spend_cap
        if cap is not None:  # each request's estimate set aside before it is sent, its cost charged once emitted
            emit = _settling(cap, emit)
        flight = Flight(lambda request, give_up, on_wire: self._judge_safe(request, give_up, fatal, on_wire),
                        emit, stop, self.options.concurrency, hedge=self.options.hedge, blocked=lambda: bool(fatal),
                        may_hedge=cap.reserve if cap is not None else lambda request: True)
        checked, over_cap = not self.options.preflight, None
        try:
            for request in requests:
                if not checked:  # once, when there is something to send
                    checked, unreachable = True, self.preflight()
                    if unreachable is not None:
                        emit(request, self._unsent(unreachable.reason))
                        return unreachable  # the caller records the rest as never sent
                if cap is not None and not cap.reserve(request):
                    over_cap = cap.stopped(request)
                    emit(request, self._unsent(over_cap.unsent))
                    break  # nothing more is pulled: the caller stops producing
                if not flight.send(request):
                    emit(request, self._unsent(self._stop_reason(fatal)))
                    if fatal:
                        break
        finally:
            flight.drain()  # what is on the wire is answered and emitted; an aborted run does not wait for it
        if flight.hedges:
            log.info("%s: %d straggler(s) sent twice at the end of the stream (hedge=True)", self.id, flight.hedges)
        if fatal:
            return Stopped(self._redact(fatal[0].reason()), self.fatal_hint(fatal[0]))
        return over_cap

    #: Where requests go when no URL is configured (the SDKs' defaults).
    default_url: str = ""

    def preflight(self) -> Stopped | None:
        """One TCP connection to the endpoint before anything is sent (no request, no key): an
        unreachable server stops the run at once, instead of every request retrying. Skipped
        behind a proxy (``HTTPS_PROXY``/``ALL_PROXY``), which decides where requests go."""
        if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
            return None
        url = self._configured_url() or next(
            (os.environ[v] for v in self.base_url_env if os.environ.get(v)), self.default_url)
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=min(10.0, self.options.timeout)).close()
        except OSError as err:
            why = err.strerror or type(err).__name__
            return Stopped(f"no connection to the endpoint {url} ({why}): nothing was sent",
                           "check the URL and that the server is running, then call explain() again "
                           "(or pass judge_options={'preflight': False})")
        return None

    def _stop_reason(self, fatal: list[CallError]) -> str:
        return f"an earlier request failed with {fatal[0].reason()}" if fatal else "judging was stopped"

    def _configured_url(self) -> str | None:
        """The server URL given in the spec or options (None: the SDK's environment or default)."""
        own = getattr(self, "_base_url", None)
        return own() if callable(own) else self.options.base_url

    def endpoint(self) -> str:
        """The URL requests go to (never a credential: URLs carrying one are refused)."""
        return self._configured_url() or "the provider's default URL"

    def fatal_hint(self, err: CallError) -> str:
        """What to fix after a fatal reply: the key, the model or the URL."""
        source = self._key.source
        where = "the api_key argument" if source == "argument" else f"the environment variable {source}"
        if err.status == 401:
            return f"the API key was rejected: check {where}"
        if err.status == 403:
            return f"the API key (from {where}) may not use model {self.model!r}: check the key's access"
        if err.status == 404:
            return f"model {self.model!r} or the URL {self.endpoint()!r} does not exist: check the model name and URL"
        return "check the key, the model name and the URL"

    def _judge_safe(self, request: Request, stop: Signal, fatal: list,
                    on_wire: Callable[[bool], bool] | None = None) -> Judgment:
        try:
            return self._judge_one(request, stop, fatal, on_wire)
        except Exception as exc:  # never raise for one item
            log.warning("%s: %s: unexpected %s", self.id, request.sample_id, type(exc).__name__)
            return self._failure(f"internal error: {type(exc).__name__}: {self._redact(exc)}")

    def _unsent(self, reason: str) -> Judgment:
        """A question never sent (stopped, or an earlier fatal reply): asked again on resume."""
        return Judgment.unsent(self.id, self.prompt_version, self._redact(reason)[:2000])

    def _rejected(self, err: CallError, latency: float) -> Judgment:
        """A fatal reply (bad key, model or URL): the question was refused, not answered, so the
        next run asks it again without ``retry_failed``."""
        return Judgment(judge_id=self.id, prompt_version=self.prompt_version, status="rejected",
                        error=self._redact(f"{err.reason()}; {self.fatal_hint(err)}")[:2000], latency_s=latency)

    def _failure(self, reason: str, raw: str = "", **extra: Any) -> Judgment:
        return Judgment.failure(self.id, self.prompt_version, self._redact(reason)[:2000],
                                raw=self._redact(raw)[:_RAW_LIMIT], **extra)

    def _judge_one(self, request: Request, stop: Signal, fatal: list,
                   on_wire: Callable[[bool], bool] | None = None) -> Judgment:
        if isinstance(request.payload, Exception):
            exc = request.payload
            return self._failure(f"bad input: {type(exc).__name__}: {exc}")
        image, prompt, estimate = request.payload
        index = request.sample_id
        attempt = 0
        while True:
            if fatal:
                return self._unsent(self._stop_reason(fatal))
            if stop.is_set():
                return self._unsent("judging was stopped")
            if not self.limiter.acquire(estimate, stop):
                return self._unsent("judging was stopped")
            attempt += 1
            start = time.monotonic()
            if on_wire is not None and not on_wire(True):
                return self._unsent("answered by its twin (hedge)")
            try:
                try:
                    reply = self._send(image, prompt)
                finally:
                    if on_wire is not None:
                        on_wire(False)
            except CallError as err:
                if err.fatal:
                    fatal.append(err)
                    return self._rejected(err, time.monotonic() - start)
                if err.retry_after is not None:
                    self.limiter.pause(err.retry_after)
                if err.retryable and attempt < self.policy.max_attempts and not stop.is_set():
                    delay = self.policy.delay(attempt, err.retry_after)
                    log.info("%s: %s: %s; retry %d/%d in %.2fs", self.id, index, self._redact(err.reason()),
                             attempt, self.policy.max_attempts - 1, delay)
                    if stop.wait(delay):
                        return self._unsent(f"judging was stopped after {err.reason()}")
                    continue
                return self._failure(f"{err.reason()} (after {attempt} attempt{'s' if attempt > 1 else ''})",
                                     latency_s=time.monotonic() - start)
            latency = time.monotonic() - start
            self.limiter.settle(estimate, reply.input_tokens + reply.output_tokens)
            return self._interpret(reply, latency)

    def _interpret(self, reply: Reply, latency: float) -> Judgment:
        usage = dict(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, latency_s=latency)
        raw = reply.text if reply.text else (reply.detail or reply.body)
        if reply.finish == "refusal":
            return self._failure(f"refused: {reply.detail or 'the model declined'}", raw, **usage)
        if reply.finish == "blocked":
            return self._failure(f"blocked: {reply.detail}", raw, **usage)
        if reply.finish == "length":
            return self._failure(f"truncated: the answer hit the output token limit ({reply.detail})", raw, **usage)
        if reply.finish == "empty" or (reply.parsed is None and not (reply.text or "").strip()):
            return self._failure(f"empty response: {reply.detail or 'no text'}", raw, **usage)
        if reply.parsed is not None:
            parsed, path = reply.parsed, "structured"
        else:
            try:
                parsed, path = parse_judge_text(reply.text)
            except ParseFailure as exc:
                return self._failure(str(exc), raw, **usage)
        return Judgment(judge_id=self.id, prompt_version=self.prompt_version, status="ok", score=float(parsed.score),
                        description=self._redact(parsed.description),  # a server may echo the key back
                        justification=self._redact(parsed.justification),
                        raw=self._redact(reply.text or parsed.model_dump_json())[:_RAW_LIMIT],
                        parse_path=path, **usage)

    def close(self) -> None:
        self._log_filter.remove()
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        o = self.options
        return (f"{type(self).__name__}(id={self.id!r}, prompt_version={self.prompt_version!r}, "
                f"concurrency={o.concurrency}, key={self._key!r})")
