"""The run directory: what a pretraining run writes, where, and the rules that protect it.

A run directory holds::

    config.json      the configuration of the run (SimCLRConfig.save)
    checkpoints/     tf.train.CheckpointManager files (models, optimizer, step)
    logs/            TensorBoard scalars and a few augmented views
    metrics.csv      one row per epoch (METRIC_COLUMNS)
    steps.csv        one row per step (STEP_COLUMNS)
    encoder/         the exported SavedModel (see simclr_tf.export)

Two rules: completed work is never overwritten (a folder with checkpoints is continued only
with ``resume``), and a run is continued only with the architecture it was trained with
(:func:`check_resume`). Rows that a killed run wrote after its last checkpoint are dropped
when it resumes (:meth:`RunDirectory.truncate_logs`), so the CSV files always describe the
steps the checkpoint holds.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from simclr_tf.config import SimCLRConfig

__all__ = [
    "ARCHITECTURE_FIELDS",
    "METRIC_COLUMNS",
    "STEP_COLUMNS",
    "RunDirectory",
    "check_resume",
    "read_metrics",
]

METRIC_COLUMNS = (
    "epoch",
    "step",
    "loss",
    "contrastive_accuracy",
    "probe_accuracy",
    "learning_rate",
    "images_per_second",
    "seconds",
    "alignment",
    "uniformity",
    "embedding_std",
    "loss_scale",
    "skipped_steps",
)
"""Columns of ``metrics.csv``, one row per epoch."""

STEP_COLUMNS = (
    "step",
    "loss",
    "contrastive_accuracy",
    "probe_accuracy",
    "learning_rate",
    "loss_scale",
    "skipped_steps",
)
"""Columns of ``steps.csv``, one row per step."""

ARCHITECTURE_FIELDS = (
    "encoder",
    "width",
    "stem",
    "representation_dim",
    "image_size",
    "projection_layers",
    "projection_hidden_dim",
    "projection_dim",
)
"""Config fields that shape the checkpoint's variables: a run cannot resume with others."""


class RunDirectory:
    """The files of one run directory (see the module docstring).

    Args:
        path: the run directory; it and its ``checkpoints/`` folder are created if missing.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.logs = os.path.join(self.path, "logs")
        self.metrics = os.path.join(self.path, "metrics.csv")
        self.steps = os.path.join(self.path, "steps.csv")
        self.config = os.path.join(self.path, "config.json")
        self.encoder = os.path.join(self.path, "encoder")
        os.makedirs(self.checkpoints, exist_ok=True)

    def has_checkpoint(self) -> bool:
        """True when a checkpoint has been written (completed work that must not be lost)."""
        return tf.train.latest_checkpoint(self.checkpoints) is not None

    def truncate_logs(self, step: int) -> None:
        """Drops the CSV rows written after ``step`` (they came from a run that was killed)."""
        _truncate_csv(self.steps, STEP_COLUMNS, step)
        _truncate_csv(self.metrics, METRIC_COLUMNS, step)

    def append_step(self, step: int, metrics: dict[str, float]) -> None:
        """Adds the row of one step to ``steps.csv``."""
        _append_csv(self.steps, STEP_COLUMNS, {"step": step, **metrics})

    def append_epoch(self, row: dict[str, float]) -> None:
        """Adds the row of one epoch to ``metrics.csv``."""
        _append_csv(self.metrics, METRIC_COLUMNS, row)


def check_resume(config: SimCLRConfig, run: RunDirectory) -> None:
    """Refuses to start over a finished or interrupted run, or to resume it with another
    architecture.

    Raises:
        FileExistsError: if the run has checkpoints and ``config.resume`` is false.
        ValueError: if ``config`` differs from the run's ``config.json`` in an
            :data:`ARCHITECTURE_FIELDS` field.
    """
    if run.has_checkpoint() and not config.resume:
        raise FileExistsError(
            f"{config.out_dir!r} already holds a run's checkpoints. Pass --resume to continue it, "
            "or choose a new --out_dir."
        )
    if not (config.resume and os.path.exists(run.config)):
        return
    previous = SimCLRConfig.load(run.config)
    changed = [
        name for name in ARCHITECTURE_FIELDS if getattr(previous, name) != getattr(config, name)
    ]
    if changed:
        raise ValueError(
            "Cannot resume with a different architecture; these fields differ from "
            f"{run.config}: "
            + ", ".join(
                f"{name}={getattr(config, name)!r} (was {getattr(previous, name)!r})"
                for name in changed
            )
        )


def _append_csv(path: str, columns: Sequence[str], row: dict[str, Any]) -> None:
    new = not os.path.exists(path)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({name: _csv_value(row.get(name)) for name in columns})


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _row_step(row: dict[str, str]) -> int | None:
    try:
        return int(row["step"])
    except (KeyError, TypeError, ValueError):
        return None


def _keep(row_step: int | None, step: int) -> bool:
    return row_step is not None and row_step <= step


def _truncate_csv(path: str, columns: Sequence[str], step: int) -> None:
    """Keeps the rows of steps up to ``step``; rows whose step cannot be read are dropped."""
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = [row for row in csv.DictReader(handle) if _keep(_row_step(row), step)]
    temporary = f"{path}.tmp"
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a run's ``metrics.csv`` into one float array per column (empty cells are NaN).

    Args:
        path: the ``metrics.csv`` file, or the run directory that holds it.

    Returns:
        ``{column: float array [epochs]}``.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if it has no rows.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No metrics file at {path!r}: pass a run directory of python -m simclr_tf.train "
            "or its metrics.csv."
        )
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows yet: train for at least one epoch.")
    return {column: np.array([_number(row[column]) for row in rows]) for column in rows[0]}


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")
