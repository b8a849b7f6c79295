"""VLM judges over real HTTP: the real ``openai`` and ``google-genai`` clients talk to a loopback
server (tests/loopback_server.py) that records requests and injects faults."""
from __future__ import annotations

import io
import json
import logging
import threading
import time

import numpy as np
import pytest
from loopback_server import FAULTS, LoopbackServer, loopback_server, loopback_subprocess  # noqa: F401
from PIL import Image

from vlmxplain.core.records import Judgment
from vlmxplain.masks import JudgeInput, png_bytes
from vlmxplain.core.specs import JudgeSpec
from vlmxplain.judges import make_judge
from vlmxplain.judges.vlm import (GeminiJudge, MissingKeyError, ModelPrice, OpenAICompatibleJudge, OpenAIJudge,
                                  PromptTemplate, actual_cost, estimate_cost, parse_judge_text)
from vlmxplain.judges.vlm.limits import RateLimiter, RetryPolicy, parse_retry_after
from vlmxplain.judges.vlm.parsing import ParseFailure

SECRET = "sk-test-SECRET-7f3a9c2e51d04b8c"
GSECRET = "AIza-test-SECRET-0c9d8e7f6a5b"
PROVIDERS = ("openai", "gemini", "openai-compatible")
FAST = dict(backoff_base=0.01, backoff_max=0.05)


def make_item(i: int, size: tuple[int, int] = (80, 60)) -> JudgeInput:
    """A synthetic sample: coloured background, a disc 'object', a CAM blob on it, sigmoid mask."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(i)
    image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    cx, cy = w * (0.3 + 0.05 * (i % 5)), h * 0.5
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(w, h) * 0.3) ** 2
    image[disc] = (200, 40 + 10 * (i % 10), 40)
    sal = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (min(w, h) * 0.25) ** 2)).astype(np.float32)
    sal = (sal - sal.min()) / (sal.max() - sal.min())
    mask = 1.0 / (1.0 + np.exp(25 * (0.6 - sal)))
    masked = (image * mask[..., None]).astype(np.uint8)
    heat = np.zeros_like(image)
    heat[..., 0] = (255 * sal).astype(np.uint8)
    heat[..., 2] = (255 * (1 - sal)).astype(np.uint8)
    overlay = (0.5 * image + 0.5 * heat).astype(np.uint8)
    return JudgeInput(sample_id=f"s{i}", image=Image.fromarray(image), masked=Image.fromarray(masked),
                      overlay=Image.fromarray(overlay), saliency=sal, mask=mask.astype(np.float32),
                      predicted_class=i, predicted_name=f"cls-{i}", confidence=0.9, label_name=f"cls-{i}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
                 "GOOGLE_GENAI_API_VERSION", "OPENAI_COMPATIBLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", GSECRET)


def build(provider: str, server: LoopbackServer, **options):
    if provider == "openai":
        return OpenAIJudge(JudgeSpec("openai", "gpt-4o-mini"), base_url=server.openai_base_url, **options)
    if provider == "gemini":
        return GeminiJudge(JudgeSpec("gemini", "gemini-2.5-flash"), base_url=server.url, **options)
    return OpenAICompatibleJudge(JudgeSpec("openai-compatible", "qwen2.5-vl", server.openai_base_url), **options)


def run_all(judge, items) -> dict[int, Judgment]:
    out: dict[int, Judgment] = {}
    for index, judgment in judge.judge_many(items):
        assert index not in out, f"item {index} yielded twice"
        out[index] = judgment
    assert sorted(out) == list(range(len(items))), "every item must yield exactly one judgment"
    return out


# --- what the server receives -------------------------------------------------------------------

def test_openai_request_carries_image_schema_temperature_model(loopback_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", loopback_server.openai_base_url)  # proxy via env, no code change
    judge = make_judge("openai:gpt-4o-mini", temperature=0.0)
    item = make_item(1)
    j = judge.judge(item)
    assert j.ok and j.score == 3.0 and j.parse_path == "structured" and j.judge_id == "openai:gpt-4o-mini"
    (req,) = loopback_server.requests
    assert req.path == "/v1/chat/completions" and req.body["model"] == "gpt-4o-mini"
    assert req.body["temperature"] == 0.0
    rf = req.body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert set(rf["json_schema"]["schema"]["properties"]) == {"description", "justification", "score"}
    assert req.images == [judge.view_bytes(item)]  # exactly the bytes the cache key is built on
    sent = Image.open(io.BytesIO(req.images[0]))
    assert max(sent.size) == 512 and sent.size == (512, 384)
    expected = item.masked.convert("RGB").resize((512, 384), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(sent), np.asarray(expected))  # the masked image, not the photo
    assert "cls-1" in req.text and "0 - scattered or irrelevant" in req.text
    assert req.api_key == SECRET
    assert (j.input_tokens, j.output_tokens) == req.usage and j.latency_s > 0


def test_gemini_request_carries_image_schema_temperature_model(loopback_server, monkeypatch):
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback_server.url)
    judge = make_judge("gemini:gemini-2.5-flash", temperature=0.2, detail="low")
    item = make_item(2)
    j = judge.judge(item)
    assert j.ok and j.parse_path == "structured", j.error
    (req,) = loopback_server.requests
    assert req.protocol == "gemini" and req.model == "gemini-2.5-flash" and req.path.endswith(":generateContent")
    gen = req.body["generationConfig"]
    assert gen["temperature"] == 0.2 and gen["responseMimeType"] == "application/json"
    assert gen["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    assert set(gen["responseJsonSchema"]["properties"]) == {"description", "justification", "score"}
    assert req.images == [judge.view_bytes(item)]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(req.images[0]))),
                          np.asarray(item.masked.resize((512, 384), Image.Resampling.LANCZOS)))
    assert req.api_key == GSECRET and "cls-2" in req.text
    assert (j.input_tokens, j.output_tokens) == req.usage


def test_openai_compatible_sends_json_schema_and_never_the_openai_key(loopback_server):
    judge = make_judge(f"openai-compatible:qwen2.5-vl@{loopback_server.openai_base_url}", input_kind="both")
    item = make_item(3)
    j = judge.judge(item)
    assert j.ok and j.parse_path == "structured"
    (req,) = loopback_server.requests
    assert req.body["model"] == "qwen2.5-vl" and req.body["temperature"] == 0.0
    assert req.body["response_format"]["json_schema"]["schema"]["additionalProperties"] is False
    assert req.api_key == "not-needed"  # placeholder; OPENAI_API_KEY is not shipped to other servers
    sent = Image.open(io.BytesIO(req.images[0]))
    assert sent.size == (512, 192)  # masked | overlay side by side, longest side 512
    assert j.judge_id == f"openai-compatible:qwen2.5-vl@{loopback_server.openai_base_url}"


# --- faults: nothing lost, every failure has a reason ---------------------------------------------

EXPECT = {  # fault -> (status, reason fragment or parse path)
    "500": ("failed", "server error (HTTP 500)"), "503": ("ok", "structured"), "429": ("ok", "structured"),
    "slow": ("failed", "timeout"), "truncated": ("failed", "truncated"), "truncated_stop": ("failed", "truncated?"),
    "schema": ("failed", "missing fields: justification"), "out_of_range": ("failed", "score out of range"),
    "fenced": ("ok", "tolerant"), "chatty": ("ok", "tolerant"), "empty": ("failed", "empty response"),
    "refusal": ("failed", None), "broken_body": ("failed", "invalid response"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", sorted(EXPECT))
def test_every_item_ends_judged_or_failed_with_reason(loopback_server, provider, fault):
    times = 1 if fault in ("503", "429") else None  # transient: recovered by a retry
    for target in ("cls-1", "cls-4"):
        loopback_server.add_fault(fault, match=target, times=times, retry_after=0.05, delay=0.6)
    judge = build(provider, loopback_server, timeout=0.25, max_retries=1, concurrency=3, **FAST)
    results = run_all(judge, [make_item(i) for i in range(6)])
    status, detail = EXPECT[fault]
    for i, j in results.items():
        assert j.judge_id == judge.id and j.prompt_version == judge.prompt_version
        if i not in (1, 4):
            assert j.ok and j.score == 3.0, (i, j.error)
        elif status == "ok":
            assert j.ok and j.parse_path == detail and j.score == 3.0, j.error
        else:
            assert j.status == "failed" and j.score is None and j.error
            expected = detail or ("blocked: finish_reason=SAFETY" if provider == "gemini" else "refused: I'm sorry")
            assert expected in j.error, j.error
    if fault in ("truncated", "truncated_stop", "schema", "out_of_range"):
        assert results[1].raw, "the raw text of a bad answer is kept"
    if fault in ("500", "slow", "broken_body"):  # retryable: sent 1 + max_retries times, then failed
        assert sum(r.fault == fault for r in loopback_server.requests) == 4


def test_unrecoverable_auth_error_stops_sending_and_never_echoes_key(loopback_server, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server = loopback_server
    server.required_key = "the-right-key"  # answers 401 "Incorrect API key provided: <key sent>"
    judge = build("openai", server, concurrency=2, **FAST)
    results = run_all(judge, [make_item(i) for i in range(10)])
    assert {j.status for j in results.values()} == {"rejected", "not_sent"}
    assert len(server.requests) <= 2, "after a 401, no further requests are sent"
    errors = [j.error for j in results.values()]
    assert any("authentication failed (HTTP 401)" in e for e in errors)
    assert all(j.error.startswith("an earlier request failed with authentication failed")
               for j in results.values() if j.status == "not_sent")
    assert server.requests[0].api_key == SECRET  # the server echoed it back...
    blob = json.dumps([j.model_dump() for j in results.values()]) + repr(judge) + judge.settings().model_dump_json()
    out, err = capfd.readouterr()
    for text in (blob, caplog.text, out, err):
        assert SECRET not in text  # ...but it is redacted everywhere
    assert "***" in blob


@pytest.mark.parametrize("provider", PROVIDERS)
def test_key_never_appears_in_judgments_reprs_logs_or_errors(loopback_server, provider, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    for fault in ("429", "500", "schema", "refusal", "slow"):
        loopback_server.add_fault(fault, match=f"cls-{FAULTS.index(fault)}", retry_after=0.01, delay=0.5)
    key = SECRET if provider != "gemini" else GSECRET
    judge = build(provider, loopback_server, api_key=key, timeout=0.2, max_retries=1, **FAST)
    results = run_all(judge, [make_item(i) for i in range(len(FAULTS))])
    assert any(not j.ok for j in results.values())
    assert all(r.api_key == key for r in loopback_server.requests)
    with pytest.raises(ValueError) as bad:
        build(provider, loopback_server, api_key=key, concurrency=0)
    blob = "".join(j.model_dump_json() for j in results.values())
    blob += repr(judge) + str(judge) + judge.settings().model_dump_json() + str(bad.value) + f"{judge._key}"
    out, err = capfd.readouterr()
    assert "retry 1/1" in caplog.text  # the logs were captured (and looked at)
    for text in (blob, caplog.text, out, err):
        assert key not in text and SECRET not in text and GSECRET not in text


@pytest.mark.parametrize("provider,env", [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")])
def test_missing_key_is_a_clear_error_before_any_request(loopback_server, monkeypatch, provider, env):
    monkeypatch.delenv(env)
    with pytest.raises(MissingKeyError, match=env) as exc:
        build(provider, loopback_server)
    assert "No request was sent" in str(exc.value)
    assert loopback_server.requests == []
    monkeypatch.setenv("VLLM_KEY_FOR_TEST", "")
    with pytest.raises(MissingKeyError, match="VLLM_KEY_FOR_TEST"):
        build("openai-compatible", loopback_server, api_key_env="VLLM_KEY_FOR_TEST")


# --- retries, rate limits, concurrency ------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms"])
def test_retry_after_is_honoured(loopback_server, provider, header):
    delay = 0.3
    loopback_server.add_fault("429", times=1, retry_after=delay, retry_after_header=header)
    judge = build(provider, loopback_server, backoff_base=0.0, backoff_max=0.0)
    j = judge.judge(make_item(0))
    assert j.ok, j.error
    first, second = loopback_server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.received >= first.responded + delay  # never retried sooner than the server asked


def test_retries_are_bounded_and_sdk_retries_are_off(loopback_server):
    loopback_server.add_fault("503")
    judge = build("gemini", loopback_server, max_retries=0)
    j = judge.judge(make_item(0))
    assert not j.ok and "server error (HTTP 503)" in j.error and "after 1 attempt" in j.error
    assert len(loopback_server.requests) == 1  # neither google-genai nor openai retried on their own
    loopback_server.reset()
    loopback_server.add_fault("429")
    j = build("openai", loopback_server, max_retries=2, **FAST).judge(make_item(0))
    assert "rate limited (HTTP 429)" in j.error and "after 3 attempts" in j.error
    assert len(loopback_server.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_concurrency_is_bounded(provider):
    with LoopbackServer(latency=0.05) as server:
        judge = build(provider, server, concurrency=3)
        results = run_all(judge, [make_item(i) for i in range(15)])
        assert all(j.ok for j in results.values())
        assert len(server.requests) == 15
        assert 1 < server.max_in_flight <= 3


def test_results_are_yielded_as_they_complete(loopback_server):
    loopback_server.add_fault("slow", match="cls-0", delay=0.4)
    judge = build("openai", loopback_server, concurrency=4, timeout=5)
    order = [i for i, _ in judge.judge_many([make_item(i) for i in range(4)])]
    assert order[-1] == 0 and sorted(order) == [0, 1, 2, 3]


def test_closing_the_iterator_early_stops_sending(loopback_server):
    loopback_server.latency = 0.1
    judge = build("openai", loopback_server, concurrency=2)
    gen = judge.judge_many([make_item(i) for i in range(30)])
    next(gen)
    gen.close()
    time.sleep(0.3)  # let the requests already on the wire finish
    assert len(loopback_server.requests) <= 5  # at most the in-flight ones, not the remaining 29


def test_rpm_limit_spaces_requests(loopback_server):
    judge = build("openai", loopback_server, rpm=120, concurrency=4)  # 2 per second, burst 2
    run_all(judge, [make_item(i) for i in range(4)])
    arrivals = sorted(r.received for r in loopback_server.requests)
    # the 4th request waited for two refills of 0.5 s; the first request's arrival also carries its
    # connection set-up, so allow for that on a loaded machine
    assert arrivals[3] - arrivals[0] >= 0.7


def test_rate_limiter_and_retry_policy_units():
    limiter = RateLimiter(rpm=60)
    stopped = threading.Event()
    stopped.set()
    assert limiter.acquire(stop=stopped) is True  # the bucket starts full
    assert limiter.acquire(stop=stopped) is False  # the next one would have to wait
    tokens = RateLimiter(tpm=600)  # 10 tokens/s, bucket of 10
    assert tokens.acquire(5000, stop=stopped) is True  # larger than the bucket: runs into debt once full
    assert tokens.acquire(1, stop=stopped) is False
    paused = RateLimiter()
    assert paused.acquire(stop=stopped) is True
    paused.pause(30)
    assert paused.acquire(stop=stopped) is False
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(rpm=0)
    import random
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0)
    rng = random.Random(0)
    for attempt, cap in ((1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)):
        assert cap / 2 <= policy.delay(attempt, rng=rng) <= cap
    assert policy.delay(1, retry_after=10.0, rng=rng) >= 10.0
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert 55 <= parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412420.0) <= 65
    assert parse_retry_after({"Retry-After": "soon"}) is None and parse_retry_after({}) is None


# --- prompt versions, cache keys, views ---------------------------------------------------------

def test_prompt_version_and_cache_key_follow_what_is_asked(loopback_server):
    base = build("openai", loopback_server)
    item = make_item(5)
    variants = [build("openai", loopback_server, **o) for o in (
        dict(input_kind="overlay"), dict(image_size=256), dict(detail="high"), dict(temperature=0.7),
        dict(template="Is the attention on {predicted_name}? {input_description}"))]
    versions = {base.prompt_version} | {v.prompt_version for v in variants}
    assert len(versions) == 6
    assert len({base.cache_key(item)} | {v.cache_key(item) for v in variants}) == 6
    other_class = make_item(5)
    other_class.predicted_name = "cls-99"  # same image, another question
    assert base.cache_key(other_class) != base.cache_key(item)
    assert base.cache_key(make_item(5)) == base.cache_key(item)  # deterministic
    assert build("openai", loopback_server, concurrency=1, timeout=9).prompt_version == base.prompt_version
    assert base.prompt_version.startswith("paper-rubric-v1-")
    overlay = Image.open(io.BytesIO(variants[0].view_bytes(item)))
    assert np.array_equal(np.asarray(overlay), np.asarray(item.overlay.resize((512, 384), Image.Resampling.LANCZOS)))
    small = Image.open(io.BytesIO(variants[1].view_bytes(item)))
    assert small.size == (256, 192)
    assert base.view_bytes(item) == png_bytes(base.view(item))


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_jpeg_images_are_sent_with_their_media_type_and_keyed_apart_from_png(loopback_server, provider):
    png, jpeg = build(provider, loopback_server), build(provider, loopback_server, image_format="jpeg")
    item = make_item(6)
    assert jpeg.judge(item).ok
    (req,) = loopback_server.requests
    if provider == "openai":
        url = req.body["messages"][1]["content"][1]["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
    else:
        parts = req.body["contents"][0]["parts"]
        inline = [p.get("inlineData") or p.get("inline_data") for p in parts if "inlineData" in p or "inline_data" in p]
        assert [i.get("mimeType", i.get("mime_type")) for i in inline] == ["image/jpeg"], inline[0].keys()
    assert req.images == [jpeg.view_bytes(item)]
    sent = Image.open(io.BytesIO(req.images[0]))
    assert sent.format == "JPEG" and sent.size == (512, 384)
    lossless = np.asarray(Image.open(io.BytesIO(png.view_bytes(item))), dtype=float)
    assert np.abs(np.asarray(sent, dtype=float) - lossless).mean() < 4  # the same picture, lossy
    assert len(req.images[0]) < len(png.view_bytes(item)) / 2
    assert jpeg.cache_key(item) != png.cache_key(item)  # another image: never answered from png's cache
    assert jpeg.settings().options["image_format"] == "jpeg"
    with pytest.raises(ValueError, match="image_format"):
        build(provider, loopback_server, image_format="gif")


def test_options_are_validated_with_clear_errors(loopback_server):
    with pytest.raises(ValueError, match="concurrency"):
        build("openai", loopback_server, concurrency=0)
    with pytest.raises(ValueError, match="no_such_option"):
        build("openai", loopback_server, no_such_option=1)
    with pytest.raises(ValueError, match="detail='medium'"):
        build("openai", loopback_server, detail="medium")
    with pytest.raises(ValueError, match="'predicted_class'"):
        PromptTemplate(user="What about {predicted_class}?")
    with pytest.raises(ValueError, match="image_size"):
        build("gemini", loopback_server, image_size=10)


# --- parsing ------------------------------------------------------------------------------------

def test_tolerant_parser():
    good = {"description": "a cat's head", "justification": "covers the face", "score": 4}
    text = json.dumps(good)
    assert parse_judge_text(text) == (parse_judge_text(text)[0], "structured")
    r, path = parse_judge_text(f"Here you go:\n```json\n{text}\n```\nAnything else?")
    assert path == "tolerant" and r.score == 4 and r.description == "a cat's head"
    r, path = parse_judge_text(f"My verdict {{not json}} then {text} done")
    assert path == "tolerant" and r.justification == "covers the face"
    r, path = parse_judge_text(json.dumps({**good, "score": "5"}))
    assert r.score == 5
    cases = {
        json.dumps({**good, "score": 6}): "score out of range",
        json.dumps({**good, "score": 2.5}): "score",
        json.dumps({"description": "x", "score": 1}): "missing fields: justification",
        text[:30]: "truncated",
        "I cannot evaluate this image.": "no JSON object",
        "": "empty response",
        "[1, 2]": "expected a JSON object",
    }
    for bad, reason in cases.items():
        with pytest.raises(ParseFailure, match=reason):
            parse_judge_text(bad)


# --- cost ------------------------------------------------------------------------------------------

def test_estimate_cost_dry_run_needs_no_key_and_sends_nothing(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    est = estimate_cost(1000, judge="openai:gpt-4o-mini")
    assert est.requests == 1000 and est.image_tokens_per_request == 2833  # low detail, gpt-4o-mini
    assert est.input_tokens == 1000 * (2833 + est.text_tokens_per_request)
    assert est.usd == pytest.approx((est.input_tokens * 0.15 + est.output_tokens * 0.60) / 1e6)
    assert estimate_cost(1000, "openai:gpt-4o-mini", batch=True).usd == pytest.approx(est.usd / 2)
    assert estimate_cost(list(range(10)), "openai:gpt-4o", detail="high").image_tokens_per_request == 85 + 170
    assert estimate_cost(10, "openai:gpt-4.1-mini").image_tokens_per_request == int(np.ceil(256 * 1.62))
    assert estimate_cost(10, "gemini:gemini-2.5-flash").image_tokens_per_request == 258
    assert estimate_cost(10, "gemini:gemini-2.5-flash", detail="low").image_tokens_per_request == 64
    assert estimate_cost(10, "openai:gpt-4o-mini-2024-07-18").usd == estimate_cost(10, "openai:gpt-4o-mini").usd
    cheap = estimate_cost(1000, "openai:gpt-4o-mini", prices={"gpt-4o-mini": {"input_per_mtok": 0.0,
                          "output_per_mtok": 1.0, "image_base": 2833, "image_tile": 5667}})
    assert cheap.usd == pytest.approx(cheap.output_tokens / 1e6)
    unknown = estimate_cost(5, "openai:some-future-model")
    assert unknown.usd is None and "no price" in unknown.assumptions[0]
    assert estimate_cost(5, "openai-compatible:llava@http://localhost:8000/v1").usd == 0.0
    with pytest.raises(TypeError, match="data_or_n"):
        estimate_cost("ten", "openai:gpt-4o-mini")


def test_estimate_from_a_built_judge_and_actual_cost(loopback_server):
    judge = build("openai", loopback_server, input_kind="both", image_size=256)
    est = estimate_cost(3, judge)
    assert est.judge == "openai:gpt-4o-mini" and "256x128" in est.assumptions[1]
    results = run_all(judge, [make_item(i) for i in range(3)])
    cost = actual_cost(results.values(), "gpt-4o-mini")
    assert cost.input_tokens == sum(r.usage[0] for r in loopback_server.requests)
    assert cost.output_tokens == sum(r.usage[1] for r in loopback_server.requests)
    assert cost.usd == pytest.approx((cost.input_tokens * 0.15 + cost.output_tokens * 0.6) / 1e6)
    assert ModelPrice(input_per_mtok=1, output_per_mtok=1).image == "tile"


def test_server_in_its_own_process_serves_and_reports_stats():
    with loopback_subprocess(latency=0.0) as (url, stats):
        judge = GeminiJudge(JudgeSpec("gemini", "gemini-2.5-flash"), base_url=url, concurrency=2)
        results = run_all(judge, [make_item(i) for i in range(3)])
        assert all(j.ok for j in results.values())
        assert stats()["requests"] == 3 and 1 <= stats()["max_in_flight"] <= 2
