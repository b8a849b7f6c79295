"""Packaging: environment.yml names the same dependencies as pyproject.toml; the CLI works."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_env = {_name(d) for d in pip_deps if not d.startswith("-e")}
    from_pyproject = {_name(d) for d in project["dependencies"]}
    assert from_env == from_pyproject, (from_env ^ from_pyproject)
    assert any(str(d).startswith("python>=3.10") for d in env["dependencies"])
    assert project["requires-python"] == ">=3.10"


def test_cli_lists_bundled_notebooks_and_rejects_unknown_ones():
    listed = subprocess.run([sys.executable, "-m", "vlmxplain.cli", "list"], capture_output=True, text=True, check=True)
    assert "pipeline" in listed.stdout.split()
    bad = subprocess.run([sys.executable, "-m", "vlmxplain.cli", "run", "no-such-notebook"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "no notebook 'no-such-notebook'" in bad.stderr and "pipeline" in bad.stderr


def test_committed_notebooks_match_their_sources():
    """notebooks/*.py (jupytext) are the sources; the shipped .ipynb must not drift from them."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), "check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_notebook_parameters_cells_come_from_the_parameter_models():
    """Each notebook's parameters cell defines exactly its model's fields, with its defaults."""
    import nbformat

    from vlmxplain.params import NOTEBOOK_PARAMS

    for name, model in NOTEBOOK_PARAMS.items():
        nb = nbformat.read(ROOT / "vlmxplain" / "notebooks" / f"{name}.ipynb", as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, name
        namespace: dict = {}
        exec(cells[0].source, namespace)  # noqa: S102 - our own notebook
        declared = {k: v for k, v in namespace.items() if not k.startswith("__")}
        assert list(declared) == list(model.model_fields), name
        assert declared == model.defaults(), name
        checked = model.check(**declared).as_dict()
        assert checked == {**model.defaults(), "run_dir": checked["run_dir"]}, name  # run_dir None is derived
        assert checked["run_dir"], name


def _layered_venv(where: Path) -> Path:
    """A fresh virtualenv that sees this environment's dependencies (not its vlmxplain): the
    project venv's site-packages as a plain path entry, so its editable-install hook never runs."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.timeout(600)
def test_wheel_in_a_clean_venv_lists_and_runs_the_notebooks(tmp_path):
    import shutil

    source, dist = tmp_path / "source", tmp_path / "dist"  # build from a copy: the checkout stays clean
    shutil.copytree(ROOT / "vlmxplain", source / "vlmxplain", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(source)], check=True, capture_output=True)
    wheel = next(dist.glob("vlmxplain-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert {f"vlmxplain/notebooks/{n}.ipynb" for n in ("pipeline", "quickstart", "shortcut_bias", "sweep",
                                                         "agreement")} <= set(names)
    python = _layered_venv(tmp_path / "venv")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a source tree on the path is not the wheel
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, env=clean)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([str(python), "-c", "import vlmxplain; print(vlmxplain.__file__)"], cwd=empty,
                           capture_output=True, text=True, check=True, env=clean).stdout
    assert str(tmp_path / "venv") in where  # the installed wheel, not the source checkout
    cli = tmp_path / "venv" / "bin" / "vlmxplain"
    listed = subprocess.run([str(cli), "list"], cwd=empty, capture_output=True, text=True, check=True,
                            env=clean).stdout.split()
    assert {"pipeline", "quickstart", "shortcut_bias", "sweep", "agreement"} <= set(listed)
    env = {**clean, "TQDM_DISABLE": "1", "VLMXPLAIN_CACHE": str(tmp_path / "cache.sqlite")}
    ran = subprocess.run([str(cli), "run", "pipeline", "-p", "limit", "2", "--no-progress", "--out", "out"], cwd=empty,
                         capture_output=True, text=True, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (empty / "runs" / "pipeline" / "gallery-auto-gradcam" / "run.sqlite").is_file()
    assert len(list((empty / "out").glob("pipeline-*.png"))) == 3  # --out receives the figures too
    assert len(list((empty / "out").glob("pipeline-*.ipynb"))) == 1
