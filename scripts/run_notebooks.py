"""Execute the teaching notebooks in a mode, or strip their outputs.

The notebooks in ``notebooks/`` are committed without outputs. This script runs them top to
bottom in a Jupyter kernel (``python3``, which nbclient starts with this interpreter), the way
an instructor would in JupyterLab, and reports the wall time of each:

    .venv/bin/python scripts/run_notebooks.py --mode smoke            # all, outputs discarded
    .venv/bin/python scripts/run_notebooks.py --mode workshop 05 06   # by number or name
    .venv/bin/python scripts/run_notebooks.py --mode workshop --write executed/
                                          # keep the executed copies (with outputs) in executed/
    .venv/bin/python scripts/run_notebooks.py --strip                 # remove outputs in place
    .venv/bin/python scripts/run_notebooks.py --check                 # fail if any has outputs

The mode reaches the kernel through the environment variable ``SIMCLR_TF_MODE``; the run
folders go to ``runs/<mode>/`` unless ``--runs_dir`` (``SIMCLR_TF_RUNS_DIR``) says otherwise.
Notebooks are run in order, so that 06 and 07 find the encoder that 05 trained. The exit status
is 1 if any notebook fails (or, with ``--check``, has outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
MODES = ("smoke", "workshop", "full")
KERNEL_NAME = "python3"


def list_notebooks(selection: list[str] | None = None) -> list[Path]:
    """The track's notebooks in order, optionally only those whose name starts with a selector.

    Raises:
        ValueError: if a selector matches no notebook.
    """
    notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return notebooks
    chosen = []
    for selector in selection:
        matches = [path for path in notebooks if path.stem.startswith(Path(selector).stem)]
        if not matches:
            names = ", ".join(path.stem for path in notebooks)
            raise ValueError(f"no notebook matches {selector!r}; the notebooks are {names}.")
        chosen += [path for path in matches if path not in chosen]
    return sorted(chosen)


def has_outputs(notebook: nbformat.NotebookNode) -> bool:
    """True if any code cell has outputs or an execution count."""
    return any(
        cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
        for cell in notebook.cells
    )


def strip_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Removes outputs and execution counts from every code cell (in place) and returns it."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def execute_notebook(
    path: Path, mode: str, timeout: int = 1800, runs_dir: str | None = None
) -> tuple[nbformat.NotebookNode, float]:
    """Runs a notebook in a fresh ``python3`` kernel, with ``notebooks/`` as working folder.

    Args:
        path: the notebook.
        mode: value of ``SIMCLR_TF_MODE`` for the kernel.
        timeout: seconds allowed per cell.
        runs_dir: value of ``SIMCLR_TF_RUNS_DIR`` for the kernel, or None to keep the default.

    Returns:
        ``(executed notebook, wall seconds)``.

    Raises:
        nbclient.exceptions.CellExecutionError: if a cell raises.
    """
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    saved = {name: os.environ.get(name) for name in ("SIMCLR_TF_MODE", "SIMCLR_TF_RUNS_DIR")}
    os.environ["SIMCLR_TF_MODE"] = mode  # the kernel inherits this process's environment
    if runs_dir is not None:
        os.environ["SIMCLR_TF_RUNS_DIR"] = str(Path(runs_dir).resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Execute the teaching notebooks in a mode, or strip their outputs."
    )
    parser.add_argument(
        "notebooks", nargs="*", help="Notebooks by number or name prefix (default: all)."
    )
    parser.add_argument("--mode", choices=MODES, default="smoke", help="SIMCLR_TF_MODE to use.")
    parser.add_argument(
        "--write",
        metavar="FOLDER",
        help="Write the executed notebooks, with outputs, into FOLDER ('.' for in place: do "
        "not commit those).",
    )
    parser.add_argument("--strip", action="store_true", help="Strip outputs in place; no run.")
    parser.add_argument("--check", action="store_true", help="Fail if a notebook has outputs.")
    parser.add_argument("--runs_dir", help="Run folder root for the kernel (SIMCLR_TF_RUNS_DIR).")
    parser.add_argument("--timeout", type=int, default=1800, help="Seconds allowed per cell.")
    parser.add_argument("--json", metavar="FILE", help="Also write the timings as JSON to FILE.")
    args = parser.parse_args(argv)
    try:
        notebooks = list_notebooks(args.notebooks)
    except ValueError as error:
        parser.error(str(error))

    if args.strip or args.check:
        dirty = []
        for path in notebooks:
            notebook = nbformat.read(path, as_version=4)
            if has_outputs(notebook):
                dirty.append(path.name)
                if args.strip:
                    nbformat.write(strip_outputs(notebook), path)
        verb = "stripped" if args.strip else "have outputs"
        print(f"{len(dirty)} notebook(s) {verb}: {', '.join(dirty) or '-'}")
        return 1 if (args.check and dirty) else 0

    from nbclient.exceptions import CellExecutionError

    timings: dict[str, float | None] = {}
    failed = []
    for path in notebooks:
        print(f"{path.name} ({args.mode}) ...", end=" ", flush=True)
        try:
            notebook, seconds = execute_notebook(path, args.mode, args.timeout, args.runs_dir)
        except CellExecutionError as error:
            print("FAILED")
            print(str(error)[-3000:], file=sys.stderr)
            failed.append(path.name)
            timings[path.stem] = None
            continue
        timings[path.stem] = seconds
        print(f"{seconds:.1f} s")
        if args.write:
            folder = Path(args.write)
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, folder / path.name)
    total = sum(value for value in timings.values() if value is not None)
    print(
        f"total: {total:.1f} s ({total / 60:.1f} min) for {len(timings)} notebook(s) in "
        f"{args.mode} mode; failed: {', '.join(failed) or 'none'}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"mode": args.mode, "seconds": timings, "total": total}, indent=2) + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
