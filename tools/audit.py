"""Reliability and security audit: the figures of the README's "Reliability and security" section.

    python tools/audit.py [--kills 8] [--out audit.json]

Measures, with real processes, real SQLite files and the real openai SDK over HTTP to the
loopback server of the tests (tests/loopback_server.py):

* kills: ``kill -9`` at a random moment of an offline run, then a plain rerun → results
  survived / lost, duplicated rows;
* concurrent runs: two processes start on one run directory at once → requests sent per sample;
* bad-input corpus: a folder of every kind of bad entry → crashes, entries unaccounted for;
* bad parameters: explain() arguments, judge options and notebook parameters → share refused
  before any work (no run directory created);
* key leak paths: a key in URLs, under a wrong option name, echoed by a server, passed as a
  notebook parameter, logged by the HTTP library → places where it was found.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
KEY = "sk-audit-SECRET-0123456789abcdef"

WORKER = textwrap.dedent("""
    import sys, torch, vlmxplain as vx
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    judge = sys.argv[3]
    opts = {"base_url": sys.argv[4], "concurrency": 4} if judge != "offline:faithfulness" else {}
    try:
        run = vx.explain(clf, vx.datasets.shapes(int(sys.argv[2]), seed=9), judge=judge, judge_options=opts,
                         run_dir=sys.argv[1], batch_size=4, progress=False, verbose=False)
        print("DONE", run.last_summary.processed, flush=True)
    except vx.store.RunDirBusy as err:
        print("BUSY", err, flush=True)
""")


def _worker(tmp: Path, run_dir: Path, n: int, judge: str = "offline:faithfulness", url: str = "",
            **kw) -> subprocess.Popen:
    script = tmp / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "OPENAI_API_KEY": KEY, "VLMXPLAIN_CACHE": str(tmp / "cache.sqlite")}
    return subprocess.Popen([sys.executable, str(script), str(run_dir), str(n), judge, url], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _count(db: Path, sql: str) -> int:
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as c:
            return c.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the run has not created its tables yet
        return 0


def kills(tmp: Path, n_kills: int, n: int = 40) -> dict:
    """Each kill: a fresh run, SIGKILL after a random number of committed judgments, a rerun."""
    rng = random.Random(12)
    survived = lost = dup = 0
    for k in range(n_kills):
        run_dir = tmp / f"kill-{k}"
        proc = _worker(tmp, run_dir, n)
        target, db, deadline = rng.randint(1, n - 4), run_dir / "run.sqlite", time.time() + 300
        while _count(db, "SELECT COUNT(*) FROM judgments") < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = _count(db, "SELECT COUNT(*) FROM judgments WHERE status = 'ok'")
        rerun = _worker(tmp, run_dir, n)
        out, err = rerun.communicate(timeout=600)
        assert "DONE" in out, err[-2000:]
        done = _count(db, "SELECT COUNT(DISTINCT sample_id) FROM judgments WHERE status = 'ok'")
        survived += before
        lost += n - done
        dup += _count(db, "SELECT COUNT(*) FROM judgments") - _count(db, "SELECT COUNT(DISTINCT sample_id) FROM judgments")
    return {"kills": n_kills, "results_committed_before_kill": survived, "results_lost": lost,
            "duplicate_rows": dup, "samples_per_run": n}


def concurrent(tmp: Path, n: int = 24) -> dict:
    """Two processes on one run directory at once, judged by a VLM over HTTP."""
    from loopback_server import LoopbackServer

    with LoopbackServer(latency=0.05) as server:
        run_dir = tmp / "twice"
        procs = [_worker(tmp, run_dir, n, "openai:gpt-4o-mini", server.openai_base_url) for _ in range(2)]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        requests = len(server.requests)
    busy = sum("BUSY" in o for o in outs)
    return {"samples": n, "requests": requests, "duplicated_requests": requests - n, "refused_as_busy": busy,
            "completed": sum("DONE" in o for o in outs)}


def corpus(tmp: Path) -> dict:
    """A folder with every kind of bad entry a real folder shows."""
    import numpy as np
    from PIL import Image

    import vlmxplain as vx
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    d = tmp / "corpus"
    (d / "circle").mkdir(parents=True)
    good = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8))
    good.save(d / "circle" / "good.png")
    good.convert("CMYK").save(d / "circle" / "cmyk.jpg")
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(d / "circle" / "grey16.png")
    good.convert("P").save(d / "circle" / "palette.gif")
    full = (d / "circle" / "good.png").read_bytes()
    entries = {
        "truncated.png": full[: len(full) // 2], "empty.png": b"", "text.jpg": b"just some notes\n",
        "html.png": b"<html><body>404</body></html>", "zeros.png": b"\0" * 4096,
        "tiny.png": None, "huge-header.png": None, "drawing.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "notes.txt": b"notes", ".hidden.png": full,
    }
    for name, data in entries.items():
        if data is not None:
            (d / "circle" / name).write_bytes(data)
    Image.new("RGB", (2, 2)).save(d / "circle" / "tiny.png")
    _huge_png(d / "circle" / "huge-header.png")
    (d / "circle" / os.fsdecode(b"caf\xe9.png")).write_bytes(full)
    os.mkfifo(d / "circle" / "pipe.png")
    os.symlink(d / "circle" / "loop2.png", d / "circle" / "loop1.png")
    os.symlink(d / "circle" / "loop1.png", d / "circle" / "loop2.png")
    os.symlink(d / "nowhere.png", d / "circle" / "dangling.png")
    os.symlink(d, d / "circle" / "dir-loop")
    n_entries = len(os.listdir(d / "circle"))
    crashes, unaccounted = 0, n_entries
    try:
        clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
        run = vx.explain(clf, vx.datasets.folder(d), judge="offline:faithfulness", run_dir=tmp / "corpus-run",
                         progress=False, verbose=False)
        unaccounted = n_entries - len(run.table[run.table["judge_status"] != "skipped"]) - len(run.skipped)
        statuses = run.table["judge_status"].value_counts().to_dict()
    except Exception as err:  # noqa: BLE001 - a crash is what is measured
        crashes, statuses = 1, {"crash": f"{type(err).__name__}: {err}"}
    return {"entries": n_entries, "crashes": crashes, "unaccounted": unaccounted, "statuses": statuses}


def _huge_png(path: Path) -> None:
    """A valid PNG header claiming 100000 x 100000 pixels (a decompression bomb)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def parameters(tmp: Path) -> dict:
    """Bad values, each of which must be refused before a run directory exists."""
    import vlmxplain as vx
    from vlmxplain.cli import main as cli
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier
    from vlmxplain.params import PipelineParams, refuse_secret_parameters

    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    data = vx.datasets.shapes(2)
    bad_explain = [dict(alpha=-1), dict(alpha=True), dict(alpha=math.inf), dict(beta=2), dict(beta=math.nan),
                   dict(threshold=9), dict(threshold=True), dict(cam="nope"), dict(cam=5), dict(judge="nope:x"),
                   dict(judge=5), dict(limit=0), dict(limit=2.0), dict(batch_size=True), dict(run_dir=""),
                   dict(run_dir=" "), dict(run_dir=3), dict(retry_failed="no"), dict(progress=1), dict(cache=5),
                   dict(judge_options="x"), dict(cam_options=5), dict(judge_options={"timeout": 3}),
                   *[dict(judge="openai:gpt-4o-mini", judge_options=o) for o in (
                       {"timeout": math.inf}, {"timeout": -1}, {"timeout": True}, {"concurrency": True},
                       {"concurrency": 0}, {"rpm": True}, {"max_retries": 2.5}, {"image_size": "512"},
                       {"openai_api_key": KEY}, {"base_url": f"http://h/v1?key={KEY}"}, {"detail": "ultra"})],
                   dict(judge=f"openai-compatible:m@http://u:{KEY}@h/v1")]
    refused = 0
    for kw in bad_explain:
        run_dir = tmp / "params-run"
        try:
            vx.explain(clf, data, **{"run_dir": run_dir, "judge": "offline:faithfulness", "progress": False,
                                     "verbose": False, **kw})
        except ValueError:
            refused += not run_dir.exists()
    bad_notebook = [dict(alpha=-1), dict(beta="x"), dict(limit=0), dict(run_dir=""), dict(cam="nope"),
                    dict(judge="bogus"), dict(data="shapes:n10"), dict(classifier=""), dict(threshold=6),
                    dict(apha=25)]
    for kw in bad_notebook:
        try:
            PipelineParams.check(**kw)
        except ValueError:
            refused += 1
    secrets = [dict(api_key=KEY), dict(openai_api_key=KEY), dict(note=KEY), dict(token="x" * 20),
               dict(judge=f"openai-compatible:m@http://h/v1?key={KEY}")]
    for kw in secrets:
        try:
            refuse_secret_parameters(kw)
        except ValueError:
            out = tmp / "cli-out"
            name, value = next(iter(kw.items()))
            code = cli(["run", "pipeline", "--out", str(out), "-p", name, value])
            refused += code == 2 and not out.exists()
    total = len(bad_explain) + len(bad_notebook) + len(secrets)
    return {"bad_values": total, "refused_before_work": refused, "share": refused / total}


def key_leaks(tmp: Path) -> dict:
    """Every way a key has leaked; then look for it everywhere something was written or shown."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from loopback_server import LoopbackServer

    import vlmxplain as vx
    from vlmxplain.cli import main as cli
    from vlmxplain.judges import make_judge
    from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier

    os.environ["OPENAI_API_KEY"] = KEY
    os.environ["VLMXPLAIN_CACHE"] = str(tmp / "leak-cache.sqlite")
    clf = shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])
    texts: list[str] = []
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    paths = 0
    with LoopbackServer() as server, redirect_stdout(io.StringIO()) as out, redirect_stderr(io.StringIO()) as err:
        base = server.openai_base_url
        attempts = [dict(judge=f"openai-compatible:m@{base}?key={KEY}"),
                    dict(judge="openai:gpt-4o-mini", judge_options={"base_url": f"{base}?key={KEY}"}),
                    dict(judge="openai:gpt-4o-mini", judge_options={"base_url": base, "openai_api_key": KEY}),
                    dict(judge="openai:gpt-4o-mini", judge_options={"base_url": f"http://u:{KEY}@127.0.0.1:9/v1"})]
        for kw in attempts:
            paths += 1
            try:
                vx.explain(clf, vx.datasets.shapes(3), run_dir=tmp / f"leak-{paths}", **kw)
            except ValueError as e:
                texts.append(repr(e))
        os.environ["OPENAI_BASE_URL"] = f"{base}?key={KEY}"
        paths += 1
        try:
            vx.explain(clf, vx.datasets.shapes(3), judge="openai:gpt-4o-mini", run_dir=tmp / "leak-env")
        except ValueError as e:
            texts.append(repr(e))
        del os.environ["OPENAI_BASE_URL"]
        server.add_fault("echo_key")
        paths += 1
        run = vx.explain(clf, vx.datasets.shapes(3), judge="openai:gpt-4o-mini", run_dir=tmp / "leak-echo",
                         judge_options={"base_url": base})
        run.to_csv(tmp / "leak-echo" / "results.csv")
        texts += [repr(run), run.table.to_string(), str(run.config), repr(make_judge("openai:gpt-4o-mini"))]
        paths += 1
        cli(["run", "pipeline", "--out", str(tmp / "leak-nb"), "-p", "api_key", KEY])
        paths += 1
        logging.getLogger("httpx").info("header: Bearer %s", KEY)
    logging.getLogger().removeHandler(handler)
    texts += [out.getvalue(), err.getvalue(), log.getvalue()]
    found = [str(p) for p in tmp.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    found += [f"text {i}" for i, t in enumerate(texts) if KEY in t]
    return {"leak_paths_tried": paths, "places_key_found": len(found), "where": found[:10]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", nargs="+", default=None, help="steps to run (default: all)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vx-audit-") as tmp_name:
        tmp = Path(tmp_name)
        report = {}
        for name, step in (("parameters", parameters), ("key_leaks", key_leaks), ("corpus", corpus),
                           ("concurrent", concurrent), ("kills", lambda t: kills(t, a.kills))):
            if a.only and name not in a.only:
                continue
            t0 = time.perf_counter()
            report[name] = step(tmp)
            report[name]["seconds"] = round(time.perf_counter() - t0, 1)
            print(name, json.dumps(report[name]), flush=True)
            if a.out:
                old = json.loads(a.out.read_text()) if a.out.is_file() else {}
                a.out.write_text(json.dumps(old | report, indent=1))


if __name__ == "__main__":
    main()
