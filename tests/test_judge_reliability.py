"""Judge reliability (issue 11, item 6): repeated sampling, prompt templates, several judges on one
run, and ``vx.reliability``. VLM judges are the real ``openai`` / ``google-genai`` SDKs over HTTP
to the loopback server, whose ``SampledScore`` answers like a sampling model: the same score at
temperature 0, seeded draws around it at temperature > 0 — so the measurement can disagree."""
from __future__ import annotations

import hashlib
import json
import sqlite3

import numpy as np
import pytest
from loopback_server import LoopbackServer, RecordedRequest, SampledScore

import vlmxplain as vx
from vlmxplain.judges.base import repeat_key
from vlmxplain.store.run_store import SCHEMA_VERSION

SDK_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
           "GOOGLE_GENAI_API_VERSION", "GOOGLE_GENAI_USE_VERTEXAI")
N = 6  # shapes images


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-reliability-0000")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-reliability-0000")
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache" / "judgments.sqlite"))


def image_score(rec: RecordedRequest) -> int:
    """A per-image score (0..5) from the bytes sent: the same image gets the same score from every
    provider; model ``inverted`` answers 5 minus it; a prompt with "sceptical" one point less."""
    base = int(hashlib.sha256(b"".join(rec.images)).hexdigest(), 16) % 6
    if rec.model == "inverted":
        base = 5 - base
    if "sceptical" in rec.text:
        base = max(0, base - 1)
    return base


@pytest.fixture()
def server():
    with LoopbackServer(score=SampledScore(image_score, seed=0)) as s:
        yield s


def openai(server, model: str = "gpt-4o-mini", **options) -> dict:
    return dict(judge=f"openai:{model}", judge_options={"base_url": server.openai_base_url, "concurrency": 4,
                                                         "backoff_base": 0.01, **options})


def gemini(server, **options) -> dict:
    return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url, "concurrency": 4,
                                                                 "backoff_base": 0.01, **options})


@pytest.fixture()
def base_run(tiny_clf, tmp_path):
    """A shapes run whose CAMs are stored (offline judge), for rejudging with VLM judges."""
    return vx.explain(tiny_clf, vx.datasets.shapes(N, seed=3), judge="offline:groundtruth", run_dir=tmp_path / "run",
                      progress=False, verbose=False)


# ----------------------------------------------------------------------------- store migration
_OLD_COLUMNS = ("sample_id, judge_id, prompt_version, alpha, beta, cache_key, status, score, description, "
                "justification, error, raw, parse_path, input_tokens, output_tokens, latency_s, cached, created")


def _old_judgments(version: int) -> str:
    """The judgments table as schema 2 (no ``truncated``) or 3 (no ``repeat``) left it."""
    truncated = ", truncated INTEGER NOT NULL DEFAULT 0" if version >= 3 else ""
    return ("CREATE TABLE judgments (sample_id TEXT NOT NULL, judge_id TEXT NOT NULL, prompt_version TEXT NOT NULL, "
            "alpha REAL NOT NULL, beta REAL NOT NULL, cache_key TEXT NOT NULL, status TEXT NOT NULL, score REAL, "
            "description TEXT, justification TEXT, error TEXT, raw TEXT, parse_path TEXT, input_tokens INTEGER, "
            "output_tokens INTEGER, latency_s REAL, cached INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL"
            f"{truncated}, PRIMARY KEY (sample_id, judge_id, prompt_version, alpha, beta))")


@pytest.mark.parametrize("version", [2, 3])
def test_an_old_store_migrates_with_every_judgment_as_repeat_0(base_run, tiny_clf, version):
    """A store written before repeats (schema 3: no repeat column, 5-column key; schema 2: no
    truncated flag either) opens as the current schema with every judgment kept as answer 0, not
    cut and billed as one request (schema 5); the run is then resumable with repeats."""
    path = base_run.store.path
    before = base_run.table[["score", "judge_status"]]
    base_run.store.close()
    cols = _OLD_COLUMNS + (", truncated" if version >= 3 else "")
    with sqlite3.connect(path) as c:  # rewrite it as that older vlmxplain left it
        c.execute("ALTER TABLE judgments RENAME TO j4")
        c.execute(_old_judgments(version))
        c.execute(f"INSERT INTO judgments ({cols}) SELECT {cols} FROM j4")
        c.execute("DROP TABLE j4")
        c.execute("UPDATE config SET value = ? WHERE key = 'schema_version'", (str(version),))
    run = vx.open_run(path.parent)
    assert run.store.get_config("schema_version") == SCHEMA_VERSION == 5
    info = {r[1]: r for r in run.store._conn.execute("PRAGMA table_info(judgments)")}
    assert info["repeat"][5] == 6  # the sixth column of the primary key
    j = run.store.judgments()
    assert len(j) == N and (j["repeat"] == 0).all() and (j["requests"] == 1).all() and (j["truncated"] == 0).all()
    assert run.table[["score", "judge_status"]].equals(before)
    run.store.close()
    again = vx.explain(tiny_clf, vx.datasets.shapes(N, seed=3), judge="offline:groundtruth", run_dir=path.parent,
                       repeats=3, progress=False, verbose=False)
    assert again.last_summary.already_done == N and again.last_summary.judged == 2 * N
    assert len(again.repeats()) == 3 * N


# ----------------------------------------------------------------------------- repeated sampling
def spread(run, **setting) -> np.ndarray:
    long = run.repeats(**setting)
    assert (long["judge_status"] == "ok").all()
    return long.groupby("id")["score"].std(ddof=0).to_numpy()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_repeats_at_temperature_0_agree_and_above_0_spread(base_run, server, provider):
    make = openai if provider == "openai" else gemini
    run = vx.rejudge(base_run, repeats=5, progress=False, **make(server))
    assert len(server.requests) == 5 * N and run.last_summary.judged == 5 * N
    assert all(json.dumps(r.body).count('"temperature": 0.0') == 1 for r in server.requests)
    assert (spread(run) == 0).all()  # temperature 0: five identical answers per sample
    t = run.table
    assert len(t) == N and (t["score_sd"] == 0).all() and (t["n_answers"] == 5).all()
    assert len(run.repeats()) == 5 * N and sorted(run.repeats()["repeat"].unique()) == [0, 1, 2, 3, 4]

    hot = vx.rejudge(run, repeats=5, progress=False, **make(server, temperature=0.7))
    assert len(server.requests) == 10 * N  # a new question (temperature is part of the prompt version)
    sd = spread(hot)
    # temperature 0.7: answers differ (worst over 5,000 simulated draws: 3 of 6 samples spread, mean SD 0.32)
    assert (sd > 0).sum() >= 2 and sd.mean() > 0.15
    t = hot.table
    first = hot.repeats().query("repeat == 0").set_index("id")["score"]
    assert t["score"].equals(first.reindex(t.index))  # the table shows answer 0 ...
    assert np.allclose(t["score_mean"], hot.repeats().groupby("id")["score"].mean().reindex(t.index))  # ... and the mean
    assert hot.usage()["requests"] == 5 * N  # usage counts every answer of the current view

    rerun = vx.rejudge(hot, repeats=5, progress=False, **make(server, temperature=0.7))
    assert len(server.requests) == 10 * N and rerun.last_summary.already_done == 5 * N  # finished: nothing sent


def test_repeat_cache_keys_keep_single_keys_valid_and_a_new_run_reuses_every_answer(base_run, server, tiny_clf,
                                                                                  tmp_path):
    """Answer 0's cache key is the key of a single judgment; answers k > 0 have their own. A new run
    dir with the same inputs gets all five answers of each sample from the cross-run cache."""
    single = vx.rejudge(base_run, progress=False, **openai(server, temperature=0.7))
    keys0 = dict(zip(*single.store.judgments(single.judge, repeat=0)[["id", "cache_key"]].T.to_numpy()))
    run = vx.rejudge(single, repeats=5, progress=False, **openai(server, temperature=0.7))
    assert len(server.requests) == N + 4 * N  # answer 0 was already there
    j = run.store.judgments(run.judge, run.view.judge.prompt_version)
    assert j["cache_key"].is_unique and len(j) == 5 * N
    for row in j.itertuples():
        assert row.cache_key == repeat_key(keys0[row.id], row.repeat)
    judge = vx.make_judge(run.judge, **openai(server, temperature=0.7)["judge_options"])
    assert all(judge.prepare(run.judge_input(sid)).key == key for sid, key in keys0.items())
    judge.close()
    scores = run.repeats().set_index(["id", "repeat"])["score"]

    fresh = vx.explain(tiny_clf, vx.datasets.shapes(N, seed=3), run_dir=tmp_path / "fresh", repeats=5, progress=False,
                       verbose=False, **openai(server, temperature=0.7))
    assert len(server.requests) == 5 * N and fresh.last_summary.cached == 5 * N
    assert fresh.repeats().set_index(["id", "repeat"])["score"].equals(scores)  # the same k-th answers


def test_an_interrupted_repeat_run_resumes_without_re_requesting_finished_answers(base_run, server):
    """The provider stops answering (a fatal 401) after 13 answers; the rerun sends exactly the
    answers that were not finished, and every (sample, repeat) ends with one answer."""
    answered = []

    def score(rec):
        answered.append(rec)
        if len(answered) == 13:
            server.add_fault("401", times=1)  # the next request is refused: the run stops
        return SampledScore(image_score)(rec)

    server.score = score
    opts = openai(server, temperature=0.7, concurrency=1)
    run = vx.rejudge(base_run, repeats=5, progress=False, **opts)
    first = len(server.requests)
    long = run.repeats()
    done = int((long["judge_status"] == "ok").sum())
    assert done == 13 and first == 14 and run.last_summary.problem  # 13 answered, 1 refused, the rest never sent
    assert run.last_summary.rejected == 1 and run.last_summary.not_sent == 5 * N - 14
    run = vx.rejudge(run, repeats=5, progress=False, **opts)
    assert len(server.requests) - first == 5 * N - done  # only what was not finished
    long = run.repeats()
    assert len(long) == 5 * N and (long["judge_status"] == "ok").all()
    assert not long.duplicated(["id", "repeat"]).any()


def test_repeats_is_checked_before_any_work(base_run, tiny_clf, tmp_path):
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="repeats"):
            vx.rejudge(base_run, repeats=bad, progress=False)
        with pytest.raises(ValueError, match="repeats"):
            vx.explain(tiny_clf, vx.datasets.shapes(2), run_dir=tmp_path / "never", repeats=bad, progress=False)
    assert not (tmp_path / "never").exists()


# ----------------------------------------------------------------------------- prompt templates
def test_named_templates_have_their_own_prompt_versions_and_the_server_sees_their_text(base_run, server):
    from vlmxplain.judges.vlm import PAPER_RUBRIC, PROMPT_TEMPLATES

    assert PAPER_RUBRIC.version == "paper-rubric-v1-682fcebc1865"  # the default's cache keys are unchanged
    assert {"paper-rubric-v1", "paper-strict", "paper-concise", "paper-describe-first"} <= set(PROMPT_TEMPLATES)
    run = base_run
    for name in ("paper-rubric-v1", "paper-strict", "paper-concise", "paper-describe-first"):
        before = len(server.requests)
        run = vx.rejudge(run, progress=False, **openai(server, template=name))
        sent = server.requests[before:]
        assert len(sent) == N and run.view.judge.prompt_version.startswith(PROMPT_TEMPLATES[name].version + "|")
        first_line = PROMPT_TEMPLATES[name].user.split("\n")[2]  # the template's own wording reaches the server
        assert all(first_line.split("{")[0] in r.text for r in sent)
        assert run.view.judge.options["template"] == name
    versions = {s.prompt_version for s in run.store.judge_settings() if s.judge == "openai:gpt-4o-mini"}
    assert len(versions) == 4  # four settings side by side in one run
    assert run.store.judgments("openai:gpt-4o-mini").groupby("prompt_version").size().tolist() == [N] * 4
    assert all("sceptical" in r.text for r in server.requests[N:2 * N])  # paper-strict only
    assert not any("sceptical" in r.text for r in server.requests[2 * N:])


def test_a_misspelt_template_name_is_refused_with_the_closest_name(base_run, server):
    with pytest.raises(ValueError, match=r"template: not a named prompt template \(did you mean 'paper-strict'\?\)"):
        vx.rejudge(base_run, progress=False, **openai(server, template="paper-strikt"))
    assert not server.requests


# ----------------------------------------------------------------------------- vx.reliability
def test_reliability_of_repeats_templates_and_judges(base_run, server):
    """One run with repeats at 0 and 0.7, two templates, the same judge on two providers (identical
    scores) and an inverted model: self-consistency is perfect at temperature 0 and not at 0.7;
    the strict template shifts every score; a judge agrees with itself (alpha = rho = 1) and
    disagrees with its inverse; every CI covers its estimate."""
    run = vx.rejudge(base_run, repeats=3, progress=False, **openai(server))
    run = vx.rejudge(run, repeats=3, progress=False, **openai(server, temperature=0.7))
    run = vx.rejudge(run, progress=False, **openai(server, template="paper-strict"))
    run = vx.rejudge(run, progress=False, **gemini(server))
    run = vx.rejudge(run, progress=False, **openai(server, model="inverted"))
    rel = vx.reliability(run, judges=["openai:gpt-4o-mini", "gemini:gemini-2.5-flash", "openai:inverted"],
                         n_boot=200)
    assert len(rel.settings) == 5 and not rel.notes

    sc = rel.self_consistency.set_index("label")
    cold, hot = "openai:gpt-4o-mini [paper-rubric-v1, t=0.0]", "openai:gpt-4o-mini [paper-rubric-v1, t=0.7]"
    assert set(sc.index) == {cold, hot} and (sc["repeats"] == 3).all() and (sc["n"] == N).all()
    assert sc.loc[cold, "alpha"] == 1 and sc.loc[cold, "mean_sd"] == 0 and sc.loc[cold, "n_flipped"] == 0
    # worst over 3,000 simulated draws of 6 samples x 3 answers: alpha 0.977, mean SD 0.19
    assert sc.loc[hot, "alpha"] < 0.99 and sc.loc[hot, "mean_sd"] > 0.1
    per = rel.per_sample.set_index(["label", "id"])
    hot_pv = rel.settings.set_index("label").loc[hot, "prompt_version"]
    assert np.allclose(per.loc[hot, "sd"], run.repeats("openai:gpt-4o-mini", prompt_version=hot_pv)
                       .groupby("id")["score"].std())

    (spread,) = rel.template_spread.itertuples()
    assert spread.templates == 2 and spread.n == N
    tmpl = rel.templates.set_index("id")
    assert ((tmpl["paper-rubric-v1"] - tmpl["paper-strict"]).between(0, 1)).all()  # strict is one point lower
    assert spread.mean_sd > 0 and spread.sd_ci_low <= spread.mean_sd <= spread.sd_ci_high

    pairs = rel.judges.set_index(["a", "b"])
    same = pairs.loc[(cold, "gemini:gemini-2.5-flash [paper-rubric-v1, t=0.0]")]
    assert same["alpha"] == pytest.approx(1) and same["spearman"] == pytest.approx(1)
    inv = pairs.loc[(cold, "openai:inverted [paper-rubric-v1, t=0.0]")]
    assert inv["alpha"] < 0 and inv["spearman"] == pytest.approx(-1) and inv["alpha_ci_high"] < 0
    m = rel.matrix("spearman")
    assert m.loc[cold, "openai:inverted [paper-rubric-v1, t=0.0]"] == pytest.approx(-1) and (np.diag(m) == 1).all()
    frame = rel.to_frame().dropna(subset=["ci_low", "ci_high"])
    assert len(frame) >= 10
    assert ((frame["ci_low"] <= frame["estimate"] + 1e-9) & (frame["estimate"] <= frame["ci_high"] + 1e-9)).all()

    fig = vx.plot_reliability(rel)
    assert len(fig.axes) == 4  # repeats, templates, matrix (+ its colour bar)


def test_reliability_of_offline_judges_and_what_it_needs(base_run, tiny_clf):
    with pytest.raises(ValueError, match="no ok judgments"):
        vx.reliability(base_run, judges=["openai:nothing"])
    rel = vx.reliability(base_run, n_boot=0)
    assert set(rel.notes) == {"repeats", "templates", "judges"} and rel.overall_alpha is None
    with pytest.raises(ValueError, match="nothing to draw"):
        vx.plot_reliability(rel)
    run = vx.rejudge(base_run, judge="offline:insertion-deletion", classifier=tiny_clf, progress=False,
                     judge_options={"steps": 5})
    rel = vx.reliability(run, n_boot=200)
    (pair,) = rel.judges.itertuples()
    assert {pair.a, pair.b} == {"offline:groundtruth", "offline:insertion-deletion"} and pair.n == N
    assert -1 <= pair.alpha_ci_low <= pair.alpha <= pair.alpha_ci_high <= 1
    assert len(vx.plot_reliability(rel).axes) == 2  # the matrix and its colour bar


def test_shards_with_repeats_merge_into_one_run_with_every_answer(tiny_clf, tmp_path):
    data = vx.datasets.shapes(N, seed=3)
    shards = [vx.explain(tiny_clf, data, judge="offline:groundtruth", run_dir=tmp_path / f"s{k}", shard=(k, 2),
                         repeats=2, progress=False, verbose=False) for k in range(2)]
    merged = vx.merge_runs([s.run_dir for s in shards], into=tmp_path / "all")
    long = merged.repeats()
    assert len(long) == 2 * N and not long.duplicated(["id", "repeat"]).any() and (long["judge_status"] == "ok").all()
    assert len(merged.table) == N and (merged.table["n_answers"] == 2).all()
