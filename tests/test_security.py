"""Key leak paths of the adversarial audit (issue 12): a key in a URL, under a wrong option name,
echoed back by a server, or passed as a notebook parameter is refused or redacted, never written;
bad parameters are refused before any work."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

import vlmxplain as vx
from vlmxplain.cli import main as cli_main
from vlmxplain.judges import make_judge
from vlmxplain.params import refuse_secret_parameters

KEY = "sk-test-LEAK-0123456789abcdef"


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    for name in ("OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY", "OPENAI_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ENV-abcdef123456")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-ENV-abcdef123456")
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache.sqlite"))


def nothing_under(root: Path, *texts: str) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert KEY not in text


# ----------------------------------------------------------------------------- credentials in URLs (4)
BAD_URLS = [f"http://127.0.0.1:9/v1?key={KEY}", f"http://127.0.0.1:9/v1#{KEY}", f"http://u:{KEY}@127.0.0.1:9/v1",
            f"http://{KEY}@127.0.0.1:9/v1"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_credentials_in_any_url_are_refused_before_any_work(tiny_clf, tmp_path, monkeypatch, url):
    attempts = [
        dict(judge=f"openai-compatible:m@{url}"),
        dict(judge="openai:gpt-4o-mini", judge_options={"base_url": url}),
        dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": url}),
    ]
    for kw in attempts:
        with pytest.raises(ValueError, match="judge") as err:
            vx.explain(tiny_clf, vx.datasets.shapes(2), run_dir=tmp_path / "run", progress=False, **kw)
        assert KEY not in str(err.value) and KEY not in repr(err.value)
    for var, spec in (("OPENAI_BASE_URL", "openai:gpt-4o-mini"), ("GOOGLE_GEMINI_BASE_URL", "gemini:gemini-2.5-flash")):
        monkeypatch.setenv(var, url)  # the SDK would read it, log it and put it in errors
        with pytest.raises(ValueError, match=var) as err:
            vx.explain(tiny_clf, vx.datasets.shapes(2), judge=spec, run_dir=tmp_path / "run", progress=False)
        assert KEY not in str(err.value)
        monkeypatch.delenv(var)
    assert not (tmp_path / "run").exists()


def test_http_library_logs_never_show_the_key(loopback_server, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    judge = make_judge("openai:gpt-4o-mini", api_key=KEY, base_url=loopback_server.openai_base_url)
    try:
        logging.getLogger("httpx").info("request with %s in it", KEY)  # as an SDK would log a header or URL
        logging.getLogger("openai").debug(f"auth: Bearer {KEY}")
    finally:
        judge.close()
    assert caplog.records and KEY not in caplog.text and "***" in caplog.text


# ----------------------------------------------------------------------------- wrong option names (6)
@pytest.mark.parametrize("name", ["openai_api_key", "apikey", "key", "token", "gemini_key"])
def test_a_key_under_a_wrong_option_name_is_never_echoed(tiny_clf, tmp_path, caplog, name):
    for spec in ("openai:gpt-4o-mini", "gemini:gemini-2.5-flash", "openai-compatible:m@http://127.0.0.1:9/v1"):
        with pytest.raises(ValueError, match=rf"{name}: unknown option, value not shown") as err:
            vx.explain(tiny_clf, vx.datasets.shapes(2), judge=spec, judge_options={name: KEY},
                       run_dir=tmp_path / "run", progress=False)
        assert KEY not in str(err.value) and "environment" in str(err.value)
    assert KEY not in caplog.text and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- echoed key (5)
@pytest.mark.parametrize("spec", ["openai:gpt-4o-mini", "gemini:gemini-2.5-flash"])
def test_a_key_echoed_back_is_redacted_in_every_stored_field(tiny_clf, loopback_server, tmp_path, capfd, spec):
    loopback_server.add_fault("echo_key")
    url = loopback_server.openai_base_url if spec.startswith("openai") else loopback_server.url
    run = vx.explain(tiny_clf, vx.datasets.shapes(3), judge=spec, run_dir=tmp_path / "run", progress=False,
                     judge_options={"api_key": KEY, "base_url": url})
    t = run.table
    assert (t["judge_status"] == "ok").all() and t["description"].str.contains("your key is ***", regex=False).all()
    assert t["justification"].str.contains("Bearer ***", regex=False).all()
    run.to_csv(tmp_path / "results.csv")
    out, err = capfd.readouterr()
    nothing_under(tmp_path, out, err, repr(run), t.to_string())


# ----------------------------------------------------------------------------- notebook parameters (19)
@pytest.mark.parametrize("name, value", [
    ("api_key", KEY), ("openai_api_key", KEY), ("OPENAI_TOKEN", KEY), ("password", "hunter22"),
    ("note", KEY), ("judge", f"openai-compatible:m@http://h:1/v1?key={KEY}"),
    ("judge_options", {"base_url": f"http://u:{KEY}@h:1/v1"}),
])
def test_secret_parameters_are_refused_before_the_notebook_is_written(tmp_path, name, value):
    with pytest.raises(ValueError, match=rf"^{name}: .*(environment)") as err:
        refuse_secret_parameters({"limit": 2, name: value})
    assert KEY not in str(err.value)
    import json

    code = cli_main(["run", "quickstart", "--out", str(tmp_path / "out"), "--no-progress",
                     "-p", name, json.dumps(value) if not isinstance(value, str) else value])
    assert code == 2 and not (tmp_path / "out").exists()
    refuse_secret_parameters({"data": "shapes:n=10", "judge": "openai-compatible:m@http://localhost:8000/v1",
                              "limit": 3, "run_dir": "runs/x"})  # ordinary parameters pass


# ----------------------------------------------------------------------------- bad parameters (17)
@pytest.mark.parametrize("kwargs, name", [
    (dict(run_dir=""), "run_dir"), (dict(run_dir="  "), "run_dir"), (dict(run_dir=3), "run_dir"),
    (dict(retry_failed="no"), "retry_failed"), (dict(progress=1), "progress"), (dict(cache=5), "cache"),
    (dict(judge_options="x"), "judge_options"), (dict(cam_options=5), "cam_options"),
    (dict(judge_options={"timeout": 3}), "judge_options"),  # an offline judge takes no timeout
    (dict(judge="openai:gpt-4o-mini", judge_options={"timeout": math.inf}), "judge"),
    (dict(judge="openai:gpt-4o-mini", judge_options={"concurrency": True}), "judge"),
    (dict(judge="openai:gpt-4o-mini", judge_options={"rpm": True}), "judge"),
    (dict(judge="openai:gpt-4o-mini", judge_options={"max_retries": 2.5}), "judge"),
    (dict(judge="openai:gpt-4o-mini", judge_options={"timeout": float("nan")}), "judge"),
])
def test_bad_parameters_are_refused_before_any_work(tiny_clf, tmp_path, monkeypatch, kwargs, name):
    monkeypatch.chdir(tmp_path)
    kwargs = {"judge": "offline:faithfulness", "run_dir": tmp_path / "run", "progress": False, "verbose": False,
              **kwargs}
    with pytest.raises(ValueError, match=f"^{name}"):
        vx.explain(tiny_clf, vx.datasets.shapes(2), **kwargs)
    with pytest.raises(ValueError, match="^classifier"):
        vx.explain(5, vx.datasets.shapes(2), run_dir=tmp_path / "run")
    assert list(tmp_path.iterdir()) == []  # no run store, nothing in the current folder
