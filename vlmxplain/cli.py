"""``vlmxplain run NOTEBOOK [-p NAME VALUE ...] [--out DIR]``: a thin layer over papermill.

NOTEBOOK is a path or the name of a bundled notebook (``pipeline``, ``quickstart``, ...).
Values are parsed as JSON where possible (``-p alpha 30``, ``-p limit null``), else strings.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

#: The bundled notebooks ship inside the package (package data), so an installed wheel has them.
NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"


def find_notebook(name: str) -> Path:
    """A notebook path, or a bundled notebook's name."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path
    bundled = NOTEBOOK_DIR / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if bundled.is_file():
        return bundled
    known = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) if NOTEBOOK_DIR.is_dir() else []
    raise FileNotFoundError(f"notebook: no notebook {name!r}; bundled: {', '.join(known) or 'none found'}")


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_notebook(notebook: str | Path, parameters: dict[str, Any] | None = None, out_dir: str | Path = "figures",
                 *, output_name: str | None = None, progress: bool = True, cwd: str | Path | None = None) -> Path:
    """Execute a notebook with papermill; returns the executed notebook's path in ``out_dir``."""
    import papermill as pm

    source = find_notebook(str(notebook))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / (output_name or f"{source.stem}.executed.ipynb")
    pm.execute_notebook(str(source), str(target), parameters=parameters or {}, progress_bar=progress,
                        cwd=str(cwd) if cwd is not None else None, kernel_name="python3",
                        store_widget_state=False)  # panels carry their own static HTML
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vlmxplain", description="Explain image classifiers with CAMs and VLM judges.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a papermill-parameterised notebook")
    run.add_argument("notebook", help="a .ipynb path or a bundled notebook name (pipeline, quickstart, ...)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--out", default="figures", help="where the executed notebook goes (default: figures)")
    run.add_argument("--name", default=None, help="file name of the executed notebook")
    run.add_argument("--no-progress", action="store_true")
    sub.add_parser("list", help="list the bundled notebooks")
    args = parser.parse_args(argv)
    if args.command == "list":
        for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
            print(path.stem)
        return 0
    params = {name: parse_value(value) for name, value in args.parameter}
    from .params import refuse_secret_parameters

    try:
        refuse_secret_parameters(params)  # before papermill writes them into the executed notebook
    except ValueError as err:
        print(f"vlmxplain: {err}", file=sys.stderr)
        return 2
    try:
        executed = run_notebook(args.notebook, params, args.out, output_name=args.name, progress=not args.no_progress)
    except FileNotFoundError as err:
        print(f"vlmxplain: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's traceback
        print(f"vlmxplain: notebook failed: {err}", file=sys.stderr)
        return 1
    print(f"vlmxplain: executed notebook written to {executed}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
