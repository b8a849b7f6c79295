"""Hedged requests (``hedge=True``): once nothing is left to send, a straggler is sent a second time
and the first answer wins. The real ``openai`` / ``google-genai`` clients talk to the loopback server;
a straggler is a request the server holds (``hang``/``slow`` faults on one prompt)."""
from __future__ import annotations

import threading

import pytest
from loopback_server import LoopbackServer, loopback_server  # noqa: F401
from test_vlm_judges import FAST, build, clean_env, make_item  # noqa: F401

import vlmxplain as vx
from vlmxplain.core.records import Judgment
from vlmxplain.judges import make_judge
from vlmxplain.judges.base import Request
from vlmxplain.judges.vlm.flight import HEDGE_MIN_REPLIES

STRAGGLER = 'predicted: "cls-0"'  # the prompt of item 0 only (not cls-10, cls-11)


def stream(judge, items) -> dict[str, tuple[Request, Judgment]]:
    """``judge_requests`` over ``items``: each sample's request (as emitted) and judgment."""
    got: dict[str, tuple[Request, Judgment]] = {}
    lock = threading.Lock()

    def emit(request: Request, judgment: Judgment) -> None:
        with lock:
            assert request.sample_id not in got, f"{request.sample_id} emitted twice"
            got[request.sample_id] = (request, judgment)

    assert judge.judge_requests((judge.prepare(it) for it in items), emit, threading.Event()) is None
    assert sorted(got) == sorted(it.sample_id for it in items)
    return got


def losers_exit(server: LoopbackServer) -> None:
    """The hung request's attempt gives up once its connection drops (no retry: its twin answered)."""
    server.end_hangs()
    for thread in [t for t in threading.enumerate() if t.name == "vlmx-judge"]:
        thread.join(timeout=15)
        assert not thread.is_alive()


def asked(server: LoopbackServer, text: str) -> list:
    return [r for r in server.requests if text in r.text]


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_straggler_is_answered_by_its_twin_and_both_are_billed(loopback_server, provider):
    server = loopback_server
    server.add_fault("hang", match=STRAGGLER, times=1, delay=60)  # its first request: no reply
    judge = build(provider, server, concurrency=4, hedge=True, timeout=60, **FAST)
    items = [make_item(i) for i in range(12)]
    got = stream(judge, items)  # returns without waiting for the hung request
    request, judgment = got["s0"]
    first, twin = asked(server, STRAGGLER)
    assert request.hedged and judgment.ok and twin.status == 200 and not first.responded  # still hung
    assert judgment.input_tokens == 2 * twin.usage[0] and judgment.output_tokens == 2 * twin.usage[1]
    assert judgment.requests == 2
    assert all(j.ok for _, j in got.values())
    twins = sum(r.hedged for r, _ in got.values())  # others may be hedged too: on loopback every reply is quick
    losers_exit(server)
    assert len(server.requests) == 12 + twins  # a twin per hedged request; the hung one was not retried
    assert server.max_in_flight <= 4  # the twins took free slots


def test_without_hedge_the_straggler_is_waited_for(loopback_server):
    # the control: the same stream without the option sends each request once
    loopback_server.add_fault("slow", match=STRAGGLER, times=1, delay=0.5)
    judge = build("openai", loopback_server, concurrency=4, **FAST)
    got = stream(judge, [make_item(i) for i in range(12)])
    request, judgment = got["s0"]
    assert judgment.ok and not request.hedged and len(asked(loopback_server, STRAGGLER)) == 1
    assert judgment.input_tokens == loopback_server.requests[0].usage[0] and judgment.requests == 1
    assert len(loopback_server.requests) == 12


def test_when_the_twin_fails_the_original_answer_is_kept(loopback_server):
    server = loopback_server
    server.add_fault("slow", match=STRAGGLER, times=1, delay=1.0)
    server.add_fault("500", match=STRAGGLER, times=1)  # the twin
    judge = build("openai", server, concurrency=4, hedge=True, max_retries=0, **FAST)
    request, judgment = stream(judge, [make_item(i) for i in range(12)])["s0"]
    first, twin = asked(server, STRAGGLER)
    assert request.hedged and twin.status == 500 and first.status == 200
    assert judgment.ok and judgment.input_tokens == first.usage[0]  # the failed twin billed nothing
    assert judgment.requests == 1


def test_too_few_replies_to_know_what_is_slow_sends_no_twin(loopback_server):
    loopback_server.add_fault("slow", match=STRAGGLER, times=1, delay=0.5)
    judge = build("openai", loopback_server, concurrency=4, hedge=True, **FAST)
    got = stream(judge, [make_item(i) for i in range(HEDGE_MIN_REPLIES - 2)])
    assert not got["s0"][0].hedged and len(loopback_server.requests) == HEDGE_MIN_REPLIES - 2


def test_hedge_is_refused_where_it_would_bias_or_cannot_apply(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-hedge")
    for temperature in (0.7, None):  # sampled answers: the faster of two favours the shorter
        with pytest.raises(ValueError, match="hedge=True needs temperature=0"):
            make_judge("openai:gpt-4o-mini", hedge=True, temperature=temperature)
    with pytest.raises(ValueError, match="hedge applies to synchronous judges"):
        make_judge("openai-batch:gpt-4o-mini", hedge=True)


def test_explain_counts_the_twins_and_records_what_was_billed(tiny_clf, loopback_server, tmp_path):
    server = loopback_server
    server.add_fault("hang", times=1, delay=60)  # the first request to arrive
    run = vx.explain(tiny_clf, vx.datasets.shapes(16, seed=3), judge="openai:gpt-4o-mini", run_dir=tmp_path / "run",
                     cache=False, progress=False, verbose=False,
                     judge_options={"base_url": server.openai_base_url, "concurrency": 4, "hedge": True,
                                    "timeout": 60})
    s = run.last_summary
    assert s.judged == 16 and s.hedged >= 1 and f"{s.hedged} stragglers sent twice" in str(s)
    hung = server.requests[0]
    (twin,) = [r for r in server.requests[1:] if (r.text, r.images) == (hung.text, hung.images)]
    assert not hung.responded and twin.status == 200
    losers_exit(server)
    assert len(server.requests) == 16 + s.hedged  # one twin per hedged straggler, nothing retried
    billed = sum(r.usage[0] for r in server.requests) + twin.usage[0]  # the hung one's estimated as its twin's
    assert run.usage()["input_tokens"] == s.input_tokens == billed
    # every twin that went on the wire is a billed request (a hung one's reply is still generated)
    assert run.usage()["requests"] == 16 + s.hedged == run.repeats()["requests"].sum()
    assert run.cost().requests == 16 + s.hedged
