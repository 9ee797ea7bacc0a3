"""What happens around the training steps: checks, checkpoints, logs, progress.

:meth:`simclr_tf.pretrainer.Pretrainer.fit` only trains: for every batch it takes a step and then
tells its callbacks, which do everything else, in this order:

* :class:`DivergenceCheck` stops the run when the loss is no longer finite;
* :class:`Checkpointer` saves a checkpoint every ``checkpoint_every`` steps and at every
  epoch's end;
* :class:`CSVLogger` writes ``steps.csv`` and ``metrics.csv``;
* :class:`TensorBoardLogger` writes scalars and a few augmented views to ``logs/``;
* :class:`ProgressLogger` shows a progress bar on a terminal, one line per epoch elsewhere
  (a log file gets no carriage-return updates).

Your own callback subclasses :class:`Callback`, or is a plain function called as
``callback(step, metrics)`` after every step. A callback may set
``pretrainer.stop_training = True`` to end the run after the current step (the epoch is then
closed as usual: checkpoint, metrics row).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

import keras
import tensorflow as tf

from simclr_tf.runs import METRIC_COLUMNS, RunDirectory

if TYPE_CHECKING:
    from simclr_tf.pretrainer import Pretrainer

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "Checkpointer",
    "DivergenceCheck",
    "ProgressLogger",
    "StepFunction",
    "TensorBoardLogger",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "divergence_message",
    "format_epoch",
    "largest_weight",
]


class TrainingDivergedError(RuntimeError):
    """Raised when the loss or the weights stop being finite; the checkpoints on disk (all
    saved before) are left untouched."""


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by ``fit`` after Ctrl-C or SIGTERM, once the current step is checkpointed.

    Attributes:
        step: the step the checkpoint holds.
    """

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class Callback:
    """Base class of the training loop's callbacks; every hook does nothing by default.

    Attributes:
        pretrainer: the :class:`~simclr_tf.pretrainer.Pretrainer` being trained, set by ``fit``.
    """

    pretrainer: Pretrainer | None = None

    def set_pretrainer(self, pretrainer: Pretrainer) -> None:
        self.pretrainer = pretrainer

    def on_train_begin(self, step: int) -> None:
        """Before the first step; ``step`` is where the run starts (> 0 after a resume)."""

    def on_epoch_begin(self, epoch: int, steps: int, skip: int) -> None:
        """Before epoch ``epoch`` (0-based) of ``steps`` steps, the first ``skip`` already done."""

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        """After optimizer step ``step`` (1-based) with its metrics."""

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        """After epoch ``epoch`` with its ``metrics.csv`` row (averages, speed, quality)."""

    def on_train_end(self) -> None:
        """After the last step, also when the run stops early or fails."""


class StepFunction(Callback):
    """Wraps a plain function ``fn(step, metrics)`` as a callback of every step."""

    def __init__(self, fn: Callable[[int, dict[str, float]], None]) -> None:
        self.fn = fn

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self.fn(step, metrics)


class CallbackList(Callback):
    """Calls each hook of several callbacks, in order.

    Args:
        callbacks: :class:`Callback` instances or functions ``fn(step, metrics)``.
    """

    def __init__(self, callbacks: Iterable[Callback | Callable[..., Any]]) -> None:
        self.callbacks = [c if isinstance(c, Callback) else StepFunction(c) for c in callbacks]

    def set_pretrainer(self, pretrainer: Pretrainer) -> None:
        for callback in self.callbacks:
            callback.set_pretrainer(pretrainer)

    def on_train_begin(self, step: int) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(step)

    def on_epoch_begin(self, epoch: int, steps: int, skip: int) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, steps, skip)

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_step_end(step, metrics)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, row)

    def on_train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end()


class DivergenceCheck(Callback):
    """Raises :class:`TrainingDivergedError` as soon as the loss is NaN or infinite, before
    anything of that step is saved.

    Args:
        run: the run directory, whose checkpoints the message describes.
    """

    def __init__(self, run: RunDirectory) -> None:
        self.run = run

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if not math.isfinite(metrics["loss"]):
            raise TrainingDivergedError(
                divergence_message(f"The loss became {metrics['loss']}", step, self.run)
            )


WEIGHT_LIMIT = 1e8
"""Largest magnitude a trained weight may have before it counts as diverged: far above any
weight a converging run reaches, far below the float32 overflow that follows a divergence."""


def divergence_message(what: str, step: int, run: RunDirectory) -> str:
    """The message of a diverged run: what happened, what is on disk, what to do."""
    steps = run.checkpoint_steps()
    if steps:
        advice = (
            f"The last checkpoint on disk, step {steps[0]} in {run.checkpoints!r}, was saved "
            "before this and holds finite weights: lower --lr, raise --temperature or use "
            "--precision=float32, then run again with --resume."
        )
    else:
        advice = (
            f"No checkpoint was saved before this, so {run.path!r} holds nothing to resume: "
            "run again with a lower --lr, a higher --temperature or --precision=float32."
        )
    return f"{what} at step {step}. {advice}"


def largest_weight(variables: Iterable[tf.Variable]) -> float:
    """The largest absolute value among ``variables`` (NaN if any is NaN)."""
    largest = 0.0
    for variable in variables:
        value = float(tf.reduce_max(tf.abs(tf.cast(variable, tf.float32))))
        if not value <= largest:  # also NaN
            largest = value
    return largest


class Checkpointer(Callback):
    """Saves checkpoints every ``every`` steps (0: never mid-epoch) and at each epoch's end,
    only when every trainable weight is finite and below :data:`WEIGHT_LIMIT`.

    Args:
        manager: the run's ``tf.train.CheckpointManager``.
        every: steps between mid-epoch checkpoints.
        run: the run directory, whose checkpoints a divergence message describes.

    Raises:
        TrainingDivergedError: (from the hooks) instead of saving diverged weights.
    """

    def __init__(self, manager: tf.train.CheckpointManager, every: int, run: RunDirectory) -> None:
        self.manager = manager
        self.every = every
        self.run = run

    def save(self, step: int) -> None:
        """Saves the checkpoint of ``step`` (unless it is already on disk)."""
        if step in self.run.checkpoint_steps():
            return
        largest = largest_weight(self.pretrainer.trainable_variables) if self.pretrainer else 0.0
        if not largest < WEIGHT_LIMIT:
            raise TrainingDivergedError(
                divergence_message(
                    f"The weights diverged (largest magnitude {largest:.3g}); they were not saved",
                    step,
                    self.run,
                )
            )
        self.manager.save(checkpoint_number=step)

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if self.every and step % self.every == 0:
            self.save(step)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        self.save(int(row["step"]))


class CSVLogger(Callback):
    """Appends every step to ``steps.csv`` and every epoch to ``metrics.csv``."""

    def __init__(self, run: RunDirectory) -> None:
        self.run = run

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self.run.append_step(step, metrics)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        self.run.append_epoch(row)


class TensorBoardLogger(Callback):
    """TensorBoard scalars every ``every`` steps and per epoch, and the first step's views.

    Args:
        logdir: the run's ``logs/`` folder.
        every: steps between step scalars (the last step is always logged).
        total_steps: the run's last step.
    """

    def __init__(self, logdir: str, every: int, total_steps: int) -> None:
        self.logdir = logdir
        self.every = every
        self.total_steps = total_steps
        self.writer: tf.summary.SummaryWriter | None = None

    def on_train_begin(self, step: int) -> None:
        self.writer = tf.summary.create_file_writer(self.logdir)

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step % self.every and step != self.total_steps:
            return
        with self.writer.as_default(step=step):
            for name, value in metrics.items():
                if math.isfinite(value):
                    tf.summary.scalar(f"step/{name}", value)
        if step == 1 and self.pretrainer is not None:
            view1, view2 = self.pretrainer.example_views()
            with self.writer.as_default(step=0):
                tf.summary.image("augmented_views/view1", view1, max_outputs=4)
                tf.summary.image("augmented_views/view2", view2, max_outputs=4)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        with self.writer.as_default(step=int(row["step"])):
            for name in METRIC_COLUMNS[2:]:
                if math.isfinite(row[name]):
                    tf.summary.scalar(f"epoch/{name}", row[name])
        self.writer.flush()

    def on_train_end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def format_epoch(row: dict[str, float], epochs: int) -> str:
    """One human-readable line for an epoch's metrics."""
    text = (
        f"epoch {int(row['epoch'])}/{epochs}  step {int(row['step'])}  loss {row['loss']:.4f}  "
        f"contrastive_acc {row['contrastive_accuracy']:.3f}"
    )
    if math.isfinite(row.get("probe_accuracy", float("nan"))):
        text += f"  probe_acc {row['probe_accuracy']:.3f}"
    return text + f"  {row['images_per_second']:.0f} img/s  {row['seconds']:.0f}s"


class ProgressLogger(Callback):
    """Shows progress: a live bar on a terminal, one line per epoch on anything else.

    Args:
        verbose: 0 silent, 1 a progress bar (one line per epoch when ``stream`` is not a
            terminal, as ``keras.Model.fit(verbose=2)`` does in a log file), 2 one line per epoch.
        epochs: the run's number of epochs, for the lines.
        stream: where to write; ``sys.stdout`` by default.
    """

    def __init__(self, verbose: int, epochs: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        interactive = getattr(self.stream, "isatty", lambda: False)()
        self.bar_enabled = verbose == 1 and interactive
        self.lines_enabled = verbose == 2 or (verbose == 1 and not interactive)
        self.epochs = epochs
        self.bar: keras.utils.Progbar | None = None

    def on_epoch_begin(self, epoch: int, steps: int, skip: int) -> None:
        self.epoch = epoch
        self.bar = None
        if self.bar_enabled:
            self.bar = keras.utils.Progbar(
                steps, verbose=1, stateful_metrics=["lr", "img/s"], unit_name="step"
            )
            if skip:
                self.bar.update(skip)
        self.epoch_step = skip

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self.epoch_step += 1
        if self.bar is None:
            return
        values = [("loss", metrics["loss"]), ("contrastive_acc", metrics["contrastive_accuracy"])]
        if math.isfinite(metrics.get("probe_accuracy", float("nan"))):
            values.append(("probe_acc", metrics["probe_accuracy"]))
        values.append(("lr", metrics["learning_rate"]))
        values.append(("img/s", metrics.get("images_per_second", 0.0)))
        self.bar.update(self.epoch_step, values=values)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        if self.lines_enabled:
            print(format_epoch(row, self.epochs), file=self.stream, flush=True)
