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

import contextlib
import csv
import errno
import json
import math
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from simclr_tf.config import SimCLRConfig

__all__ = [
    "ARCHITECTURE_FIELDS",
    "CHECKPOINT_FIELDS",
    "CheckpointError",
    "DiskFullError",
    "RunLockedError",
    "METRIC_COLUMNS",
    "STEP_COLUMNS",
    "RunDirectory",
    "check_resume",
    "error_summary",
    "is_disk_full",
    "restore_checkpoint",
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
"""Config fields that shape the encoder and head: they define what a run's encoder is."""

CHECKPOINT_FIELDS = (*ARCHITECTURE_FIELDS, "optimizer", "precision", "online_probe")
"""Config fields that decide which variables a checkpoint holds (models, optimizer slots, loss
scale, probe): a run is resumed only with the values it was started with."""

LOCK_FILE = "run.lock"
_CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")
_LEFTOVER = re.compile(r"^(ckpt-\d+_temp.*|\.export-.*|\.retired-.*|.*\.tmp)$")


class RunLockedError(FileExistsError):
    """Another live process holds the run directory's lock."""


class DiskFullError(OSError):
    """The disk filled up while the run was writing; what was finished is kept."""


def is_disk_full(error: BaseException) -> bool:
    """True for the errors a full disk (or a file-size limit) raises, from Python or TensorFlow."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(error)
    return any(sign in text for sign in ("No space left on device", "File too large", "quota"))


def error_summary(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, without TensorFlow's ``{{function_node ...}}``
    prefixes, at most ``limit`` characters."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(error)).strip()
    return (text.splitlines() or [type(error).__name__])[0][:limit]


class CheckpointError(ValueError):
    """The run's checkpoints cannot be used: all unreadable, or made for other models."""


class RunDirectory:
    """The files of one run directory (see the module docstring).

    Nothing is created on disk until :meth:`lock` is taken.

    Args:
        path: the run directory.

    Raises:
        NotADirectoryError: if ``path`` exists and is not a folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(
                f"out_dir={self.path!r} is a file, not a folder: choose a folder for the run "
                "(it is created if missing)."
            )
        self.checkpoints = os.path.join(self.path, "checkpoints")
        self.logs = os.path.join(self.path, "logs")
        self.metrics = os.path.join(self.path, "metrics.csv")
        self.steps = os.path.join(self.path, "steps.csv")
        self.config = os.path.join(self.path, "config.json")
        self.encoder = os.path.join(self.path, "encoder")
        self.lock_file = os.path.join(self.path, LOCK_FILE)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint_steps(self) -> list[int]:
        """Steps of the checkpoints on disk, newest first, read from the ``ckpt-N.index`` files
        (the ``checkpoint`` state file can be damaged; the index files are the checkpoints)."""
        if not os.path.isdir(self.checkpoints):
            return []
        steps = [
            int(match.group(1))
            for match in map(_CHECKPOINT_INDEX.match, os.listdir(self.checkpoints))
            if match
        ]
        return sorted(steps, reverse=True)

    def checkpoint_prefix(self, step: int) -> str:
        """The path prefix TensorFlow reads and writes the checkpoint of ``step`` under."""
        return os.path.join(self.checkpoints, f"ckpt-{step}")

    def has_checkpoint(self) -> bool:
        """True when a checkpoint has been written (completed work that must not be lost)."""
        return bool(self.checkpoint_steps())

    def repair_checkpoint_state(self) -> bool:
        """Rewrites the ``checkpoint`` state file from the index files when it is unreadable or
        disagrees with them (so that ``tf.train.CheckpointManager`` keeps managing every
        checkpoint). Returns True when it was rewritten."""
        steps = self.checkpoint_steps()
        if not steps:
            return False
        try:
            state = tf.train.get_checkpoint_state(self.checkpoints)
        except (tf.errors.OpError, ValueError, UnicodeDecodeError):
            state = None
        expected = [self.checkpoint_prefix(step) for step in reversed(steps)]
        if (
            state is not None
            and [
                os.path.join(self.checkpoints, os.path.basename(path))
                for path in state.all_model_checkpoint_paths
            ]
            == expected
        ):
            return False
        # TensorFlow's CheckpointState in protobuf text format, paths relative to the folder.
        lines = [f'model_checkpoint_path: "ckpt-{steps[0]}"']
        lines += [f'all_model_checkpoint_paths: "ckpt-{step}"' for step in reversed(steps)]
        state_file = os.path.join(self.checkpoints, "checkpoint")
        with open(f"{state_file}.tmp", "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(f"{state_file}.tmp", state_file)
        return True

    def last_checkpoint_sentence(self) -> str:
        """Says what is on disk to continue from, for error messages."""
        steps = self.checkpoint_steps()
        if not steps:
            return f"No checkpoint has been saved in {self.checkpoints!r} yet."
        return f"The last checkpoint on disk is step {steps[0]} in {self.checkpoints!r}."

    # -- logs -----------------------------------------------------------------------------------

    def truncate_logs(self, step: int) -> None:
        """Drops the CSV rows written after ``step`` (they came from a run that was killed),
        and rows that cannot be read."""
        _truncate_csv(self.steps, STEP_COLUMNS, step)
        _truncate_csv(self.metrics, METRIC_COLUMNS, step)

    def append_step(self, step: int, metrics: dict[str, float]) -> None:
        """Adds the row of one step to ``steps.csv``."""
        _append_csv(self.steps, STEP_COLUMNS, {"step": step, **metrics})

    def append_epoch(self, row: dict[str, float]) -> None:
        """Adds the row of one epoch to ``metrics.csv``."""
        _append_csv(self.metrics, METRIC_COLUMNS, row)

    # -- the lock and leftovers -----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDirectory]:
        """Holds the run directory exclusively for the ``with`` block; creates it if missing.

        The lock is a file, ``run.lock``, that names its holder (host, process id, start
        time). A lock left behind by a process that is no longer running on this host is
        taken over. A directory this call created is removed again if the block fails before
        anything was written into it.

        Raises:
            RunLockedError: if a live process holds the lock.
        """
        created = not os.path.exists(self.path)
        os.makedirs(self.path, exist_ok=True)
        try:
            self._take_lock()
        except BaseException:
            _remove_if_empty(self.path, created)
            raise
        try:
            yield self
        except BaseException:
            self._release_lock()
            _remove_if_empty(self.path, created, also=("checkpoints",))
            raise
        self._release_lock()

    def _take_lock(self) -> None:
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        for _ in range(3):
            try:
                descriptor = os.open(self.lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                other = _read_lock(self.lock_file)
                if _lock_is_stale(other):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.lock_file)
                    continue
                raise RunLockedError(_locked_message(self.path, self.lock_file, other)) from None
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(holder, handle)
            _HELD_LOCKS.add(os.path.abspath(self.lock_file))
            return
        raise RunLockedError(_locked_message(self.path, self.lock_file, None))

    def _release_lock(self) -> None:
        _HELD_LOCKS.discard(os.path.abspath(self.lock_file))
        if (_read_lock(self.lock_file) or {}).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.lock_file)

    def clean_leftovers(self) -> list[str]:
        """Removes what killed or failed writes left behind; call it holding the lock.

        Partial checkpoints (``ckpt-N_temp``), unfinished exports (``.export-*``) and
        temporary files go. An old export moved aside (``.retired-*``) while its replacement
        was written is put back when the replacement never arrived.

        Returns:
            The paths removed or restored.
        """
        handled = []
        for folder in (self.path, self.checkpoints):
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if not _LEFTOVER.match(name) or name == LOCK_FILE:
                    continue
                path = os.path.join(folder, name)
                if name.startswith(".retired-") and not os.path.exists(self.encoder):
                    os.replace(path, self.encoder)
                elif os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
                handled.append(path)
        return handled


_HELD_LOCKS: set[str] = set()
"""Lock files this process holds (a lock naming this process's id is stale unless listed)."""


def _read_lock(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.load(handle)
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _lock_is_stale(holder: dict[str, Any] | None) -> bool:
    """True when the holder cannot be running: gone from this host, or a half-written lock."""
    if holder is None:
        return True
    if holder.get("host") != socket.gethostname():
        return False  # another machine: cannot tell, so it is respected
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return True
    if pid == os.getpid():
        return not _HELD_LOCKS  # this process, but not through a lock it holds: a reused pid
    return not _pid_alive(pid)


def _locked_message(path: str, lock_file: str, holder: dict[str, Any] | None) -> str:
    if holder is None:
        who = "another process"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        who = f"process {holder.get('pid')} on {holder.get('host')} (since {since})"
    return (
        f"{path!r} is in use by {who}. Wait for that run to finish or stop it, or choose "
        f"another --out_dir. If you are sure no run is using it, delete {lock_file!r}."
    )


def _remove_if_empty(path: str, created: bool, also: Sequence[str] = ()) -> None:
    """Removes a folder this process created, if nothing but empty ``also`` folders are in it."""
    if not created or not os.path.isdir(path):
        return
    for name in also:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(path, name))
    with contextlib.suppress(OSError):
        os.rmdir(path)


def check_resume(config: SimCLRConfig, run: RunDirectory) -> None:
    """Refuses to start over a finished or interrupted run, or to resume it with values that
    change what its checkpoints hold.

    Raises:
        FileExistsError: if the run has checkpoints and ``config.resume`` is false.
        ValueError: if ``config`` differs from the run's ``config.json`` in a
            :data:`CHECKPOINT_FIELDS` field, naming each field's old and new value.
    """
    if run.has_checkpoint() and not config.resume:
        raise FileExistsError(
            f"{config.out_dir!r} already holds a run's checkpoints. Pass --resume to continue it, "
            "or choose a new --out_dir."
        )
    if not (config.resume and os.path.exists(run.config)):
        return
    try:
        previous = SimCLRConfig.load(run.config)
    except (ValueError, UnicodeDecodeError) as error:
        warnings.warn(
            f"{run.config!r} cannot be read ({error}); the resume is checked against the "
            "checkpoint itself.",
            stacklevel=2,
        )
        return
    changed = [
        name for name in CHECKPOINT_FIELDS if getattr(previous, name) != getattr(config, name)
    ]
    if changed:
        raise ValueError(
            "Cannot resume this run with other values of fields its checkpoints depend on; "
            f"these differ from {run.config}: "
            + ", ".join(
                f"--{name}={getattr(config, name)!r} (the run has {getattr(previous, name)!r})"
                for name in changed
            )
            + ". Resume with the run's values, or start a new run with a new --out_dir."
        )


def restore_checkpoint(checkpoint: tf.train.Checkpoint, run: RunDirectory) -> int | None:
    """Restores the newest intact checkpoint of the run into ``checkpoint``.

    A checkpoint that cannot be read (a truncated index, a missing or damaged data file: its
    checksums fail) is named in a warning and the next older one is tried. A damaged
    ``checkpoint`` state file is rebuilt from the checkpoints' index files first.

    Args:
        checkpoint: the run's ``tf.train.Checkpoint`` (models, optimizer, step).
        run: the run directory.

    Returns:
        The step of the restored checkpoint, or ``None`` when the run has none.

    Raises:
        CheckpointError: if checkpoints exist but none can be read, or they hold variables of
            other shapes (another architecture), naming the files and what to do.
    """
    steps = run.checkpoint_steps()
    if not steps:
        return None
    if run.repair_checkpoint_state():
        warnings.warn(
            f"The checkpoint state file in {run.checkpoints!r} was unreadable or out of date; "
            "rebuilt it from the checkpoint files.",
            stacklevel=2,
        )
    damaged = []
    for step in steps:
        prefix = run.checkpoint_prefix(step)
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except tf.errors.OpError as error:
            damaged.append(prefix)
            first_line = str(error).strip().splitlines()[0][:200]
            warnings.warn(
                f"Checkpoint {prefix!r} is damaged ({first_line}); skipped.", stacklevel=2
            )
            continue
        except (ValueError, AssertionError) as error:
            raise CheckpointError(
                f"Checkpoint {prefix!r} was made for other models than this configuration "
                f"builds ({error_summary(error, 300)}). Resume with the run's "
                "own flags (see its config.json), or choose a new --out_dir."
            ) from None
        if damaged:
            warnings.warn(
                f"Continuing from step {step} ({prefix!r}), the newest intact checkpoint.",
                stacklevel=2,
            )
        return step
    raise CheckpointError(
        f"None of the checkpoints in {run.checkpoints!r} can be read: "
        + ", ".join(os.path.basename(path) for path in damaged)
        + ". Move them aside to start over in this folder, or choose a new --out_dir."
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
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read().replace("\0", "")
    rows = [row for row in csv.DictReader(text.splitlines()) if _keep(_row_step(row), step)]
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
