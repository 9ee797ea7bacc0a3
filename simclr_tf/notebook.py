"""Support for the teaching notebooks: the run mode, the set-up cell and shared run folders.

The notebooks in ``notebooks/`` run in one of three **modes**, chosen by the environment
variable ``SIMCLR_TF_MODE`` before Jupyter (or the test runner) starts:

* ``smoke``: a few hundred images and a few training steps, so that every notebook runs in
  seconds. Continuous integration uses it; the numbers it prints mean nothing.
* ``workshop`` (the default): the bundled CIFAR-10 sample (4,500 training and 1,000 test
  images) and the project's CPU recipe, sized so that the whole track computes for about a
  quarter of an hour on a 2-core CPU, most of it notebook 05's training run, and the
  pretrained encoder clearly beats random features.
* ``full``: the full CIFAR-10 data set and the paper's GPU recipe (ResNet-18, 1,000 epochs).

Everything that differs between modes lives in :class:`NotebookSettings`, which
:func:`setup` returns; the notebooks read their sizes from it instead of hard-coding them.
:func:`setup` also imports TensorFlow with its C++ start-up log kept out of the notebook
(:func:`startup_messages` returns it), so that a class sees no red text in the set-up cell.

Heavy notebooks share their results through a **run folder**, ``runs/<mode>/`` at the root of
the repository (or the folder named by ``SIMCLR_TF_RUNS_DIR``):

* ``runs/<mode>/pretrain/``: the pretraining run of notebook 05 (its ``encoder/`` is the
  exported SavedModel that notebooks 06 and 07 evaluate and reuse);
* ``runs/<mode>/projection_head/``: the short pretraining of notebook 03;
* ``runs/<mode>/fallback/``: a short run that 06 or 07 train when 05's encoder is absent;
* ``runs/<mode>/export/``: what notebook 07 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from simclr_tf.data.sampling import Split  # noqa: E402 (NumPy only: TensorFlow stays unloaded)

MODE_ENV_VAR = "SIMCLR_TF_MODE"
RUNS_DIR_ENV_VAR = "SIMCLR_TF_RUNS_DIR"
SHOW_STARTUP_ENV_VAR = "SIMCLR_TF_SHOW_STARTUP"
"""Set to 1 to let TensorFlow's start-up messages through to the set-up cell."""
MODES = ("smoke", "workshop", "full")
DEFAULT_MODE = "workshop"

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
"""The folder that holds ``simclr_tf/``, ``notebooks/`` and ``runs/``."""

MAIN_RUN = "pretrain"
FALLBACK_RUN = "fallback"


def current_mode() -> str:
    """The mode named by ``SIMCLR_TF_MODE`` (``"workshop"`` when it is unset or empty).

    Raises:
        ValueError: if the variable holds anything but smoke, workshop or full.
    """
    mode = os.environ.get(MODE_ENV_VAR, "").strip().lower() or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(
            f"{MODE_ENV_VAR} must be one of {', '.join(MODES)}; received "
            f"{MODE_ENV_VAR}={os.environ.get(MODE_ENV_VAR)!r}. Set it before starting Jupyter, "
            f"e.g. `{MODE_ENV_VAR}=smoke jupyter lab notebooks/`."
        )
    return mode


def runs_root() -> Path:
    """``SIMCLR_TF_RUNS_DIR`` if set, else ``runs/`` at the root of the repository."""
    override = os.environ.get(RUNS_DIR_ENV_VAR, "").strip()
    return Path(override).expanduser().resolve() if override else REPOSITORY_ROOT / "runs"


@dataclasses.dataclass(frozen=True)
class NotebookSettings:
    """Every size and length that depends on the mode.

    Attributes:
        mode: "smoke", "workshop" or "full".
        seed: seed of every random choice in the notebooks.
        run_dir: the mode's run folder, ``runs/<mode>``.
        dataset: the pretraining data: "sample" (bundled subset) or "cifar10" (full).
        images_per_class: training images per class kept for the notebooks (``None``: all);
            the test split keeps a fifth as many.
        pretrain_preset: name of the :mod:`simclr_tf.config` preset of the pretraining runs.
        main_epochs: epochs of notebook 05's run.
        short_epochs: epochs of the short runs (notebook 03, and 06/07 when 05's is absent).
        max_steps: cap on the steps of every pretraining run (0: no cap).
        linear_c_values: regularisation grid of the linear probes.
        knn_k: neighbours of the kNN classifier.
        label_fractions: label fractions of the few-label comparison in notebook 06.
        finetune_epochs: epochs of fine-tuning and of the supervised baseline (notebook 06).
        tsne_points: test images shown in the t-SNE plot.
        downstream_epochs: epochs of the downstream classifier of notebook 07.
        step_epochs: epochs notebook 05 trains with the learner's own training step.
        comparison_epochs: epochs of each method notebook 08 trains side by side.
        labels_per_class: the points of notebook 08's label-efficiency curve (0: all labels).
        probe_draws: seeded label draws per point of a linear-probe curve (notebook 08).
        scratch_draws: draws per point of the from-scratch curve (each trains a network).
        scratch_min_steps: fewest optimizer steps of any point of the from-scratch curve.
    """

    mode: str
    seed: int
    run_dir: Path
    dataset: str
    images_per_class: int | None
    pretrain_preset: str
    main_epochs: int
    short_epochs: int
    max_steps: int
    linear_c_values: tuple[float, ...]
    knn_k: int
    label_fractions: tuple[float, ...]
    finetune_epochs: int
    tsne_points: int
    downstream_epochs: int
    step_epochs: int
    comparison_epochs: int
    labels_per_class: tuple[int, ...]
    probe_draws: int
    scratch_draws: int
    scratch_min_steps: int

    @property
    def is_smoke(self) -> bool:
        """True in smoke mode, where numbers are meaningless and everything is tiny."""
        return self.mode == "smoke"

    def load_data(self) -> tuple[Split, Split]:
        """The mode's images: ``(x_train, y_train), (x_test, y_test)``, uint8 and int64.

        Smoke mode keeps a class-balanced, seeded subset of the bundled sample; workshop mode
        the whole sample; full mode the full CIFAR-10 (from ``SIMCLR_DATA_DIR``).
        """
        from simclr_tf.data.sampling import stratified_indices
        from simclr_tf.data.sources import load_splits

        (x_train, y_train), (x_test, y_test) = load_splits(self.dataset)
        if self.images_per_class is not None:
            keep = stratified_indices(y_train, self.images_per_class, self.seed)
            x_train, y_train = x_train[keep], y_train[keep]
            keep = stratified_indices(y_test, max(1, self.images_per_class // 5), self.seed)
            x_test, y_test = x_test[keep], y_test[keep]
        return (x_train, y_train), (x_test, y_test)

    def pretrain_config(self, run: str, short: bool = False, **overrides: Any):
        """The :class:`~simclr_tf.config.SimCLRConfig` of a pretraining run of the notebooks.

        Args:
            run: name of the run folder inside :attr:`run_dir` (e.g. "pretrain").
            short: use :attr:`short_epochs` instead of :attr:`main_epochs`.
            **overrides: any config field, applied last.

        Returns:
            A validated config whose ``out_dir`` is ``run_dir / run``.
        """
        from simclr_tf.config import preset

        epochs = self.short_epochs if short else self.main_epochs
        fields: dict[str, Any] = {
            "dataset": self.dataset,
            "epochs": epochs,
            "steps": self.max_steps,
            "seed": self.seed,
            "out_dir": str(self.run_dir / run),
            "verbose": 0 if self.is_smoke else 2,
        }
        if self.pretrain_preset == "cpu":
            # The warm-up must fit inside the run; shorter runs get a shorter warm-up.
            fields["warmup_epochs"] = min(1.0, epochs / 10)
        return preset(self.pretrain_preset, **{**fields, **overrides})


_MODE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {
        "dataset": "sample",
        "images_per_class": 32,
        "pretrain_preset": "smoke",
        "main_epochs": 1,
        "short_epochs": 1,
        "max_steps": 3,
        "linear_c_values": (1.0,),
        "knn_k": 10,
        "label_fractions": (0.25,),
        "finetune_epochs": 1,
        "tsne_points": 60,
        "downstream_epochs": 1,
        "step_epochs": 1,
        "comparison_epochs": 1,
        "labels_per_class": (1, 2),
        "probe_draws": 2,
        "scratch_draws": 1,
        "scratch_min_steps": 2,
    },
    "workshop": {
        "dataset": "sample",
        "images_per_class": None,
        "pretrain_preset": "cpu",
        "main_epochs": 80,
        "short_epochs": 4,
        "max_steps": 0,
        "linear_c_values": (1e-3, 1e-2, 1e-1, 1.0),
        "knn_k": 50,
        "label_fractions": (0.1,),
        "finetune_epochs": 10,
        "tsne_points": 1000,
        "downstream_epochs": 20,
        "step_epochs": 2,
        "comparison_epochs": 5,
        "labels_per_class": (1, 5, 25, 100, 0),
        "probe_draws": 5,
        "scratch_draws": 2,
        "scratch_min_steps": 100,
    },
    "full": {
        "dataset": "cifar10",
        "images_per_class": None,
        "pretrain_preset": "full",
        "main_epochs": 1000,
        "short_epochs": 100,
        "max_steps": 0,
        "linear_c_values": (1e-3, 1e-2, 1e-1, 1.0),
        "knn_k": 200,
        "label_fractions": (0.01, 0.1),
        "finetune_epochs": 30,
        "tsne_points": 2000,
        "downstream_epochs": 30,
        "step_epochs": 1,
        "comparison_epochs": 100,
        "labels_per_class": (1, 2, 5, 10, 20, 50, 100, 0),
        "probe_draws": 5,
        "scratch_draws": 3,
        "scratch_min_steps": 200,
    },
}


def settings(mode: str | None = None, seed: int = 0) -> NotebookSettings:
    """The settings of ``mode`` (by default the one ``SIMCLR_TF_MODE`` names).

    Raises:
        ValueError: for an unknown mode.
    """
    mode = current_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; received mode={mode!r}.")
    return NotebookSettings(
        mode=mode, seed=seed, run_dir=runs_root() / mode, **_MODE_SETTINGS[mode]
    )


_startup_messages: list[str] = []


def startup_messages() -> str:
    """What TensorFlow wrote while :func:`setup` started it (hidden from the set-up cell)."""
    return "".join(_startup_messages)


@contextlib.contextmanager
def _hidden_stderr():
    """Sends file descriptor 2 and ``sys.stderr`` to a temporary file for the duration.

    TensorFlow's C++ start-up messages (absl's "All log messages before
    absl::InitializeLog()", oneDNN, CUDA) are written straight to file descriptor 2 while the
    library loads and the devices are initialised; neither ``TF_CPP_MIN_LOG_LEVEL`` nor Python's
    ``sys.stderr`` sees them, and Jupyter shows them as a red block. The text is appended to
    ``_startup_messages``; if the body raises, it is printed, so that nothing is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    python_side = io.StringIO()
    failed = False
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_side):
                yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            text = log.read().decode("utf-8", "replace") + python_side.getvalue()
            _startup_messages.append(text)
            if failed:
                print(text, file=sys.stderr)


def setup(seed: int = 0) -> NotebookSettings:
    """The set-up cell of every notebook: mode, devices, seeds, and a quiet start.

    Imports TensorFlow and Keras and initialises the devices with TensorFlow's start-up
    messages hidden (see :func:`startup_messages`; set ``SIMCLR_TF_SHOW_STARTUP=1`` to see them
    in place), turns on GPU memory growth (so that several notebooks can share one GPU), seeds
    Python, NumPy and TensorFlow, and prints the mode, the hardware and the run folder. Call it
    before importing TensorFlow in a notebook, so that the import happens here.

    Args:
        seed: the seed of the notebook.

    Returns:
        The mode's :class:`NotebookSettings`.
    """
    chosen = settings(seed=seed)
    show = os.environ.get(SHOW_STARTUP_ENV_VAR, "").strip() not in ("", "0")
    with contextlib.nullcontext() if show else _hidden_stderr():
        import keras
        import tensorflow as tf

        from simclr_tf import runtime

        runtime.configure_devices()  # the CUDA probe (and its cuInit message) happens here
    tf.get_logger().setLevel("WARNING")  # keep TensorFlow's INFO lines out of the notebooks
    keras.utils.set_random_seed(seed)
    print(f"Mode: {chosen.mode} (set {MODE_ENV_VAR}=smoke|workshop|full before starting Jupyter)")
    print(runtime.device_summary())
    print(f"Seed: {seed}. Run folder: {chosen.run_dir}")
    hidden = startup_messages().strip()
    if hidden and not show:
        lines = len(hidden.splitlines())
        print(
            f"TensorFlow's {lines} start-up log lines are hidden: print(nb.startup_messages()) "
            f"shows them, or set {SHOW_STARTUP_ENV_VAR}=1 before starting Jupyter."
        )
    if chosen.is_smoke:
        print("Smoke mode: tiny data and a few steps. The numbers below only show that it runs.")
    return chosen


def standard_error(accuracy: float, count: int) -> float:
    """The binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy measured on ``count``
    test images: how much it would move, typically, on another test set of that size."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(int(count), 1))


def with_standard_error(accuracy: float, count: int) -> str:
    """``accuracy`` as a percentage with its standard error, e.g. ``"51.5 ± 1.6 %"``."""
    return f"{100 * accuracy:.1f} ± {100 * standard_error(accuracy, count):.1f} %"


def tensorboard(logdir: str | os.PathLike) -> None:
    """Shows TensorBoard on ``logdir`` inside the notebook, or says how to open it.

    In JupyterLab this runs ``%load_ext tensorboard`` and ``%tensorboard --logdir LOGDIR``
    (the server is started with this environment's ``tensorboard``, which need not be on the
    PATH). In smoke mode, or outside IPython, it only prints the command for a terminal.
    """
    logdir = os.fspath(logdir)
    binary = Path(sys.executable).with_name("tensorboard")
    if binary.is_file():
        os.environ.setdefault("TENSORBOARD_BINARY", str(binary))  # what %tensorboard starts
    command = f"{shlex.quote(sys.executable)} -m tensorboard.main --logdir {shlex.quote(logdir)}"
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None or current_mode() == "smoke":
        print(f"TensorBoard is not started in smoke mode. In a terminal:\n  {command}")
        return
    shell.run_line_magic("load_ext", "tensorboard")
    shell.run_line_magic("tensorboard", f"--logdir {shlex.quote(logdir)}")
    print(f"TensorBoard on {logdir}. From a terminal instead: {command}")


def start_fresh(run_dir: str | os.PathLike) -> Path:
    """Deletes a notebook's own run folder, so that its training starts from step 0.

    Only folders inside the runs root (``runs/`` or ``SIMCLR_TF_RUNS_DIR``) are deleted.

    Raises:
        ValueError: if ``run_dir`` lies outside the runs root.
    """
    path = Path(run_dir).resolve()
    root = runs_root().resolve()
    if root not in path.parents:
        raise ValueError(
            f"run_dir={os.fspath(run_dir)!r} is not inside the runs folder {root}; refusing to "
            "delete it."
        )
    if path.exists():
        shutil.rmtree(path)
        print(f"Removed the previous run in {path}")
    return path


def find_or_train_encoder(chosen: NotebookSettings) -> str:
    """The encoder notebook 05 exported, or a short run trained now when it is absent.

    Looks for ``run_dir/pretrain/encoder``; then for ``run_dir/fallback/encoder``; otherwise
    pretrains a short run (:attr:`NotebookSettings.short_epochs`) into ``run_dir/fallback`` with
    :func:`simclr_tf.train.pretrain` and exports its encoder there.

    Returns:
        The folder of the exported SavedModel.
    """
    for run in (MAIN_RUN, FALLBACK_RUN):
        encoder = chosen.run_dir / run / "encoder"
        if (encoder / "saved_model.pb").is_file():
            print(f"Using the encoder in {encoder}")
            return str(encoder)
    from simclr_tf.train import pretrain

    config = chosen.pretrain_config(FALLBACK_RUN, short=True, resume=True)
    print(
        f"No encoder from notebook 05 in {chosen.run_dir / MAIN_RUN}: pretraining a short run "
        f"({config.epochs} epochs of {config.encoder}) in {config.out_dir}. Run notebook 05 "
        "first to evaluate its longer run instead."
    )
    start = time.perf_counter()
    result = pretrain(config)
    print(f"Exported {result.encoder_path} after {time.perf_counter() - start:.0f} s")
    return result.encoder_path


class LiveTrainingPlot:
    """A training callback that redraws loss and accuracies in place every few steps.

    Pass it to :meth:`simclr_tf.pretrainer.Pretrainer.fit` as ``callbacks=[plot]``; it is called as
    ``plot(step, metrics)`` after every step. Outside Jupyter it does nothing visible.

    Args:
        total_steps: steps of the run (the x-axis range).
        every: redraw every this many steps.
    """

    def __init__(self, total_steps: int, every: int = 10) -> None:
        self.total_steps = max(1, int(total_steps))
        self.every = max(1, int(every))
        self.history: dict[str, list[float]] = {}
        self.steps: list[int] = []
        self._handle = None

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        self.steps.append(int(step))
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(float(value))
        if step % self.every == 0 or step == self.total_steps:
            self._draw()

    def _draw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        figure = self.figure()
        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)
        plt.close(figure)

    def figure(self):
        """The current curves as a matplotlib figure (loss left, accuracies right)."""
        import matplotlib.pyplot as plt

        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
        left.plot(self.steps, self.history.get("loss", []), color="tab:blue")
        left.set(xlabel="step", ylabel="NT-Xent loss", xlim=(0, self.total_steps))
        for name, label in (
            ("contrastive_accuracy", "contrastive accuracy"),
            ("probe_accuracy", "online probe accuracy"),
        ):
            values = self.history.get(name, [])
            if values and np.isfinite(values).any():
                right.plot(self.steps, values, label=label)
        right.set(xlabel="step", ylabel="accuracy", xlim=(0, self.total_steps), ylim=(0, 1))
        if right.lines:
            right.legend(loc="upper left")
        else:
            right.text(
                0.5,
                0.5,
                "no accuracies logged",
                ha="center",
                va="center",
                color="0.5",
                transform=right.transAxes,
            )
        figure.tight_layout()
        return figure


def show_images(
    images: Any,
    titles: list[str] | None = None,
    columns: int | None = None,
    size: float = 1.3,
    row_labels: list[str] | None = None,
):
    """Shows a grid of images (uint8 0..255 or float 0..1) and returns the figure.

    Args:
        images: ``[N, H, W, 3]`` array or tensor, or a list of ``[H, W, 3]`` images.
        titles: one title per image, or ``None``.
        columns: images per row (default: all in one row).
        size: side of one image, in inches.
        row_labels: a label written left of each row, or ``None``.
    """
    import matplotlib.pyplot as plt

    images = [np.asarray(image.numpy() if hasattr(image, "numpy") else image) for image in images]
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(size * columns, size * rows + 0.3 * bool(titles)), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(index < len(images))
        if index >= len(images):
            continue
        image = images[index]
        ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0.0, 1.0))
        if titles:
            ax.set_title(titles[index], fontsize=8)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=9)
    figure.tight_layout()
    return figure
