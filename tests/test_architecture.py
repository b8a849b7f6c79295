"""The architecture holds: one-way layers (import-linter), no import cycle anywhere, a lazy
package root, and the contract really fails on a deliberate upward import."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def import_cycles(package: str) -> list[list[str]]:
    """Strongly connected components (size > 1, or a self-import) of the package's import graph."""
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for m in modules:
        if m not in index:
            visit(m)
    return cycles


def lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT), "--no-logo", "--no-cache", str(cwd / "pyproject.toml")], cwd=cwd,
                          capture_output=True, text=True, env=env)


def test_layer_contract_is_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "One-way layers KEPT" in result.stdout and "BROKEN" not in result.stdout


def test_no_import_cycles():
    assert import_cycles("vlmxplain") == []


@pytest.fixture()
def package_copy(tmp_path):
    """A copy of the package (and its contract) to break on purpose."""
    shutil.copytree(ROOT / "vlmxplain", tmp_path / "vlmxplain", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_deliberate_upward_import_breaks_the_contract(package_copy):
    core = package_copy / "vlmxplain" / "core" / "defaults.py"
    core.write_text(core.read_text() + "\nfrom ..widgets import MaskTuner  # upward on purpose\n")
    result = lint(package_copy, pythonpath=package_copy)
    assert result.returncode == 1
    assert "One-way layers BROKEN" in result.stdout
    assert "vlmxplain.core.defaults -> vlmxplain.widgets" in result.stdout


def test_a_deliberate_cycle_is_found(package_copy, monkeypatch):
    registry = package_copy / "vlmxplain" / "judges" / "registry.py"
    registry.write_text(registry.read_text() + "\nfrom . import offline  # a registry importing its plugin\n")
    monkeypatch.syspath_prepend(str(package_copy))
    for name in [m for m in sys.modules if m == "vlmxplain" or m.startswith("vlmxplain.")]:
        monkeypatch.delitem(sys.modules, name)
    cycles = import_cycles("vlmxplain")
    assert any({"vlmxplain.judges.registry", "vlmxplain.judges.offline"} <= set(c) for c in cycles), cycles


def test_package_root_is_lazy():
    code = ("import sys, time; t = time.perf_counter(); import vlmxplain as vx; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'sklearn', 'ipywidgets', 'matplotlib', 'timm', 'openai') if m in sys.modules]; "
            "print(dt, heavy); assert not heavy, heavy; assert dt < 0.5, dt; "
            "assert callable(vx.explain) and callable(vx.load_classifier) and vx.datasets.gallery; "
            "assert 'torch' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_root_name_is_an_attribute_error():
    import vlmxplain as vx

    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        vx.no_such_name  # noqa: B018
    assert {"explain", "open_run", "MaskTuner", "JudgeViewer", "plot_quadrant_matrix"} <= set(dir(vx))
