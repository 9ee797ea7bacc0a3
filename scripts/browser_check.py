"""Open every notebook in a real browser, run it, and check what an attendee would see.

Starts JupyterLab the way ``make lab`` does (the repository root served, on 127.0.0.1, a free
port and a random token), opens each notebook in headless Chromium, runs all its cells in
smoke mode and fails if

* a cell ends with an error;
* the set-up cell (the first code cell) shows anything on stderr, the red block that
  TensorFlow's start-up log used to make;
* an image does not load (a figure outside the served folder is a 404, a broken icon);
* a cell prints a Markdown table as raw text instead of displaying it.

Other stderr output is listed as a warning. A screenshot of every screenful of every notebook
is saved, so that a person can look at them::

    .venv/bin/python scripts/browser_check.py                 # all notebooks
    .venv/bin/python scripts/browser_check.py 00 05 --out shots/

The browser is Debian's ``chromium`` (``apt-get install -y chromium``), driven by Playwright
(``pip install playwright``, in requirements-dev.txt); ``playwright install`` is not needed:
the script points Playwright at the system browser (``--chromium``, default
``/usr/bin/chromium``). The kernels get ``SIMCLR_TF_MODE=smoke``, a temporary run folder and
this checkout on ``PYTHONPATH``; ``TF_CPP_MIN_LOG_LEVEL`` is removed from their environment,
as it is in an attendee's JupyterLab. Exit status: 0 when every notebook passes, 1 otherwise,
2 when JupyterLab or the browser cannot start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
RAW_TABLE = re.compile(r"^\|.*\|\s*\n\|[ :|-]+\|\s*$", re.MULTILINE)
SETTINGS = {  # JupyterLab user settings: render every cell, never save, no news pop-up
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
# The notebook panel of one path (the argument), found among the open tabs, so that a tab
# that JupyterLab restores or activates on its own never takes its place.
FIND_PANEL = """(path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content
        && widget.content.model) return widget;
  }
  return null;
}"""
# The state of that notebook, read from JupyterLab's own model (exposed to the page).
NOTEBOOK_STATE = f"""(path) => {{
  const panel = ({FIND_PANEL})(path);
  if (!panel) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  for (const cell of panel.content.model.cells) {{
    const json = cell.toJSON();
    cells.push({{type: json.cell_type, count: json.execution_count ?? null,
                outputs: json.outputs || [], source: [].concat(json.source).join('')}});
  }}
  return {{kernel: kernel ? kernel.status : 'none', cells: cells}};
}}"""
# Makes that notebook the current one and runs all its cells.
RUN_ALL = f"""async (path) => {{
  const panel = ({FIND_PANEL})(path);
  window.jupyterapp.shell.activateById(panel.id);
  await new Promise(resolve => setTimeout(resolve, 300));
  if (window.jupyterapp.shell.currentWidget !== panel) return false;
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
  return true;
}}"""
# Shuts the notebook's kernel down and closes it unsaved: the files on disk stay as committed.
CLOSE_UNSAVED = f"""async (path) => {{
  const panel = ({FIND_PANEL})(path);
  if (!panel) return;
  await panel.sessionContext.shutdown();
  panel.context.model.dirty = false;
  panel.close();
  await new Promise(resolve => setTimeout(resolve, 500));
  if (!panel.isDisposed) panel.dispose();
}}"""
BROKEN_IMAGES = """() => Array.from(document.querySelectorAll('.jp-Notebook img'))
  .filter(img => img.complete && img.naturalWidth === 0)
  .map(img => img.getAttribute('src').slice(0, 120))"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(port: int, token: str, work: Path) -> subprocess.Popen:
    """JupyterLab on the repository root, with its own settings, workspace and run folders."""
    settings = work / "settings"
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(
        SIMCLR_TF_MODE="smoke",
        SIMCLR_TF_RUNS_DIR=str(work / "runs"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
    )
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(work / "jupyter.log", "w", encoding="utf-8")  # noqa: SIM115 - lives with the server
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_lab(base: str, token: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"JupyterLab did not answer at {base} within {timeout:.0f} s")


def _text(output: dict) -> str:
    text = output.get("text", "")
    if not text:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def problems_of(state: dict, broken: list[str]) -> tuple[list[str], list[str]]:
    """(failures, warnings) of an executed notebook's state and its broken images."""
    failures, warnings = [], []
    code_cells = [index for index, cell in enumerate(state["cells"]) if cell["type"] == "code"]
    setup = code_cells[0] if code_cells else None
    for index in code_cells:
        cell = state["cells"][index]
        if cell["count"] is None:
            failures.append(f"cell {index} did not run")
        for output in cell["outputs"]:
            if output.get("output_type") == "error":
                failures.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr":
                line = f"cell {index} stderr: {_text(output).strip()[:300]!r}"
                (failures if index == setup else warnings).append(line)
            if RAW_TABLE.search(_text(output)):
                failures.append(f"cell {index} prints a Markdown table as raw text")
    failures += [f"broken image: {source}" for source in broken]
    return failures, warnings


def run_notebook(page, base: str, token: str, path: Path, shots: Path, timeout: float) -> dict:
    """Opens, runs and screenshots one notebook; returns its failures and warnings."""
    relative = path.relative_to(ROOT).as_posix()
    # A workspace of its own, reset: only this notebook's tab opens (the default workspace
    # would restore every notebook opened before it, each with a kernel).
    page.goto(
        f"{base}/lab/workspaces/{path.stem}/tree/{relative}?reset&token={token}",
        wait_until="domcontentloaded",
    )
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
    page.wait_for_function(
        f"(path) => {{ const s = ({NOTEBOOK_STATE})(path); return s && s.kernel === 'idle'; }}",
        arg=relative,
        timeout=120_000,
    )
    deadline = time.monotonic() + timeout
    failures, started, tries = [], None, 0
    while started is None and tries < 3 and time.monotonic() < deadline:
        tries += 1
        if page.evaluate(RUN_ALL, relative):
            started = _wait_until(page, relative, _has_started, time.monotonic() + 60)
        if started is None:
            page.wait_for_timeout(2000)
    finished = None
    if started is None:
        failures.append(f"Run All did not start the notebook's cells ({tries} tries)")
    else:
        finished = _wait_until(page, relative, _has_finished, deadline)
        if finished is None:
            failures.append(f"did not finish within {timeout:.0f} s")
    state = finished or page.evaluate(NOTEBOOK_STATE, relative)
    page.wait_for_timeout(1500)  # let the last images decode
    broken = page.evaluate(BROKEN_IMAGES)
    found, warnings = problems_of(state, broken)
    failures += found
    save_screens(page, shots / path.stem)
    page.evaluate(CLOSE_UNSAVED, relative)
    return {"failures": failures, "warnings": warnings}


def _code_cells(state: dict) -> list[dict]:
    return [cell for cell in state["cells"] if cell["type"] == "code"]


def _has_started(state: dict) -> bool:
    """The kernel is running a cell, or one has run."""
    return state["kernel"] == "busy" or any(c["count"] is not None for c in _code_cells(state))


def _has_finished(state: dict) -> bool:
    """The kernel is idle and every code cell has run, or one ended with an error."""
    cells = _code_cells(state)
    errored = any(o.get("output_type") == "error" for c in cells for o in c["outputs"])
    return state["kernel"] == "idle" and (errored or all(c["count"] is not None for c in cells))


def _wait_until(page, relative: str, condition, deadline: float) -> dict | None:
    """Polls the notebook's state every 2 s; returns the first state that meets ``condition``,
    or None at the deadline."""
    while time.monotonic() < deadline:
        time.sleep(2)
        state = page.evaluate(NOTEBOOK_STATE, relative)
        if condition(state):
            return state
    return None


def save_screens(page, prefix: Path) -> None:
    """One PNG per screenful of the notebook, top to bottom."""
    scroller = (
        "(document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
        " || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook'))"
    )
    height = page.evaluate(
        f"() => {{ const s = {scroller}; return [s.scrollHeight, s.clientHeight]; }}"
    )
    total, screen = height
    position, index = 0, 1
    while True:
        page.evaluate(f"() => {{ {scroller}.scrollTop = {position}; }}")
        page.wait_for_timeout(300)
        page.screenshot(path=f"{prefix}-{index:02d}.png")
        if position + screen >= total:
            break
        position += screen - 40
        index += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="Notebooks by number or name prefix.")
    parser.add_argument("--out", default=str(ROOT / "runs" / "browser_check"), help="Screenshots.")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--timeout", type=float, default=900, help="Seconds per notebook.")
    args = parser.parse_args(argv)
    selected = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        selected = [p for p in selected if any(p.stem.startswith(s) for s in args.notebooks)]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("error: Playwright is missing: pip install -r requirements-dev.txt", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"error: no browser at {args.chromium}: apt-get install -y chromium", file=sys.stderr)
        return 2
    shots = Path(args.out)
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    committed = {path: path.read_bytes() for path in selected}
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    results = {}
    with tempfile.TemporaryDirectory(prefix="browser_check_") as work:
        server = start_lab(port, token, Path(work))
        try:
            wait_for_lab(base, token, server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                for path in selected:
                    start = time.perf_counter()
                    print(f"{path.name} ...", end=" ", flush=True)
                    results[path.stem] = run_notebook(page, base, token, path, shots, args.timeout)
                    verdict = "FAILED" if results[path.stem]["failures"] else "ok"
                    print(f"{verdict} ({time.perf_counter() - start:.0f} s)", flush=True)
                    for line in results[path.stem]["failures"]:
                        print(f"  FAIL {line}", flush=True)
                    for line in results[path.stem]["warnings"]:
                        print(f"  warn {line}", flush=True)
                browser.close()
        except RuntimeError as error:
            print(f"error: {error}; see the server log above", file=sys.stderr)
            print((Path(work) / "jupyter.log").read_text(encoding="utf-8")[-3000:], file=sys.stderr)
            return 2
        finally:
            server.terminate()
            server.wait(timeout=30)
    for path, content in committed.items():
        if path.read_bytes() != content:  # never expected: the check must not save notebooks
            path.write_bytes(content)
            results.setdefault(path.stem, {"failures": [], "warnings": []})["failures"].append(
                "JupyterLab saved the notebook during the check; the file was put back"
            )
    (shots / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    failed = [name for name, result in results.items() if result["failures"]]
    print(f"screenshots in {shots}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
