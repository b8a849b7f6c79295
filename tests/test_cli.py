"""The CLI fails fast: a typo or bad value exits 2 with one line naming the parameter and the
closest valid name or value, before any kernel starts (and without loading torch)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlmxplain import cli

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def vlmxplain(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vlmxplain.cli", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "params,starts,suggests",
    [
        (["betta", "0.5"], "betta: unknown parameter", "did you mean 'beta'?"),
        (["beta", "1.5"], "beta:", "closest valid: 1"),
        (["beta", "high"], "beta:", "best 0.6"),
        (["data", "galery"], "data:", "did you mean 'gallery'?"),
        (["cam", "gradkam"], "cam:", "did you mean 'gradcam'?"),
        (["judge", "offline:faithfulnes"], "judge:", "did you mean 'offline:faithfulness'?"),
        (["judge", "offline:nonsense"], "judge:", "offline:insertion-deletion, offline:groundtruth, offline:faithfulness"),
        (["judge", "opena:gpt-4o-mini"], "judge:", "did you mean 'openai:gpt-4o-mini'?"),
        (["threshold", "7"], "threshold:", "closest valid: 5"),
        (["limit", "0"], "limit:", "closest valid: 1"),
        (["data", "shapes:n=abc"], "data:", "integer"),
        (["classifier", "resnet999"], "classifier:", "did you mean 'resnet50'?"),
        (["input_kind", "maskd"], "input_kind:", "did you mean 'masked'?"),
    ],
)
def test_a_bad_parameter_exits_with_one_line_naming_it(tmp_path, params, starts, suggests):
    result = vlmxplain("run", "pipeline", "-p", *params, "--out", str(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"vlmxplain: {starts}"), result.stderr
    assert suggests in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was written


def test_checking_starts_no_kernel_and_loads_no_torch():
    code = ("import sys; from vlmxplain.cli import main; rc = main(['run', 'pipeline', '-p', 'betta', '0.5']); "
            "print(rc, [m for m in ('torch', 'timm', 'papermill', 'jupyter_client', 'pytorch_grad_cam') "
            "if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.stdout.split(maxsplit=1) == ["2", "[]\n"], result.stdout + result.stderr


def test_every_bundled_notebook_checks_its_parameters(tmp_path):
    for name in cli.bundled_notebooks():
        with pytest.raises(cli.UsageError, match="^seed_typo: unknown parameter"):
            cli.notebook_parameters(cli.find_notebook(name), {"seed_typo": 1}, tmp_path)


def test_version_and_parameter_help():
    version = vlmxplain("--version")
    assert version.returncode == 0 and version.stdout.startswith("vlmxplain 0.")
    for args in (["params", "pipeline"], ["run", "pipeline", "--help"]):
        shown = vlmxplain(*args)
        assert shown.returncode == 0, shown.stderr
        for name in ("data", "classifier", "cam", "alpha", "beta", "judge", "threshold", "limit", "run_dir"):
            assert f"\n  {name} " in shown.stdout
        assert "sigmoid midpoint" in shown.stdout and '"offline:faithfulness"' in shown.stdout


def test_unknown_notebook_suggests_the_closest():
    result = vlmxplain("run", "pipline")
    assert result.returncode == 2 and "did you mean 'pipeline'?" in result.stderr


def test_own_notebook_is_checked_against_its_parameters_cell(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["size = 3\n", "name: str = 'x'\n"],
                     "outputs": [], "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps(nb))
    result = vlmxplain("run", str(path), "-p", "sise", "4")
    assert result.returncode == 2 and "sise: unknown parameter of mine.ipynb (did you mean 'size'?)" in result.stderr


def test_out_receives_the_figures_and_runs_never_overwrite_a_notebook(tmp_path):
    source = cli.find_notebook("pipeline")
    assert cli.notebook_parameters(source, {"limit": 2}, tmp_path)["figures_dir"] == str(tmp_path)
    assert cli.notebook_parameters(source, {"figures_dir": "elsewhere"}, tmp_path)["figures_dir"] == "elsewhere"
    first = cli.executed_name("pipeline", tmp_path)
    (tmp_path / first).write_text("{}")
    second = cli.executed_name("pipeline", tmp_path)
    assert first != second and first.startswith("pipeline-") and second.endswith(".ipynb")


def test_readme_sequence_gets_one_run_directory_per_data():
    """`run pipeline -p data shapes` then papermill with `-p data gallery`: two run stores, not one clash."""
    from vlmxplain.params import PipelineParams

    shapes, gallery = PipelineParams.check(data="shapes"), PipelineParams.check(data="gallery", limit=4)
    assert shapes.run_dir != gallery.run_dir
