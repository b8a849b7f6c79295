"""Packaging: environment.yml names the same dependencies as pyproject.toml; the CLI works."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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
