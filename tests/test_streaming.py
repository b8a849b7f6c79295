"""The streaming explain(): judging keeps ``concurrency`` requests in flight across the whole
dataset (a slow reply blocks no other request), the first fatal reply stops all sending and says
what to fix, stages run ahead of the judge only by their bounded queues. Real ``openai`` and
``google-genai`` clients over HTTP to the loopback server; assertions count, they do not time."""
from __future__ import annotations

import threading

import pytest
import torch
from loopback_server import LoopbackServer

import vlmxplain as vx
from vlmxplain.datasets import Dataset
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
from vlmxplain.store import RunStore

SECRET = "sk-test-SECRET-1234567890"
GSECRET = "AIza-test-SECRET-0987654321"
FAST = dict(backoff_base=0.01, backoff_max=0.05)


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    for name in ("OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY", "OPENAI_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", GSECRET)
    monkeypatch.setenv("VLMXPLAIN_CACHE", str(tmp_path / "cache" / "judgments.sqlite"))


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(0)
    return shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])


def judge_kwargs(provider: str, server: LoopbackServer, **options) -> dict:
    options = {"image_size": 64, **FAST, **options}  # small requests: the test is about scheduling
    if provider == "openai":
        return dict(judge="openai:gpt-4o-mini", judge_options={"base_url": server.openai_base_url, **options})
    if provider == "gemini":
        return dict(judge="gemini:gemini-2.5-flash", judge_options={"base_url": server.url, **options})
    return dict(judge=f"openai-compatible:qwen2.5-vl@{server.openai_base_url}", judge_options=options)


def in_flight_at_arrival(requests) -> list[int]:
    """For each request, how many were on the wire when it arrived (itself included): arrived and not
    yet answered (a reply's time is taken before it is written, so the count is exact)."""
    inf = float("inf")
    return [sum(q.received <= r.received < (q.responded or inf) for q in requests) for r in requests]


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_held_replies_block_no_other_request_and_in_flight_never_exceeds_concurrency(
        clf, tmp_path, capfd, provider):
    n, c = 24, 4
    with LoopbackServer(latency=0.02) as server:
        # The first c-1 requests are answered only once every request of the run has arrived: the
        # run completes only if the one remaining slot is refilled by each reply, across the whole
        # dataset (a per-batch scheduler would wait for the held replies and never send the rest).
        server.add_fault("hold", times=c - 1, until=n)
        run = vx.explain(clf, vx.datasets.shapes(n, seed=1), run_dir=tmp_path / "run", batch_size=8,
                         progress=True, verbose=False, **judge_kwargs(provider, server, concurrency=c))
        requests = list(server.requests)
    held = [r for r in requests if r.fault == "hold"]
    assert len(requests) == n and len(held) == c - 1
    assert all(r.status == 200 for r in requests)
    others = [r for r in requests if r.fault != "hold"]
    assert all(r.received < min(h.responded for h in held) for r in others)  # none waited for a held one
    assert max(in_flight_at_arrival(requests)) == c  # the limit is reached and never exceeded
    t = run.table
    assert len(t) == n and (t["judge_status"] == "ok").all()
    s = run.last_summary
    assert (s.judged, s.processed, s.not_sent, s.rejected) == (n, n, 0, 0)
    assert s.stages["loaded"] == s.stages["cams"] == s.stages["encoded"] == s.stages["sent"] == n
    err = capfd.readouterr().err
    for stage in ("loaded=", "cams=", "encoded=", "inflight=", "done=24", "failed=0", "cached=0"):
        assert stage in err  # the progress bar shows each stage's count


@pytest.mark.parametrize(("status", "provider", "what"), [
    ("401", "openai", "the API key was rejected: check the environment variable OPENAI_API_KEY"),
    ("401", "gemini", "the API key was rejected: check the environment variable GEMINI_API_KEY"),
    ("403", "openai", "may not use model 'gpt-4o-mini'"),
    ("404", "openai-compatible", "model 'qwen2.5-vl' or the URL 'http://127.0.0.1:"),
])
def test_first_fatal_reply_stops_all_sending_and_a_plain_rerun_judges_the_rest(
        clf, tmp_path, capfd, status, provider, what):
    n, c = 20, 3
    data = vx.datasets.shapes(n, seed=2)
    with LoopbackServer(gate=c) as server:  # the first c requests are all on the wire before any reply
        server.add_fault(status)
        kwargs = judge_kwargs(provider, server, concurrency=c)
        run = vx.explain(clf, data, run_dir=tmp_path / "run", batch_size=4, progress=False, **kwargs)
        out = capfd.readouterr().out
        assert len(server.requests) == c  # nothing was sent after the first fatal reply
        s = run.last_summary
        assert (s.rejected, s.not_sent, s.failed, s.judged, s.processed) == (c, n - c, 0, 0, c)
        assert what in s.problem and what in out
        assert f"{c} refused, {n - c} never sent" in out
        t = run.table
        refused = t[t["judge_status"] == "failed"]
        assert len(refused) == c and refused["error"].str.contains(f"(HTTP {status})", regex=False).all()
        assert (t.drop(index=refused.index)["judge_status"] == "pending").all()  # never asked, not lost

        server.rules.clear()  # the key / model / URL is fixed
        server.gate = None
        again = vx.explain(clf, data, run_dir=tmp_path / "run", batch_size=4, progress=False, verbose=False,
                           **kwargs)
        assert len(server.requests) == c + n  # the refused and the never-sent samples, each once
        assert (again.table["judge_status"] == "ok").all() and again.last_summary.judged == n
        assert again.last_summary.problem is None


class CountingDataset(Dataset):
    """Shapes that count how many samples were decoded."""

    def __init__(self, inner: Dataset) -> None:
        self.inner, self.loads = inner, 0
        self.name, self.classes = inner.name, inner.classes

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        self.loads += 1
        return self.inner[i]

    def ref(self, i):
        return self.inner.ref(i)


def test_stages_run_ahead_of_a_stalled_judge_only_by_their_bounded_queues(clf, tmp_path):
    n, batch, workers = 150, 8, 2
    data = CountingDataset(vx.datasets.shapes(n, seed=3))
    seen: list[int] = []
    with LoopbackServer(gate=n + 1, gate_timeout=1.5) as server:  # the first reply stalls (never reaches n+1)
        original = server.wait_for_requests

        def stalled(k: int) -> bool:
            result = original(k)
            if not seen:
                seen.append(data.loads)  # how far the pipeline got while the judge was stuck
                server.gate = None
            return result

        server.wait_for_requests = stalled
        run = vx.explain(clf, data, run_dir=tmp_path / "run", batch_size=batch, workers=workers, progress=False,
                         verbose=False, **judge_kwargs("openai", server, concurrency=1))
    # loader window + loaded queue + CAM batch + CAM queue + encoders + request queue + in flight
    # + the request pulled by the judge, waiting for the slot
    bound = (2 * workers + 1) + 2 * batch + batch + 2 * batch + 4 + batch + 1 + 1
    assert seen and seen[0] <= bound < n
    assert (run.table["judge_status"] == "ok").all() and data.loads == n


def test_an_error_in_a_stage_stops_the_run_and_is_raised(clf, tmp_path):
    class Broken(CountingDataset):
        def __getitem__(self, i):
            if i == 13:
                raise RuntimeError("disk on fire")
            return super().__getitem__(i)

    data = Broken(vx.datasets.shapes(40, seed=4))
    with pytest.raises(RuntimeError, match="disk on fire"):
        vx.explain(clf, data, judge="offline:groundtruth", run_dir=tmp_path / "run", batch_size=4, progress=False,
                   verbose=False)
    assert data.loads < 40  # the stream stopped
    threads = [t.name for t in threading.enumerate() if t.name.startswith("vlmx-")]
    assert not threads
    store = RunStore(tmp_path / "run")
    kept_cams, kept_judged = len(store.cam_ids()), len(store.judged_ids("offline:groundtruth", "groundtruth-v1", 25, 0.6))
    store.close()
    resumed = vx.explain(clf, vx.datasets.shapes(40, seed=4), judge="offline:groundtruth", run_dir=tmp_path / "run",
                         batch_size=4, progress=False, verbose=False)  # what was committed is kept
    s = resumed.last_summary
    assert (s.cams_reused, s.already_done) == (kept_cams, kept_judged) and s.cams_computed == 40 - kept_cams
    assert (resumed.table["judge_status"] == "ok").all()


@pytest.mark.parametrize("provider", [None, "openai"])
def test_every_image_is_encoded_once_and_previews_are_lossless(clf, tmp_path, monkeypatch, provider):
    from PIL import Image

    from vlmxplain.masks import preview_of

    n = 12
    data = vx.datasets.shapes(n, seed=5)
    saved: list[str] = []
    original = Image.Image.save

    def counting(self, fp, format=None, **params):
        saved.append(str(format).upper())
        return original(self, fp, format=format, **params)

    monkeypatch.setattr(Image.Image, "save", counting)
    with LoopbackServer() as server:
        kwargs = judge_kwargs(provider, server) if provider else dict(judge="offline:groundtruth")
        run = vx.explain(clf, data, run_dir=tmp_path / "run", progress=False, verbose=False, **kwargs)
        requests = list(server.requests)
        judge = vx.judges.make_judge(run.judge, base_url=server.openai_base_url, image_size=64) if provider else None
    # one lossless preview per image; a VLM judge adds the one PNG it is sent (its cache key is
    # built on those very bytes); an offline judge's key is built on raw pixels, no encoding
    assert saved.count("WEBP") == n and saved.count("PNG") == (n if provider else 0) and len(saved) == n + saved.count("PNG")
    for k in range(n):
        sample = data[k]
        assert run.image(sample.id).tobytes() == preview_of(sample.image).tobytes()  # lossless
    if provider:
        sent = {r.images[0] for r in requests}
        assert sent == {judge.view_bytes(run.judge_input(data[k].id)) for k in range(n)}
        keys = run.judgments().set_index("id")["cache_key"]
        assert all(keys[data[k].id] == judge.cache_key(run.judge_input(data[k].id)) for k in range(n))


def test_a_jpeg_that_fits_is_stored_as_its_own_bytes_and_anything_else_losslessly(clf, tmp_path):
    """A JPEG file that decodes to the preview unchanged is stored as is (no encoding, far smaller);
    a rotated (EXIF) or resized JPEG, a PNG, or a JPEG whose pixels were changed after loading are
    stored losslessly. Either way the stored preview decodes to exactly the pixels judged."""
    from PIL import Image

    from vlmxplain.datasets import load_image
    from vlmxplain.masks import preview_of
    from vlmxplain.masks.images import preview_bytes

    shapes = vx.datasets.shapes(4, seed=7)
    folder = tmp_path / "data" / "circle"
    folder.mkdir(parents=True)
    upside_down = Image.Exif()
    upside_down[0x0112] = 3  # rotate 180°: the same size, other pixels
    shapes[0].image.save(folder / "plain.jpg", quality=90)
    shapes[1].image.save(folder / "rotated.jpg", quality=90, exif=upside_down)
    shapes[2].image.save(folder / "lossless.png")
    shapes[3].image.resize((640, 640)).save(folder / "large.jpg", quality=90)
    run = vx.explain(clf, vx.datasets.folder(tmp_path / "data"), judge="offline:faithfulness",
                     run_dir=tmp_path / "run", progress=False, verbose=False, cache=False)
    store = RunStore(tmp_path / "run")
    try:
        for name in ("plain.jpg", "rotated.jpg", "lossless.png", "large.jpg"):
            stored, _ = store.get_preview(f"circle/{name}")
            assert (stored == (folder / name).read_bytes()) == (name == "plain.jpg"), name
            assert name == "plain.jpg" or stored[:4] == b"RIFF", name  # lossless WebP
            assert run.image(f"circle/{name}").tobytes() == preview_of(load_image(folder / name)).tobytes(), name
    finally:
        store.close()
    assert (run.table["judge_status"] == "ok").all()
    changed = load_image(folder / "plain.jpg")
    changed.paste((255, 0, 0), (0, 0, 4, 4))  # its info still carries the file's bytes: they no longer match
    assert preview_bytes(changed)[:4] == b"RIFF"


def test_rejudge_streams_too_and_stops_at_the_first_fatal_reply(clf, tmp_path):
    n, c = 16, 2
    run = vx.explain(clf, vx.datasets.shapes(n, seed=6), judge="offline:groundtruth", run_dir=tmp_path / "run",
                     progress=False, verbose=False)
    with LoopbackServer(gate=c) as server:
        server.add_fault("401")
        kwargs = judge_kwargs("openai", server, concurrency=c)
        vx.rejudge(run, judge=kwargs["judge"], judge_options=kwargs["judge_options"], beta=0.5, progress=False)
        s = run.last_summary
        assert len(server.requests) == c and (s.rejected, s.not_sent) == (c, n - c)
        assert "check the environment variable OPENAI_API_KEY" in s.problem
        server.rules.clear()
        server.gate = None
        vx.rejudge(run, judge=kwargs["judge"], judge_options=kwargs["judge_options"], beta=0.5, progress=False)
        assert len(server.requests) == c + n and run.last_summary.judged == n
    t = run.table
    assert (t["judge_status"] == "ok").all() and run.view.beta == 0.5
    assert len(run.table_for(judge="offline:groundtruth", beta=0.6)) == n  # the first judge's results are kept


@pytest.mark.parametrize("provider", ["openai-compatible", "gemini"])
def test_an_unreachable_endpoint_stops_the_run_before_any_request_and_a_rerun_resumes(clf, tmp_path, provider):
    """One connection attempt before sending (the preflight): a server that is not listening ends
    the run at once with every sample never sent — no retries per request — and says what to fix;
    once the server is up, a plain rerun judges them all."""
    n = 6
    data = vx.datasets.shapes(n, seed=3)
    with LoopbackServer() as server:
        url = server.url
        kwargs = judge_kwargs(provider, server, max_retries=4)
    # the server is closed: its port now refuses connections
    run = vx.explain(clf, data, run_dir=tmp_path / "run", progress=False, verbose=False, **kwargs)
    s = run.last_summary
    assert (s.not_sent, s.failed, s.rejected, s.judged) == (n, 0, 0, 0)
    assert "no connection to the endpoint" in s.problem and url in s.problem and "check the URL" in s.problem
    assert (run.table["judge_status"] == "pending").all()
    with LoopbackServer(port=int(url.rsplit(":", 1)[1])) as server:
        again = vx.explain(clf, data, run_dir=tmp_path / "run", progress=False, verbose=False, **kwargs)
        assert len(server.requests) == n and (again.table["judge_status"] == "ok").all()


def test_the_preflight_can_be_turned_off(clf, tmp_path):
    with LoopbackServer() as server:
        kwargs = judge_kwargs("openai-compatible", server, max_retries=0, preflight=False)
    run = vx.explain(clf, vx.datasets.shapes(2, seed=3), run_dir=tmp_path / "run", progress=False, verbose=False,
                     **kwargs)
    assert run.last_summary.failed == 2 and run.last_summary.problem is None  # each request tried and failed
