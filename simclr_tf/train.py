"""Pretraining: a whole SimCLR run, from the data to the exported encoder, and its command line.

:func:`pretrain` loads the training images the config names, locks and checks the run
directory, trains a :class:`~simclr_tf.pretrainer.Pretrainer` (the custom training loop, in
:mod:`simclr_tf.pretrainer`) and exports its encoder. ``simclr_tf.train.Pretrainer`` is that
class too, imported here.

Command line (every field of :class:`simclr_tf.config.SimCLRConfig` is a flag)::

    python -m simclr_tf.train --batch_size=32 --lr=0.003
    python -m simclr_tf.train --preset=cpu --dataset=sample --out_dir=runs/cpu
    python -m simclr_tf.train --preset=cpu --out_dir=runs/cpu --resume
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Sequence

import tensorflow as tf

from simclr_tf import runtime
from simclr_tf.callbacks import TrainingDivergedError, format_epoch
from simclr_tf.cli import USER_ERRORS, run_command
from simclr_tf.config import SimCLRConfig, build_parser, config_from_args
from simclr_tf.data.sources import TrainingImages, training_images
from simclr_tf.export import export_encoder
from simclr_tf.pretrainer import Pretrainer
from simclr_tf.runs import (
    METRIC_COLUMNS,
    STEP_COLUMNS,
    DiskFullError,
    RunDirectory,
    check_resume,
    error_summary,
    is_disk_full,
)

__all__ = [
    "METRIC_COLUMNS",
    "STEP_COLUMNS",
    "Pretrainer",
    "PretrainResult",
    "TrainingDivergedError",
    "build_parser",
    "config_from_args",
    "format_epoch",
    "main",
    "pretrain",
]


# -- the whole run ------------------------------------------------------------------------------


def load_training_images(config: SimCLRConfig) -> TrainingImages:
    """The training images the config names: the sample, CIFAR-10 or a folder (streamed)."""
    return training_images(
        config.dataset, config.data_dir, config.image_size, config.max_image_pixels or None
    )


@dataclasses.dataclass
class PretrainResult:
    """What :func:`pretrain` produced."""

    run_dir: str
    encoder_path: str
    epochs: list[dict[str, float]]
    pretrainer: Pretrainer


def pretrain(config: SimCLRConfig) -> PretrainResult:
    """Runs a whole pretraining: data, models, loop, checkpoints, export of the encoder.

    The run directory is locked for the whole run. Everything that can be checked is checked
    before anything is written: the flags, the data, the checkpoints to resume from (restored
    before ``config.json`` is saved), so a command that fails changes nothing on disk.

    Args:
        config: the run configuration.

    Returns:
        A :class:`PretrainResult` with the run directory, the exported encoder's path and the
        per-epoch metrics.

    Raises:
        FileExistsError: if ``config.out_dir`` already holds a run's checkpoints and
            ``config.resume`` is false (completed work is never overwritten), or another
            process is using it (:class:`~simclr_tf.runs.RunLockedError`).
        ValueError: for an invalid configuration, or a resume with values that change the
            checkpoint (:class:`~simclr_tf.runs.CheckpointError` when only the checkpoint
            tells).
        DiskFullError: if the disk fills up; partial files are removed.
        TrainingDivergedError: if the loss or the weights stop being finite.
        TrainingInterrupted: after Ctrl-C, once the current step is checkpointed.
    """
    config.validate()
    strategy = runtime.make_strategy(config.strategy, config.cpu_replicas)
    chief = runtime.is_chief(strategy)
    run = RunDirectory(config.out_dir)
    # Every worker of a cluster checks the same things; if one of them fails, all stop before
    # the first collective operation (a worker left alone would wait for the others forever).
    with run.lock() if chief else contextlib.nullcontext(run):
        problem: BaseException | None = None
        try:
            if chief:
                for path in run.clean_leftovers():
                    warnings.warn(
                        f"Cleaned up {path!r}, left by an interrupted write.", stacklevel=2
                    )
            check_resume(config, run)
            source = load_training_images(config)
        except USER_ERRORS as error:
            problem = error
        if not runtime.all_workers_agree(strategy, problem is None):
            raise problem or ValueError(
                "Another worker of this cluster stopped with an error (see its output); this "
                "worker stops too."
            )
        pretrainer = Pretrainer(config, source.num_examples, source.num_classes, strategy)
        try:
            return _train_and_export(config, run, source, pretrainer)
        except (OSError, tf.errors.OpError) as error:
            if not is_disk_full(error):
                raise
            run.clean_leftovers()
            raise DiskFullError(
                f"The disk is full ({error_summary(error)}). "
                f"{run.last_checkpoint_sentence()} Partial files were removed. Free some "
                "space, then run the same command with --resume."
            ) from None
        finally:
            pretrainer.remove_scratch()


def _train_and_export(
    config: SimCLRConfig, run: RunDirectory, source: TrainingImages, pretrainer: Pretrainer
) -> PretrainResult:
    start = pretrainer.restore(run)
    if not runtime.same_on_all_workers(pretrainer.strategy, start):
        raise ValueError(
            f"The workers of this cluster found different checkpoints in {run.path!r} (this one "
            f"step {start}): --out_dir must be storage every machine sees, or copy the chief's "
            "checkpoints/ to the same path on every machine before --resume."
        )
    if pretrainer.is_chief:
        config.save(run.config)
    if config.verbose:
        print(runtime.device_summary())
        print(
            f"Pretraining {config.encoder} on {source.num_examples} images ({config.dataset}): "
            f"{pretrainer.total_steps} steps of {config.batch_size}, "
            f"run directory {config.out_dir}",
            flush=True,
        )
    rows = pretrainer.fit(source)
    if pretrainer.is_chief:
        export_encoder(
            pretrainer.encoder,
            run.encoder,
            config.image_size,
            metadata={"config": config.to_dict()},
        )
    # No worker leaves before the chief's export is complete (a barrier).
    runtime.all_workers_agree(pretrainer.strategy, True)
    return PretrainResult(config.out_dir, os.path.abspath(run.encoder), rows, pretrainer)


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simclr_tf.train``: returns the exit code (2 for a user error, 130 when
    interrupted; see :mod:`simclr_tf.cli`)."""
    config = config_from_args(argv)

    def body() -> int:
        result = pretrain(config)
        print(f"Encoder exported to {result.encoder_path}")
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
