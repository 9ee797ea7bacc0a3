"""The teaching notebooks: committed clean, built to the track's pattern, and runnable.

* Every committed notebook has no outputs and no execution counts (readable diffs).
* Every notebook has the same skeleton: "What you will learn", one set-up cell calling
  ``nb.setup``, markdown before every code cell, a summary and references; the technical ones
  (01 to 07) have an exercise whose checker exists and whose solution is in
  ``notebooks/solutions/solutions.py``.
* The ``python3`` kernel that nbclient starts runs this interpreter (the repository's ``.venv``).
* Each notebook executes from top to bottom in smoke mode without an error (marked
  ``notebook``; ``pytest -m "not notebook"`` skips them). They run in order and share one run
  folder, so that 06 and 07 reuse the encoder that 05 trained, as in a workshop. The set-up
  cell writes nothing to stderr (TensorFlow's start-up log is hidden), and no cell prints a
  Markdown table as raw text.
* Every image and local link in the notebooks' Markdown resolves to a file inside the folder
  that ``make lab`` serves (the repository root), and every notebook states its pacing, as
  ``notebooks/README.md`` does.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
TRACK = (
    "00_motivation",
    "01_augmentation",
    "02_base_encoder",
    "03_projection_head",
    "04_contrastive_loss",
    "05_training",
    "06_evaluation",
    "07_export",
    "08_what_simclr_buys",
)
CHECKER_CALL = re.compile(r"st\.exercises\.(check_\w+)\(")
RAW_TABLE = re.compile(r"^\|.*\|\s*\n\|[ :|-]+\|\s*$", re.MULTILINE)
# Markdown images and links, and HTML <img src=...>: (target) of ![..](target) / [..](target).
MARKDOWN_TARGET = re.compile(
    r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img[^>]+src=\"([^\"]+)\""
)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_notebooks = _load(ROOT / "scripts" / "run_notebooks.py", "run_notebooks")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _ids(paths):
    return [path.stem for path in paths]


def test_the_track_has_its_nine_notebooks():
    assert tuple(path.stem for path in NOTEBOOKS) == TRACK


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_without_outputs(path):
    notebook = _read(path)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; strip them with "
        "`python scripts/run_notebooks.py --strip`."
    )
    assert notebook.metadata["kernelspec"]["name"] == run_notebooks.KERNEL_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_follows_the_track_pattern(path):
    cells = _read(path).cells
    markdown = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    assert cells[0].cell_type == "markdown" and "**What you will learn**" in cells[0].source
    assert "## Summary" in markdown
    assert "## References" in markdown
    code_cells = [index for index, cell in enumerate(cells) if cell.cell_type == "code"]
    setup = [index for index in code_cells if "nb.setup(" in cells[index].source]
    assert len(setup) == 1 and setup[0] == code_cells[0], "one set-up cell, the first code cell"
    assert "import simclr_tf as st" in cells[setup[0]].source
    unexplained = [index for index in code_cells if cells[index - 1].cell_type != "markdown"]
    assert not unexplained, f"code cells {unexplained} have no markdown cell before them"


def _local_targets(markdown: str) -> list[str]:
    targets = [first or second for first, second in MARKDOWN_TARGET.findall(markdown)]
    return [
        target.split("#")[0]
        for target in targets
        if not re.match(r"^[a-z]+:", target) and not target.startswith("#")
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_images_and_links_resolve_inside_the_served_folder(path):
    """JupyterLab serves the repository root (``make lab``); a target outside it is a 404."""
    markdown = "\n".join(cell.source for cell in _read(path).cells if cell.cell_type == "markdown")
    for target in _local_targets(markdown):
        resolved = (path.parent / target).resolve()
        assert resolved.is_file(), f"{path.name}: {target} does not exist"
        assert ROOT in resolved.parents, f"{path.name}: {target} lies outside {ROOT}"


def test_link_finder_sees_images_links_and_html():
    markdown = (
        '![a](../imgs/x.png) [b](solutions/README.md#top) <img src="y.png"> [c](https://e.org)'
    )
    assert _local_targets(markdown) == ["../imgs/x.png", "solutions/README.md", "y.png"]


def test_make_lab_serves_the_repository_root():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lab = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "jupyter lab $(LAB_FLAGS)" in lab
    assert "--notebook-dir=. " in makefile and "--allow-root" in makefile


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_states_its_pacing_like_the_readme(path):
    header = " ".join(_read(path).cells[0].source.split())
    assert "**Time:** about " in header and "minutes of class" in header
    assert "Compute (measured" in header and "PACING_" not in header
    readme = (NOTEBOOKS_DIR / "README.md").read_text(encoding="utf-8")
    pacing = readme.split("## Pacing", 1)[1].split("\n## ", 1)[0]
    assert f"`{path.stem}`" in pacing


TECHNICAL = [path for path in NOTEBOOKS if path.stem != "00_motivation"]


@pytest.mark.parametrize("path", TECHNICAL, ids=_ids(TECHNICAL))
def test_has_an_exercise_with_checker_and_solution(path):
    from simclr_tf import exercises

    cells = _read(path).cells
    stubs = [cell for cell in cells if "raise NotImplementedError" in cell.source]
    assert stubs, "a technical notebook has at least one exercise stub"
    checkers = set()
    for cell in stubs:
        checkers.update(CHECKER_CALL.findall(cell.source))
    assert checkers, "every exercise stub is checked in the same cell"
    solutions = (NOTEBOOKS_DIR / "solutions" / "solutions.py").read_text(encoding="utf-8")
    for checker in checkers:
        assert hasattr(exercises, checker), f"simclr_tf.exercises has no {checker}"
        header = f"# {path.stem}, st.exercises.{checker}:"
        assert header in solutions, f"no solution headed {header!r} in solutions.py"


def test_kernel_runs_this_interpreter(tmp_path):
    """nbclient's ``python3`` kernel must be the repository's environment, not another Python."""
    from nbclient import NotebookClient

    probe = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")]
    )
    NotebookClient(probe, timeout=120, kernel_name=run_notebooks.KERNEL_NAME).execute()
    printed = probe.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.prefix).resolve()


@pytest.fixture(scope="session")
def smoke_runs_dir(tmp_path_factory) -> Path:
    """One run folder shared by the notebooks of a test session (05 trains, 06/07 reuse)."""
    return tmp_path_factory.mktemp("notebook_runs")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_runs_in_smoke_mode(path, smoke_runs_dir):
    notebook, _ = run_notebooks.execute_notebook(
        path, "smoke", timeout=600, runs_dir=str(smoke_runs_dir)
    )
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    failed_checks = [text for text in texts if text.startswith("FAILED ")]
    assert not failed_checks, f"a checker failed on the notebook's own code: {failed_checks}"
    assert any("Mode: smoke" in text for text in texts)
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    red = [output.get("text", "") for output in setup.outputs if output.get("name") == "stderr"]
    assert not red, f"the set-up cell wrote to stderr: {red}"
    raw_tables = [text for text in texts if RAW_TABLE.search(text or "")]
    assert not raw_tables, (
        f"a Markdown table printed as text (display it as Markdown): {raw_tables}"
    )


def _with_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every exercise stub replaced by an import of its solution."""
    for cell in notebook.cells:
        if cell.cell_type != "code" or "raise NotImplementedError" not in cell.source:
            continue
        lines = cell.source.splitlines()
        start = next(i for i, line in enumerate(lines) if re.match(r"(def|class) \w+", line))
        name = re.match(r"(?:def|class) (\w+)", lines[start]).group(1)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
            len(lines),
        )
        lines[start:end] = [f"from solutions.solutions import {name}", ""]
        cell.source = "\n".join(lines)
    return notebook


DEPENDENT = [path for path in NOTEBOOKS if path.stem[:2] in ("01", "04", "05", "07", "08")]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", DEPENDENT, ids=_ids(DEPENDENT))
def test_runs_with_the_solutions_in_smoke_mode(path, smoke_runs_dir, tmp_path):
    """With every exercise solved, the cells that use the learner's answer run, and pass."""
    solved = tmp_path / path.name
    nbformat.write(_with_solutions(_read(path)), solved)
    (tmp_path / "solutions").symlink_to(NOTEBOOKS_DIR / "solutions")
    notebook, _ = run_notebooks.execute_notebook(
        solved, "smoke", timeout=600, runs_dir=str(smoke_runs_dir)
    )
    verdicts = [
        output["data"]["text/plain"]
        for cell in notebook.cells
        if "st.exercises.check_" in cell.source
        for output in cell.get("outputs", [])
        if "text/plain" in output.get("data", {})
    ]
    assert verdicts and all(verdict.startswith("PASSED") for verdict in verdicts), verdicts
    printed = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "has not passed its checker yet" not in printed


# -- simclr_tf.notebook: modes, settings, run folders ------------------------------------------


def test_mode_defaults_to_workshop_and_rejects_unknown_names(monkeypatch):
    from simclr_tf import notebook as nb

    monkeypatch.delenv(nb.MODE_ENV_VAR, raising=False)
    assert nb.current_mode() == "workshop"
    monkeypatch.setenv(nb.MODE_ENV_VAR, " Smoke ")
    assert nb.current_mode() == "smoke"
    monkeypatch.setenv(nb.MODE_ENV_VAR, "fast")
    with pytest.raises(ValueError, match="SIMCLR_TF_MODE.*smoke, workshop, full.*'fast'"):
        nb.current_mode()
    with pytest.raises(ValueError, match="mode="):
        nb.settings("fast")


@pytest.mark.parametrize("mode", ["smoke", "workshop", "full"])
def test_every_mode_gives_valid_configs_inside_its_run_folder(mode, monkeypatch, tmp_path):
    from simclr_tf import notebook as nb

    monkeypatch.setenv(nb.RUNS_DIR_ENV_VAR, str(tmp_path))
    chosen = nb.settings(mode, seed=3)
    assert chosen.run_dir == tmp_path / mode
    main = chosen.pretrain_config("pretrain")
    short = chosen.pretrain_config("projection_head", short=True, checkpoint_every=7)
    assert main.epochs == chosen.main_epochs and short.epochs == chosen.short_epochs
    assert short.epochs <= main.epochs
    assert short.checkpoint_every == 7 and main.seed == 3
    assert Path(main.out_dir) == tmp_path / mode / "pretrain"
    assert main.dataset == chosen.dataset
    if mode == "full":
        assert (main.encoder, main.epochs, main.optimizer) == ("resnet18", 1000, "lars")


def test_smoke_data_is_a_small_class_balanced_subset():
    import numpy as np

    from simclr_tf import notebook as nb

    (x_train, y_train), (x_test, y_test) = nb.settings("smoke").load_data()
    per_class = nb.settings("smoke").images_per_class
    assert x_train.shape == (10 * per_class, 32, 32, 3) and x_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [per_class] * 10
    assert np.bincount(y_test).tolist() == [per_class // 5] * 10
    (again, _), _ = nb.settings("smoke").load_data()
    assert np.array_equal(again, x_train)


@pytest.mark.full_data
def test_full_mode_loads_the_full_cifar10(cifar10_dir):
    from simclr_tf import notebook as nb

    (x_train, _), (x_test, _) = nb.settings("full").load_data()
    assert len(x_train) == 50_000 and len(x_test) == 10_000


def test_start_fresh_deletes_only_inside_the_runs_folder(monkeypatch, tmp_path):
    from simclr_tf import notebook as nb

    monkeypatch.setenv(nb.RUNS_DIR_ENV_VAR, str(tmp_path / "runs"))
    run = tmp_path / "runs" / "smoke" / "pretrain"
    (run / "checkpoints").mkdir(parents=True)
    assert nb.start_fresh(run) == run and not run.exists()
    outside = tmp_path / "precious"
    outside.mkdir()
    with pytest.raises(ValueError, match="refusing"):
        nb.start_fresh(outside)
    assert outside.exists()


def test_find_or_train_encoder_reuses_notebook_05s_export(monkeypatch, tmp_path):
    from simclr_tf import notebook as nb

    monkeypatch.setenv(nb.RUNS_DIR_ENV_VAR, str(tmp_path))
    chosen = nb.settings("smoke")
    for run in (nb.FALLBACK_RUN, nb.MAIN_RUN):
        encoder = chosen.run_dir / run / "encoder"
        encoder.mkdir(parents=True)
        (encoder / "saved_model.pb").write_bytes(b"")
    assert nb.find_or_train_encoder(chosen) == str(chosen.run_dir / nb.MAIN_RUN / "encoder")


def test_live_plot_and_image_grid_draw():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from simclr_tf import notebook as nb

    plot = nb.LiveTrainingPlot(total_steps=4, every=10)
    for step in range(1, 4):
        plot(
            step,
            {
                "loss": 5.0 - step,
                "contrastive_accuracy": 0.1 * step,
                "probe_accuracy": float("nan"),
            },
        )
    figure = plot.figure()
    left, right = figure.axes
    assert len(left.lines) == 1 and len(right.lines) == 1  # the NaN probe is not drawn
    images = np.zeros((5, 8, 8, 3), np.uint8)
    grid = nb.show_images(images, titles=list("abcde"), columns=3)
    assert len(grid.axes) == 6 and [ax.get_title() for ax in grid.axes[:5]] == list("abcde")
