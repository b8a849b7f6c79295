"""Reliability defects of the adversarial audit (issue 12): every folder entry accounted for, a
run store deleted, locked, read-only, foreign or damaged, a failing judgment cache, errors that
name their file, parameters refused before any work."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vlmxplain as vx
from vlmxplain.models.shapesnet import ShapesNet, shapes_classifier


def offline(clf, data, run_dir, **kw):
    return vx.explain(clf, data, judge="offline:faithfulness", run_dir=run_dir, progress=False, verbose=False, **kw)


def _png(path: Path, value: int = 90) -> None:
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(path)


# ----------------------------------------------------------------------------- folder entries (1, 18)
@pytest.fixture()
def odd_folder(tmp_path) -> tuple[Path, int]:
    """A folder with two images and every kind of entry a real folder shows; returns it and its entry count."""
    d = tmp_path / "odd"
    d.mkdir()
    _png(d / "good.png")
    _png(Path(os.fsdecode(bytes(d) + b"/caf\xe9.png")))  # a Latin-1 file name: not valid UTF-8
    os.mkfifo(d / "pipe.png")  # opening it would block forever
    os.symlink(d / "loop-b.png", d / "loop-a.png")
    os.symlink(d / "loop-a.png", d / "loop-b.png")
    os.symlink(d / "nowhere.png", d / "broken.png")
    (d / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (d / ".hidden.png").write_bytes(b"")
    sub = d / "circle"
    sub.mkdir()
    _png(sub / "inner.png", 30)
    os.symlink(d, sub / "linked-dir")  # a folder link (here a loop): not followed
    return d, len(os.listdir(d)) - 1 + len(os.listdir(sub))  # "circle" itself is not an entry to account for


def test_every_folder_entry_is_a_sample_or_skipped_with_a_reason(tiny_clf, odd_folder, tmp_path):
    folder, n_entries = odd_folder
    data = vx.datasets.folder(folder)
    assert sorted(data.ids) == ["circle/inner.png", "good.png"]
    reasons = {s.id: s.reason for s in data.skipped_entries}
    assert reasons["caf\\xe9.png"].startswith("file name is not valid UTF-8")
    assert reasons["pipe.png"] == "not a regular file (FIFO)"
    assert reasons["loop-a.png"] == reasons["broken.png"] == "broken symbolic link or link loop"
    assert reasons["drawing.svg"].startswith("not a supported image file type (.svg")
    assert reasons["circle/linked-dir"] == "symbolic link to a folder (not followed)"
    run = offline(tiny_clf, data, tmp_path / "run")  # used to raise UnicodeEncodeError before any work
    assert set(run.table["judge_status"]) == {"ok"} and len(run.table) == 2
    assert len(run.table) + len(run.skipped) == n_entries
    assert run.skipped["reason"].str.len().gt(10).all()


# ----------------------------------------------------------------------------- the run store (2, 7, 9, 10, 12)
def test_deleting_the_store_during_a_run_stops_it_with_an_error(tiny_clf, tmp_path):
    data = vx.datasets.shapes(12, seed=3)
    state = {"n": 0}

    class Deleting(vx.datasets.Dataset):  # deletes the run store while the run is under way
        def __init__(self):
            super().__init__("deleting", data.classes)

        def __len__(self):
            return len(data)

        def _ref(self, i):
            return data.ref(i)

        def _load(self, i):
            state["n"] += 1
            if state["n"] == 5:
                (tmp_path / "run" / "run.sqlite").unlink()
            return data[i]

    with pytest.raises(ValueError, match="deleted or replaced while the run was writing"):
        offline(tiny_clf, Deleting(), tmp_path / "run", batch_size=4)


def test_a_second_process_on_a_run_dir_is_refused_and_a_killed_one_leaves_no_lock(tiny_clf, tmp_path):
    import signal
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from vlmxplain.store import RunLock; "
                               f"lock = RunLock({str(run_dir)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(vx.store.RunDirBusy, match=rf"in use by pid {holder.pid} .*work twice"):
            offline(tiny_clf, vx.datasets.shapes(4), run_dir)
        assert vx.store.RunStore(run_dir).sample_count() == 0  # refused before any work
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    run = offline(tiny_clf, vx.datasets.shapes(4), run_dir)  # the kernel dropped the dead holder's lock
    assert len(run.table) == 4 and set(run.table["judge_status"]) == {"ok"}


def test_a_read_only_run_opens_read_only(tiny_clf, tmp_path):
    offline(tiny_clf, vx.datasets.shapes(3), tmp_path / "run").store.close()
    files = [tmp_path / "run", *(tmp_path / "run").iterdir()]
    for p in files:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
        # explicit (root ignores file modes), and detected from the modes for anyone else
        for run in [vx.open_run(tmp_path / "run", readonly=True)] + (
                [vx.open_run(tmp_path / "run")] if os.geteuid() != 0 else []):
            assert run.store.readonly and len(run.table) == 3 and run.config.cam == "gradcam"
            with pytest.raises(PermissionError, match="is read-only"):
                run.store.put_annotation(run.table["id"].iloc[0], "alice", 3.0)
            run.store.close()
        assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    finally:
        for p in files:
            p.chmod(0o755)


def test_foreign_empty_damaged_and_newer_stores_are_refused_unmodified(tiny_clf, tmp_path):
    def store_at(name: str, content: bytes | None = None) -> Path:
        d = tmp_path / name
        d.mkdir()
        if content is not None:
            (d / "run.sqlite").write_bytes(content)
        return d

    foreign = store_at("foreign")
    with sqlite3.connect(foreign / "run.sqlite") as c:
        c.execute("CREATE TABLE accounts (id INTEGER, balance REAL)")
        c.execute("INSERT INTO accounts VALUES (1, 9.5)")
    empty, garbage = store_at("empty", b""), store_at("garbage", b"\x00" * 5000)
    good = tmp_path / "good"
    offline(tiny_clf, vx.datasets.shapes(3), good)
    no_cams = tmp_path / "no_cams"
    import shutil

    shutil.copytree(good, no_cams)
    with sqlite3.connect(no_cams / "run.sqlite") as c:
        c.execute("DROP TABLE cams")
    newer = tmp_path / "newer"
    shutil.copytree(good, newer)
    with sqlite3.connect(newer / "run.sqlite") as c:
        c.execute("UPDATE config SET value = '99' WHERE key = 'schema_version'")
    cases = [(foreign, "not a vlmxplain run store"), (garbage, "not a SQLite file"), (no_cams, "damaged"),
             (newer, "newer than this vlmxplain")]
    for d, message in cases:
        before = (d / "run.sqlite").read_bytes()
        for attempt in (lambda: vx.open_run(d), lambda: offline(tiny_clf, vx.datasets.shapes(3), d)):
            with pytest.raises(ValueError, match=message) as err:
                attempt()
            assert str(d / "run.sqlite") in str(err.value)
        assert (d / "run.sqlite").read_bytes() == before, d.name
    with pytest.raises(FileNotFoundError, match="empty file"):
        vx.open_run(empty)
    assert (empty / "run.sqlite").read_bytes() == b""


def test_database_errors_name_the_file(tiny_clf, tmp_path):
    run = offline(tiny_clf, vx.datasets.shapes(3), tmp_path / "run")
    with pytest.raises(sqlite3.OperationalError, match=str(tmp_path / "run" / "run.sqlite")):
        run.store._conn.execute("SELECT nothing FROM nowhere")
    with pytest.raises(Exception, match=str(tmp_path / "run" / "run.sqlite")):
        import pandas as pd

        pd.read_sql_query("SELECT nothing FROM nowhere", run.store._conn)


# ----------------------------------------------------------------------------- the judgment cache (11)
def test_a_failing_judgment_cache_warns_and_the_run_completes(tiny_clf, tmp_path):
    cache = vx.store.JudgmentCache(tmp_path / "cache.sqlite")
    cache._conn.execute("DROP TABLE cache")  # every lookup now fails, as on a damaged or full disk
    with pytest.warns(RuntimeWarning, match="judgment cache turned off"):
        run = offline(tiny_clf, vx.datasets.shapes(6), tmp_path / "run", cache=cache)
    assert len(run.table) == 6 and set(run.table["judge_status"]) == {"ok"} and cache.error
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="judgment cache turned off"):
        run = offline(tiny_clf, vx.datasets.shapes(6), tmp_path / "run2", cache=tmp_path / "blocked" / "c.sqlite")
    assert set(run.table["judge_status"]) == {"ok"}


# ----------------------------------------------------------------------------- CAM hooks (13)
def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("options, message", [({"bogus": 1}, "has no option 'bogus'"),
                                              ({"activations_and_grads": None}, "has no option"),
                                              ({"batch_size": "many"}, None)])
@pytest.mark.filterwarnings("ignore:scorecam runs one forward pass")
def test_bad_cam_options_release_the_hooks_before_the_error_is_raised(tiny_clf, options, message):
    image = vx.datasets.shapes(1)[0].image
    before = _hooks(tiny_clf.model)
    with pytest.raises((ValueError, TypeError), match=message) as err:
        vx.compute_cams(tiny_clf, [image], method="scorecam", method_options=options)
    assert err.value.__traceback__ is not None  # the error (and the CAM object its frames hold) is still alive
    assert _hooks(tiny_clf.model) == before
    ok = vx.compute_cams(tiny_clf, [image], method="scorecam", method_options={"batch_size": 8})
    assert ok.maps.shape[0] == 1 and _hooks(tiny_clf.model) == before


# ----------------------------------------------------------------------------- figures of odd ids (14, 16)
def test_dollar_signs_and_control_characters_in_ids_draw_as_plain_text(tmp_path):
    import io

    import matplotlib.pyplot as plt
    import torch

    from vlmxplain import viz

    names = ["$5 $6", "x$_^$", "ctl\x1b[31m\u202ex"]  # class names are data, drawn in every caption
    torch.manual_seed(0)
    clf = shapes_classifier(ShapesNet(3), names)
    rng = np.random.default_rng(0)
    for name in names:
        d = tmp_path / "data" / name
        d.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / "$1 x$_^$.png")
    run = offline(clf, vx.datasets.folder(tmp_path / "data"), tmp_path / "run")
    assert len(run.table) == 3
    fig = viz.plot_quadrant_gallery(run, per_quadrant=3)  # used to raise in mathtext on "$...$"
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    assert any("$5 $6" in t for t in titles) and any("x$_^$" in t for t in titles)
    assert not any(c in t for t in titles for c in "\x1b\u202e")
