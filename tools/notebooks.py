"""The bundled notebooks: reviewable sources in ``notebooks/*.py`` (jupytext percent format),
shipped as ``vlmxplain/notebooks/*.ipynb`` (package data).

    python tools/notebooks.py sync [NAME ...]     # write the .ipynb from the sources
    python tools/notebooks.py check               # exit 1 if a committed .ipynb drifted from its source
    python tools/notebooks.py execute [NAME ...]  # sync, run once (papermill, scratch folder) and keep
                                                  # the outputs of the `# NBVAL_CHECK_OUTPUT` cells

One generator, one policy: cell ids are stable (``<name>-<index>``), the ``parameters`` cell is
written from the notebook's parameter model (:data:`vlmxplain.params.NOTEBOOK_PARAMS`: defaults
and descriptions), and the checked outputs of unchanged cells are kept from the current file.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any

import jupytext
import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
TARGETS = ROOT / "vlmxplain" / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT"
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def _literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _annotation(value: Any, field: Any) -> str:
    if value is None or type(None) in typing.get_args(field.annotation):
        inner = ("int" if int in typing.get_args(field.annotation) or _is_int(field.annotation)
                 else "float" if _is_float(field.annotation) else "str")
        return f'"Optional[{inner}]"'
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _is_int(annotation: Any) -> bool:
    return any(typing.get_origin(a) is typing.Annotated and typing.get_args(a)[0] is int
               for a in typing.get_args(annotation))


def _is_float(annotation: Any) -> bool:
    return any(a is float or (typing.get_origin(a) is typing.Annotated and typing.get_args(a)[0] is float)
               for a in typing.get_args(annotation))


def parameters_source(name: str) -> str:
    """The ``parameters`` cell of notebook ``name``, from its parameter model."""
    from vlmxplain.params import NOTEBOOK_PARAMS

    model = NOTEBOOK_PARAMS[name]
    defaults = model.defaults()
    lines = []
    for field_name, field in model.model_fields.items():
        value = defaults[field_name]
        line = f"{field_name}: {_annotation(value, field)} = {_literal(value)}"
        if field.description:
            line += f"  # {field.description}"
        lines.append(line)
    return "\n".join(lines)


def build(name: str) -> nbf.NotebookNode:
    """The notebook as its source and parameter model say (no outputs)."""
    nb = jupytext.read(SOURCES / f"{name}.py", fmt="py:percent")
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            source = parameters_source(name) if "parameters" in tags else cell.source
            new = nbf.v4.new_code_cell(source, metadata=metadata)
        else:
            new = nbf.v4.new_markdown_cell(cell.source, metadata=metadata)
        cells.append(new)
    for i, cell in enumerate(cells):
        cell.id = f"{name.replace('_', '-')}-{i:02d}"
    return nbf.v4.new_notebook(cells=cells, metadata=METADATA)


def keep_checked_outputs(target: nbf.NotebookNode, executed: nbf.NotebookNode, strict: bool = True) -> None:
    """Copy the outputs of `# NBVAL_CHECK_OUTPUT` cells from an executed copy (matched by source)."""
    done = {c.source: c for c in executed.cells if c.cell_type == "code"}
    for cell in target.cells:
        if cell.cell_type == "code" and CHECK in cell.source:
            if cell.source not in done and not strict:
                continue
            ran = done[cell.source]
            cell.outputs = [o for o in ran.outputs if o.get("name") != "stderr"]
            cell.execution_count = ran.execution_count


def _shape(nb: nbf.NotebookNode) -> list[tuple]:
    return [(c.id, c.cell_type, c.source, c.get("metadata", {}).get("tags", [])) for c in nb.cells]


def drift(name: str) -> str | None:
    """Why the committed notebook differs from its source, or None."""
    target = TARGETS / f"{name}.ipynb"
    if not target.is_file():
        return f"{target.relative_to(ROOT)} is missing"
    built, committed = build(name), nbf.read(target, as_version=4)
    if _shape(built) != _shape(committed):
        for a, b in zip(_shape(built), _shape(committed)):
            if a != b:
                return f"{name}: cell {a[0]} differs from its source"
        return f"{name}: {len(built.cells)} cells in the source, {len(committed.cells)} committed"
    missing = [c.id for c in committed.cells if c.cell_type == "code" and CHECK in c.source and not c.get("outputs")]
    if missing:
        return f"{name}: checked cells without outputs (run `python tools/notebooks.py execute {name}`): {missing}"
    return None


def names() -> list[str]:
    return sorted(p.stem for p in SOURCES.glob("*.py"))


def sync(name: str, execute: bool = False) -> Path:
    nb = build(name)
    target = TARGETS / f"{name}.ipynb"
    if execute:
        import papermill as pm

        scratch = Path(tempfile.mkdtemp(prefix=f"vx-{name}-"))
        try:
            nbf.write(nb, scratch / target.name)
            pm.execute_notebook(str(scratch / target.name), str(scratch / "executed.ipynb"), cwd=str(scratch),
                                kernel_name="python3", progress_bar=False)
            keep_checked_outputs(nb, nbf.read(scratch / "executed.ipynb", as_version=4))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    elif target.is_file():
        keep_checked_outputs(nb, nbf.read(target, as_version=4), strict=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbf.write(nb, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("sync", "check", "execute"))
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    chosen = args.names or names()
    if args.command == "check":
        problems = [p for p in map(drift, chosen) if p]
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for name in chosen:
        path = sync(name, execute=args.command == "execute")
        print("wrote", path.relative_to(ROOT), file=sys.stderr)
        problem = drift(name)
        if problem:
            print(problem, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
