"""Support for the panel tests: the demo run with a hostile judgment, Chromium, Jupyter servers.

- :func:`build_demo_run` / :func:`plant_hostile_judgment`: the offline demo run, with one judge
  description that carries HTML and script (VLM text is untrusted and must show as text);
- :func:`require_chromium`: the Debian Chromium binary, or a skip (a failure when ``CI`` is set);
- :class:`NotebookServer`: JupyterLab or Voila on 127.0.0.1 with isolated Jupyter dirs, stopped
  with every process it started;
- :func:`open_browser` / :func:`lab_run_notebook`: headless Chromium via Playwright, offline.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "panels.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("VX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
HOSTILE_SAMPLE = "chelsea"
HOSTILE_DESCRIPTION = 'A tabby cat. <img src=x onerror="window.__vx_xss=1"> <script>window.__vx_xss=2</script>'
HOSTILE_JUSTIFICATION = "<b>bold claim</b> & <a href='javascript:window.__vx_xss=3'>link</a>"
HOSTILE_RAW = '{"description": "<img src=x onerror=\\"window.__vx_xss=4\\">", "score": 3}'


# --------------------------------------------------------------------------- the demo run
def build_demo_run(run_dir: str | Path, clf=None):
    """The offline demo run: EfficientNet-Lite0 on the 8 gallery photos, offline judge, no cache."""
    import vlmxplain as vx

    clf = clf if clf is not None else vx.load_classifier("efficientnet_lite0")
    return vx.explain(clf, vx.datasets.gallery(), run_dir=run_dir, cache=False, progress=False, verbose=False)


def plant_hostile_judgment(run, sample_id: str = HOSTILE_SAMPLE) -> None:
    """Replace one judgment's texts with HTML/script, keeping its score (the quadrants stay)."""
    from vlmxplain.core.records import Judgment

    view = run.view
    rows = run.store.judgments(view.judge.judge, view.judge.prompt_version, view.alpha, view.beta)
    row = rows[rows["id"] == sample_id].iloc[-1]
    judgment = Judgment(
        judge_id=row["judge"], prompt_version=row["prompt_version"], status="ok", score=float(row["score"]),
        description=HOSTILE_DESCRIPTION, justification=HOSTILE_JUSTIFICATION, raw=HOSTILE_RAW,
        parse_path="structured", input_tokens=123, output_tokens=45, latency_s=0.5,
    )
    run.store.put_judgment(sample_id, judgment, alpha=row["alpha"], beta=row["beta"], cache_key=row["cache_key"],
                           cached=False)


# --------------------------------------------------------------------------- chromium
def require_chromium() -> str:
    """The Chromium binary; skip with a clear message when absent (fail when ``CI`` is set)."""
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
               "(Debian package; never `playwright install`) to run the real-browser panel tests")
    if os.environ.get("CI"):
        pytest.fail(message + " — required in CI", pytrace=False)
    pytest.skip(message)


def _allow_local(route) -> None:
    url = route.request.url
    if url.startswith(("http://127.0.0.1", "blob:", "data:")):
        route.continue_()
    else:
        route.abort()


@contextmanager
def open_browser(executable: str) -> Iterator:
    """A headless Chromium context that reaches nothing but 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", _allow_local)
            yield context
        finally:
            browser.close()


def screenshot(target, name: str, folder: Path | None = None) -> Path:
    """Save a screenshot of a page (full page) or of one element (a locator) as a test artifact
    (in ``folder``, else :data:`ARTIFACTS`)."""
    folder = ARTIFACTS if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    if hasattr(target, "goto"):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(settings_dir: Path) -> None:
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, value in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


class NotebookServer:
    """JupyterLab (``kind='lab'``) or Voila (``kind='voila'``) serving a copy of a notebook.

    Everything it writes goes under ``workdir``; ``stop()`` ends the server and every process
    it started (kernels included), by their ids.
    """

    def __init__(self, kind: str, notebook: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        if kind not in ("lab", "voila"):
            raise ValueError(f"kind: 'lab' or 'voila', got {kind!r}")
        self.kind, self.workdir = kind, Path(workdir)
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.root = self.workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.notebook = self.root / notebook.name
        shutil.copy(notebook, self.notebook)
        dirs = {name: self.workdir / name for name in ("config", "data", "runtime", "ipython", "settings",
                                                      "workspaces", "tmp")}
        for d in dirs.values():
            d.mkdir(exist_ok=True)
        _lab_settings(dirs["settings"])
        self.env = {
            **os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]), "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "TMPDIR": str(dirs["tmp"]), "JUPYTER_PLATFORM_DIRS": "1", "TQDM_DISABLE": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / f"{kind}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "lab":
            cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-root")
            return cmd
        return [sys.executable, "-m", "voila", str(self.notebook), "--no-browser", "--Voila.ip=127.0.0.1",
                f"--Voila.port={self.port}", "--Voila.port_retries=0", f"--Voila.token={self.token}",
                "--show_tracebacks=True"]

    def start(self, timeout: float = 60) -> "NotebookServer":
        log = open(self.log, "wb")
        self.proc = subprocess.Popen(self._command(), cwd=self.root, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        url = f"{self.base_url}/api/status?token={self.token}" if self.kind == "lab" else \
            f"{self.base_url}/voila/static/voila.js?token={self.token}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.kind} server not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the server (it shuts its kernels down), then kill whatever of ours is left."""
        if self.proc is None or self.proc.poll() is not None:
            return
        import psutil

        try:
            ours = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            ours = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        _, alive = psutil.wait_procs(ours, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)

    def __enter__(self) -> "NotebookServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- JupyterLab driving
def lab_run_notebook(page, server: NotebookServer, timeout_ms: int = 60_000, attempts: int = 3) -> None:
    """Open the served notebook in Lab, wait for a live idle kernel, run all cells."""
    page.goto(f"{server.base_url}/lab/tree/{server.notebook.name}?token={server.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(
        """() => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
                   const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                   return !!k && k.status === 'idle'; }""", timeout=timeout_ms)
    for _ in range(attempts):
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:  # the prompts turn to [*] or [n] once the cells are really queued
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
                        .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""", timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - retry: the kernel was not really ready
            continue
    raise RuntimeError("JupyterLab: run-all did not start the cells")
