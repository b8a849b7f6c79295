"""The ``vlmxplain`` command: run a papermill-parameterised notebook, list or describe them.

    vlmxplain run NOTEBOOK [-p NAME VALUE ...] [--out DIR] [--name FILE]
    vlmxplain run NOTEBOOK --help        # that notebook's parameters
    vlmxplain params NOTEBOOK            # the same table
    vlmxplain list
    vlmxplain report RUN_DIR [-o FILE]   # a run's self-contained HTML report
    vlmxplain --version

NOTEBOOK is a path or the name of a bundled notebook (``pipeline``, ``quickstart``, ...). Values
are parsed as JSON where possible (``-p alpha 30``, ``-p limit null``), else kept as strings.
Every parameter of a bundled notebook is checked against its parameter model
(:data:`vlmxplain.params.NOTEBOOK_PARAMS`) before a kernel starts: a misspelt name or a bad value
exits with status 2 and one line naming the parameter and the closest valid name or value.
"""
from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import logging
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .core.params import ParamsModel, closest
from .params import NOTEBOOK_PARAMS, refuse_secret_parameters

#: The bundled notebooks ship inside the package (package data), so an installed wheel has them.
NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"
#: Exit status for a bad command line (unknown notebook, bad parameter): nothing was run.
USAGE_ERROR = 2


class UsageError(ValueError):
    """A bad command line, reported as one line before anything runs."""


def bundled_notebooks() -> list[str]:
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) if NOTEBOOK_DIR.is_dir() else []


def find_notebook(name: str) -> Path:
    """A notebook path, or a bundled notebook's name."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path
    bundled = NOTEBOOK_DIR / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if bundled.is_file():
        return bundled
    known = bundled_notebooks()
    raise FileNotFoundError(f"notebook: no notebook {name!r}{closest(Path(name).stem, known)}; "
                            f"bundled: {', '.join(known) or 'none found'}")


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parameter_model(source: Path) -> type[ParamsModel] | None:
    """The parameter model of a bundled notebook (None for a notebook of your own)."""
    if source.resolve().parent == NOTEBOOK_DIR and source.stem in NOTEBOOK_PARAMS:
        return NOTEBOOK_PARAMS[source.stem]
    return None


def notebook_parameter_names(source: Path) -> list[str]:
    """The names assigned in a notebook's ``parameters`` cell (read as JSON, no kernel)."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            names = []
            for node in ast.parse(text).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    return []


def check_parameters(source: Path, params: dict[str, Any]) -> None:
    """Raise :class:`UsageError` (one line) for the first bad parameter; no kernel, no model."""
    model = parameter_model(source)
    try:
        if model is not None:
            model.check(**params)
            return
    except ValueError as err:
        raise UsageError(str(err).splitlines()[0]) from None
    known = notebook_parameter_names(source)
    for name in params:
        if known and name not in known:
            raise UsageError(f"{name}: unknown parameter of {source.name}{closest(name, known)}; "
                             f"known: {', '.join(known)}")


def parameter_help(name: str) -> str:
    """A table of a notebook's parameters: name, default and what it is."""
    source = find_notebook(name)
    model = parameter_model(source)
    lines = [f"parameters of {source.stem} (vlmxplain run {source.stem} -p NAME VALUE):"]
    if model is None:
        lines += [f"  {n}" for n in notebook_parameter_names(source)]
        return "\n".join(lines)
    defaults = model.defaults()
    width = max(map(len, model.model_fields))
    for field_name, field in model.model_fields.items():
        default = json.dumps(defaults[field_name])
        lines.append(f"  {field_name:<{width}}  {default}" + (f"\n  {'':<{width}}    {field.description}"
                                                              if field.description else ""))
    return "\n".join(lines)


def notebook_parameters(source: Path, parameters: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """The checked parameters papermill gets: a bundled notebook writes its figures to ``out_dir``
    unless ``figures_dir`` is given. Raises :class:`UsageError` for a bad one."""
    params = dict(parameters)
    model = parameter_model(source)
    if model is not None and "figures_dir" in model.model_fields and "figures_dir" not in params:
        params["figures_dir"] = str(out_dir)
    check_parameters(source, params)
    return params


def executed_name(stem: str, out: Path) -> str:
    """``<notebook>-<UTC time>.ipynb``, never the name of an earlier run's notebook in ``out``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    name, n = f"{stem}-{stamp}.ipynb", 1
    while (out / name).exists():
        n += 1
        name = f"{stem}-{stamp}-{n}.ipynb"
    return name


def run_notebook(notebook: str | Path, parameters: dict[str, Any] | None = None, out_dir: str | Path = "figures",
                 *, output_name: str | None = None, progress: bool = True, cwd: str | Path | None = None) -> Path:
    """Check the parameters, then execute the notebook with papermill; returns the executed
    notebook's path in ``out_dir``. A bundled notebook's figures go to ``out_dir`` too, unless
    ``figures_dir`` is given. With ``progress``, cell outputs (training and explain progress)
    stream to stderr as they are printed."""
    source = find_notebook(str(notebook))
    params = notebook_parameters(source, parameters or {}, out_dir)

    import papermill as pm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / (output_name or executed_name(source.stem, out))
    if progress:
        _log_cell_output()
    with tempfile.TemporaryDirectory(prefix="vlmxplain-kernel-") as sockets:
        pm.execute_notebook(str(source), str(target), parameters=params, progress_bar=progress,
                            log_output=progress, cwd=str(cwd) if cwd is not None else None, kernel_name="python3",
                            kernel_manager_class=_ipc_kernel_manager(Path(sockets)),
                            store_widget_state=False)  # panels carry their own static HTML
    return target


def _ipc_kernel_manager(folder: Path) -> type:
    """A kernel manager talking to the kernel over local IPC sockets in ``folder`` (private to this
    run) instead of unencrypted TCP on 127.0.0.1 (and without ipykernel's warning about it), whose
    kernel keeps its threads on one malloc heap (see :mod:`vlmxplain.core.host_memory`)."""
    from jupyter_client.manager import AsyncKernelManager

    from .core.host_memory import child_environment

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport, self.ip = "ipc", str(folder / "kernel")

        async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
            cmd, kw = await super()._async_pre_start_kernel(**kw)
            kw["env"] = child_environment(kw.get("env"))  # one malloc heap for the kernel's threads
            return cmd, kw

    return IPCKernelManager


def _log_cell_output() -> None:
    """papermill logs each cell's output on its logger: show those lines on stderr, unadorned."""
    logger = logging.getLogger("papermill")
    if not any(getattr(h, "_vlmxplain", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_printed_output)
        handler._vlmxplain = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


_NOISE = re.compile(r"^(?:(?:Executing|Ending) Cell \d+-*|<IPython\.core\.display\.\w+ object>|Input Notebook: .*|"
                    r"Output Notebook: .*|Executing notebook with kernel: .*)$")


def _printed_output(record: logging.LogRecord) -> bool:
    """Keep what cells print (training and run progress); drop papermill's cell markers."""
    return not _NOISE.match(record.getMessage().strip())


def _failure_line(err: BaseException) -> str:
    """One line for a failed cell: papermill's error class and value, without the traceback."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {str(evalue).splitlines()[0] if evalue else ''}"
    return str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlmxplain", description="Explain image classifiers with CAMs and VLM judges.")
    parser.add_argument("--version", action="version", version=f"vlmxplain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", add_help=False, help="execute a papermill-parameterised notebook",
                         description="Execute a notebook; `vlmxplain run NOTEBOOK --help` lists its parameters.")
    run.add_argument("notebook", nargs="?", help="a .ipynb path or a bundled notebook name (pipeline, quickstart, ...)")
    run.add_argument("-h", "--help", action="store_true", help="show this help and the notebook's parameters")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--out", default="figures", help="where the executed notebook and the figures go (default: figures)")
    run.add_argument("--name", default=None, help="file name of the executed notebook (default: NOTEBOOK-TIME.ipynb)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar and no streamed cell output")
    params = sub.add_parser("params", help="list a notebook's parameters with defaults and descriptions")
    params.add_argument("notebook")
    sub.add_parser("list", help="list the bundled notebooks")
    rep = sub.add_parser("report", help="write a run's self-contained HTML report")
    rep.add_argument("run_dir", help="a run directory (it holds run.sqlite)")
    rep.add_argument("-o", "--output", default=None, help="the HTML file (default: RUN_DIR/report.html)")
    return parser


def write_report(run_dir: str, output: str | None) -> Path:
    """``vlmxplain report``: the run's HTML report (a missing run is a one-line usage error)."""
    from .store import open_run

    try:
        run = open_run(run_dir)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"run_dir: {str(err).splitlines()[0]}") from None
    from .reports import report

    return report(run, output or Path(run_dir) / "report.html")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(bundled_notebooks()))
            return 0
        if args.command == "report":
            print(f"vlmxplain: report written to {write_report(args.run_dir, args.output)}")
            return 0
        if args.command == "params":
            print(parameter_help(args.notebook))
            return 0
        if args.help or args.notebook is None:
            parser._subparsers._group_actions[0].choices["run"].print_help()  # noqa: SLF001
            if args.notebook is not None:
                print("\n" + parameter_help(args.notebook))
            return 0 if args.help else USAGE_ERROR
        params = {}
        for name, value in args.parameter:
            if name in params:
                raise UsageError(f"{name}: given twice")
            params[name] = parse_value(value)
        try:
            refuse_secret_parameters(params)  # before papermill writes them into the executed notebook
        except ValueError as err:
            raise UsageError(str(err)) from None
        executed = run_notebook(args.notebook, params, args.out, output_name=args.name, progress=not args.no_progress)
    except (FileNotFoundError, UsageError) as err:
        print(f"vlmxplain: {err}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's traceback
        print(f"vlmxplain: notebook failed: {_failure_line(err)}", file=sys.stderr)
        return 1
    print(f"vlmxplain: executed notebook written to {executed}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
