"""Fault injection through ``explain``: for every way a real endpoint (or a gateway in front of
it) misbehaves, every sample ends judged or failed with a reason, nothing crashes, hostile text
is stored plain and shown escaped, and the key is never written (issue 12).

The real ``openai`` and ``google-genai`` clients talk to tests/loopback_server.py over HTTP."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from loopback_server import HOSTILE_FORMULA, HOSTILE_HTML

import vlmxplain as vx
from vlmxplain.core.text import TEXT_LIMIT
from vlmxplain.viz.html import raw_response_html, sample_card_html

SECRET = "sk-test-FAULTS-1234567890"
N = 3

#: fault -> (status every sample ends with, a fragment of the reason or of the stored description)
EXPECTED = {
    "drop": ("failed", "connection"),
    "reset": ("failed", "connection"),
    "hang": ("failed", "timeout"),
    "html_error": ("failed", "HTTP 502"),
    "non_json": ("failed", ""),
    "broken_body": ("failed", ""),
    "null_content": ("failed", "empty response"),
    "empty": ("failed", "empty response"),
    "truncated": ("failed", "truncated"),
    "truncated_stop": ("failed", ""),
    "schema": ("failed", "missing fields: justification"),
    "wrong_schema": ("failed", ""),
    "non_numeric": ("failed", "score"),
    "negative": ("failed", "score"),
    "out_of_range": ("failed", "score"),
    "refusal": ("failed", ""),
    "500": ("failed", "HTTP 500"),
    "huge": ("ok", "a dog"),
    "html_text": ("ok", "<script>"),
    "control": ("ok", "okRED"),
    "formula": ("ok", "=HYPERLINK"),
    "echo_key": ("ok", "your key is ***"),
}


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    for name in ("OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))


def _judge(provider: str, server) -> dict:
    options = dict(timeout=1.0, max_retries=0, concurrency=N, backoff_base=0.01, backoff_max=0.02)
    if provider == "openai":
        return dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, **options})
    return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url, **options})


@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize("fault", list(EXPECTED))
def test_every_sample_ends_judged_or_failed_with_a_reason(tiny_clf, loopback_server, tmp_path, capfd, provider,
                                                          fault):
    loopback_server.add_fault(fault, delay=3.0)
    run = vx.explain(tiny_clf, vx.datasets.shapes(N, seed=4), run_dir=tmp_path / "run", progress=False,
                     **_judge(provider, loopback_server))
    t = run.table
    status, fragment = EXPECTED[fault]
    if provider == "gemini" and fault == "refusal":
        status = "failed"
    assert len(t) == N and set(t["judge_status"]) == {status}, (fault, t[["judge_status", "error"]].to_dict())
    if status == "failed":
        assert t["error"].str.len().gt(5).all() and t["score"].isna().all()
        assert t["error"].str.contains(fragment, regex=False).all(), t["error"].tolist()
    else:
        assert t["score"].eq(3).all() and t["description"].str.contains(fragment, regex=False).all()
    texts = pd.concat([t["description"], t["justification"], t["error"], run.judgments()["raw"]]).dropna()
    for text in texts:  # stored plain: no control, bidi or zero-width characters, no ANSI escapes
        assert not any(c in text for c in "\x00\x07\x1b\u202e\u202c\u200b"), repr(text[:80])
        assert len(text) <= 100_100
    for _, row in t.iterrows():  # shown escaped
        html = sample_card_html(row.to_dict()) + raw_response_html(row["description"])
        assert "<script" not in html and "<img" not in html
    if fault == "huge":
        assert t["truncated"].all() and t["description"].str.len().max() < TEXT_LIMIT + 100
    if fault == "html_text":
        assert HOSTILE_HTML in t["description"].iloc[0] and "&lt;script&gt;" in sample_card_html(t.iloc[0].to_dict())
    if fault == "control":
        assert t["description"].iloc[0] == "okRED gnp.exe nul bell zw"
    out, err = capfd.readouterr()
    for where in [out, err, repr(run), *texts] + [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*")
                                                  if p.is_file()]:
        assert SECRET not in where


def test_results_csv_cannot_run_formulas(tiny_clf, loopback_server, tmp_path):
    loopback_server.add_fault("formula")
    run = vx.explain(tiny_clf, vx.datasets.shapes(N, seed=4), run_dir=tmp_path / "run", progress=False,
                     verbose=False, **_judge("openai", loopback_server))
    assert run.table["description"].iloc[0] == HOSTILE_FORMULA  # stored as the judge wrote it
    path = run.to_csv(tmp_path / "results.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    def number(v: str) -> bool:
        try:
            return bool(float(v) == float(v))
        except ValueError:
            return False

    cells = [v for r in rows for v in r.values() if not number(v)]
    assert len(rows) == N and cells and not any(v.startswith(("=", "+", "-", "@")) for v in cells)
    assert all(r["description"] == "'" + HOSTILE_FORMULA and r["justification"].startswith("'-=") for r in rows)
    assert float(rows[0]["score"]) == 3.0  # numbers stay numbers


def test_text_from_older_stores_is_shown_plain_and_escaped():
    from vlmxplain.core.text import cap_text, clean_text, csv_cell
    from vlmxplain.viz.html import esc

    hostile = "a\u202eb\x1b[31m<b>c</b>\x00\u200bd\r\ne"
    assert clean_text(hostile) == "ab<b>c</b>d\ne" and esc(hostile) == "ab&lt;b&gt;c&lt;/b&gt;d\ne"
    assert cap_text("x" * 30, 10) == ("x" * 10 + " […cut: 20 more characters]", True)
    assert [csv_cell(v) for v in ("=1+1", "+1", "-x", "@SUM(A1)", "\tx", "plain", 3)] == [
        "'=1+1", "'+1", "'-x", "'@SUM(A1)", "'\tx", "plain", 3]
