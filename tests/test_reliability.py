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
from vlmxplain.store import RunStore


@pytest.fixture(scope="module")
def tiny_clf():
    """An untrained ShapesNet: fast, and these tests are about bookkeeping, not predictions."""
    import torch

    torch.manual_seed(0)
    return shapes_classifier(ShapesNet(3), ["circle", "square", "triangle"])


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
