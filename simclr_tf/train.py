"""Pretraining: the SimCLR custom training loop and its command line.

One optimisation step does exactly what Algorithm 1 of the paper says:

1. draw two random augmentations of every image in the batch (on the device, batched);
2. encode both views with the base encoder f to get representations ``h``;
3. project them with the head g to get ``z``;
4. compute NT-Xent over the 2N views, where each view's positive is its twin and the other
   2N-2 views are its negatives;
5. take the gradient with ``tf.GradientTape`` and update f and g.

Alongside, when labels exist, a linear classifier (the *online probe*) learns to predict the
class from ``stop_gradient(h)``. It cannot change the encoder; it only shows, while pretraining
runs, how linearly separable the representation already is.

The loop is written out by hand rather than hidden in ``model.fit`` so that a reader can follow
every step, and it runs unchanged under any ``tf.distribute`` strategy. A run directory holds::

    config.json      the configuration of the run
    checkpoints/     tf.train.CheckpointManager files (models, optimizer, step)
    logs/            TensorBoard scalars and a few augmented views
    metrics.csv      one row per epoch
    steps.csv        one row per step (loss, contrastive accuracy, learning rate)
    encoder/         the exported SavedModel (see simclr_tf.export)

Resuming is exact: the augmentation of step ``t`` depends only on ``(seed, t)`` and the order
of the images in epoch ``e`` only on ``(seed, e)``, so a run that is killed and resumed from a
checkpoint repeats the losses of an uninterrupted run step for step.

Command line (every field of :class:`simclr_tf.config.SimCLRConfig` is a flag)::

    python -m simclr_tf.train --batch_size=32 --lr=0.003
    python -m simclr_tf.train --preset=cpu --dataset=sample --out_dir=runs/cpu
    python -m simclr_tf.train --preset=cpu --out_dir=runs/cpu --resume
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from simclr_tf import runtime
from simclr_tf.augment import AugmentConfig, two_views
from simclr_tf.config import PRESETS, SimCLRConfig, preset
from simclr_tf.data.sources import ArrayImages, TrainingImages, training_images
from simclr_tf.evaluation.quality import two_view_quality
from simclr_tf.losses import nt_xent_loss
from simclr_tf.models import build_encoder, build_projection_head
from simclr_tf.optim import WarmupCosineDecay, build_optimizer, scaled_learning_rate

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
)
STEP_COLUMNS = ("step", "loss", "contrastive_accuracy", "probe_accuracy", "learning_rate")
# Architecture fields: a run cannot be resumed with different values for these.
_ARCHITECTURE_FIELDS = (
    "encoder",
    "width",
    "stem",
    "representation_dim",
    "image_size",
    "projection_layers",
    "projection_hidden_dim",
    "projection_dim",
)


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN or infinite; the last checkpoint is left untouched."""


def augment_config_for(config: SimCLRConfig) -> AugmentConfig:
    """The augmentation settings a run uses (see :meth:`SimCLRConfig.augment_config`)."""
    return config.augment_config()


class Pretrainer:
    """Holds the models, the optimizer and the compiled training step of one SimCLR run.

    Args:
        config: the run configuration (validated here).
        num_examples: training images per epoch; fixes the learning-rate schedule.
        num_classes: classes of the online probe, or ``None`` to train without it.
        strategy: a ``tf.distribute`` strategy; by default the one ``config.strategy`` names.

    Raises:
        ValueError: if the batch does not split evenly over the replicas or is larger than
            the data set.
    """

    def __init__(
        self,
        config: SimCLRConfig,
        num_examples: int,
        num_classes: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.config = config.validate()
        self.strategy = strategy or runtime.make_strategy(config.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % self.num_replicas:
            raise ValueError(
                f"batch_size={config.batch_size} does not split evenly over "
                f"{self.num_replicas} replicas; use a multiple of {self.num_replicas}."
            )
        if config.batch_size > num_examples:
            raise ValueError(
                f"batch_size={config.batch_size} is larger than the data set "
                f"({num_examples} images); lower --batch_size."
            )
        self.num_examples = num_examples
        self.steps_per_epoch = num_examples // config.batch_size
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.steps:
            self.total_steps = min(self.total_steps, config.steps)
        self.augment_config = augment_config_for(config)
        # Outside the training step (a few images for logs and quality metrics) compiling the
        # augmentation with XLA for one more shape would cost seconds and save nothing.
        self._eager_augment_config = dataclasses.replace(self.augment_config, jit_compile=False)
        self.learning_rate = WarmupCosineDecay(
            peak_learning_rate=scaled_learning_rate(
                config.lr, config.batch_size, config.lr_scaling
            ),
            warmup_steps=round(config.warmup_epochs * self.steps_per_epoch),
            total_steps=self.total_steps,
        )
        keras.utils.set_random_seed(config.seed)
        synchronized = config.sync_batchnorm and self.num_replicas > 1
        with runtime.precision_policy(config.precision), self.strategy.scope():
            self.encoder = build_encoder(
                config.encoder,
                config.image_size,
                width=config.width,
                stem=config.stem,
                representation_dim=config.representation_dim,
                synchronized_batchnorm=synchronized,
            )
            representation_dim = int(self.encoder.output.shape[-1])
            self.projection_head = build_projection_head(
                representation_dim,
                hidden_dim=config.projection_hidden_dim,
                output_dim=config.projection_dim,
                num_layers=config.projection_layers,
                synchronized_batchnorm=synchronized,
            )
            self.probe = None
            if num_classes and config.online_probe:
                self.probe = keras.Sequential(
                    [
                        keras.Input((representation_dim,)),
                        keras.layers.Dense(num_classes, dtype="float32", name="probe_logits"),
                    ],
                    name="online_probe",
                )
            optimizer = build_optimizer(
                config.optimizer, self.learning_rate, config.weight_decay, config.momentum
            )
            if config.precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.trainable_variables = (
                self.encoder.trainable_variables
                + self.projection_head.trainable_variables
                + (self.probe.trainable_variables if self.probe else [])
            )
            self.optimizer.build(self.trainable_variables)
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.checkpoint = tf.train.Checkpoint(
            encoder=self.encoder,
            projection_head=self.projection_head,
            optimizer=self.optimizer,
            step=self.step,
            **({"probe": self.probe} if self.probe else {}),
        )
        self._train_step = tf.function(self._distributed_step)
        # Set by a callback of fit() to end the run early (for example at a time budget).
        self.stop_training = False
        self._replica_fn = (
            tf.function(self._replica_step, jit_compile=True)
            if (config.jit_compile)
            else self._replica_step
        )

    # -- one step ---------------------------------------------------------------------------

    def _replica_step(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        """Runs on every replica: augment, encode, project, loss, gradients, update."""
        if images.shape[1] != self.config.image_size or images.shape[2] != self.config.image_size:
            images = tf.image.resize(images, [self.config.image_size] * 2, antialias=True)
        # The views depend on (seed, step) only; two_views folds in the replica id itself.
        view1, view2 = two_views(images, self.config.seed, self.step, self.augment_config)
        with tf.GradientTape() as tape:
            h = self.encoder(tf.concat([view1, view2], axis=0), training=True)
            z = self.projection_head(h, training=True)
            z1, z2 = tf.split(z, 2, axis=0)
            loss, accuracy = nt_xent_loss(z1, z2, self.config.temperature)
            total = loss
            probe_accuracy = tf.constant(float("nan"))
            if self.probe is not None:
                both_labels = tf.concat([labels, labels], axis=0)
                logits = self.probe(tf.stop_gradient(h), training=True)
                probe_loss = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(
                        both_labels, logits, from_logits=True
                    )
                )
                total = total + probe_loss
                probe_accuracy = tf.reduce_mean(
                    tf.cast(
                        tf.equal(tf.argmax(logits, -1), tf.cast(both_labels, tf.int64)), tf.float32
                    )
                )
            # Gradients are summed over replicas, so each contributes 1/replicas of the mean.
            scaled = self.optimizer.scale_loss(total / self.num_replicas)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return {
            "loss": loss,
            "contrastive_accuracy": accuracy,
            "probe_accuracy": probe_accuracy,
        }

    def _distributed_step(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = self.strategy.run(self._replica_fn, args=(images, labels))
        metrics = {
            name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in per_replica.items()
        }
        metrics["learning_rate"] = self.learning_rate(self.step)
        self.step.assign_add(1)
        return metrics

    def train_step(self, images: Any, labels: Any = None) -> dict[str, float]:
        """One optimisation step on one (distributed) batch; returns the metrics as floats."""
        if labels is None:
            labels = tf.zeros(tf.shape(images)[:1], tf.int32)
        metrics = self._train_step(images, labels)
        return {name: float(value) for name, value in metrics.items()}

    # -- the loop ---------------------------------------------------------------------------

    def epoch_batches(self, source: TrainingImages, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """The batches of ``epoch`` in an order fixed by ``(seed, epoch)``, minus the first
        ``skip`` (already trained on before a resume). Yields ``(images, labels)``."""
        order = np.random.default_rng([self.config.seed, epoch]).permutation(source.num_examples)
        batch = self.config.batch_size
        dataset = source.in_order(order[skip * batch : self.steps_per_epoch * batch])
        # A fixed prefetch buffer without tf.data's autotuning: with autotuning on, dropping an
        # epoch's exhausted iterator blocked for 8-13 s on a busy 2-core CPU (measured), a
        # quarter of a CIFAR-10 epoch of the small CNN.
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.batch(batch, drop_remainder=True).prefetch(2).with_options(options)

    def fit(
        self,
        images: np.ndarray | TrainingImages,
        labels: np.ndarray | None = None,
        callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
    ) -> list[dict[str, float]]:
        """Trains until ``total_steps``, saving checkpoints and logs in ``config.out_dir``.

        Args:
            images: uint8 training images ``[N, H, W, 3]``, or a :class:`TrainingImages`
                (for example :class:`FolderImages`, which streams a folder from disk).
            labels: int labels ``[N]`` for the online probe, or ``None`` (arrays only).
            callbacks: functions called as ``callback(step, metrics)`` after every step. A
                callback may set ``pretrainer.stop_training = True`` to end the run after
                this step (the epoch is then closed as usual: checkpoint, metrics row).

        Returns:
            The rows written to ``metrics.csv`` by this call, one per finished epoch.

        Raises:
            TrainingDivergedError: if the loss becomes NaN or infinite.
        """
        source = images if isinstance(images, TrainingImages) else ArrayImages(images, labels)
        self.stop_training = False
        has_labels = source.num_classes is not None
        config = self.config
        run = RunDirectory(config.out_dir)
        manager = tf.train.CheckpointManager(
            self.checkpoint, run.checkpoints, max_to_keep=3, step_counter=self.step
        )
        if manager.latest_checkpoint:
            self.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(self.step.numpy())
        run.truncate_logs(start)
        writer = tf.summary.create_file_writer(run.logs)
        held_out = source.first(256)
        rows: list[dict[str, float]] = []
        progress_every = max(1, self.steps_per_epoch // 50)
        # Throughput is wall time between the ends of consecutive steps, so it includes
        # waiting for data, logging and checkpoints; only the first step (tracing) is left out.
        last_tick: float | None = None
        for epoch in range(start // self.steps_per_epoch, config.epochs):
            if start >= self.total_steps:
                break
            skip = (
                start - epoch * self.steps_per_epoch
                if epoch == start // self.steps_per_epoch
                else 0
            )
            steps_this_epoch = min(
                self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch
            )
            bar = keras.utils.Progbar(
                steps_this_epoch,
                verbose=1 if config.verbose == 1 else 0,
                stateful_metrics=["lr", "img/s"],
                unit_name="step",
            )
            if skip:
                bar.update(skip)
            sums: dict[str, float] = {}
            counted, timed_images, timed_seconds = 0, 0, 0.0
            epoch_start = time.perf_counter()
            dataset = self.strategy.experimental_distribute_dataset(
                self.epoch_batches(source, epoch, skip)
            )
            for batch_images, batch_labels in dataset:
                if int(self.step.numpy()) >= self.total_steps:
                    break
                metrics = self.train_step(batch_images, batch_labels)
                if not has_labels:
                    metrics["probe_accuracy"] = float("nan")
                step = int(self.step.numpy())
                tick = time.perf_counter()
                if last_tick is not None:
                    timed_images += config.batch_size
                    timed_seconds += tick - last_tick
                last_tick = tick
                if not math.isfinite(metrics["loss"]):
                    raise TrainingDivergedError(
                        f"The loss became {metrics['loss']} at step {step}. The last good "
                        f"checkpoint in {run.checkpoints!r} is intact; lower --lr, raise "
                        "--temperature or use --precision=float32, then --resume."
                    )
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + value
                counted += 1
                run.append_step(step, metrics)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    manager.save(checkpoint_number=step)
                for callback in callbacks:
                    callback(step, metrics)
                if step % progress_every == 0 or step == self.total_steps:
                    with writer.as_default(step=step):
                        for name, value in metrics.items():
                            if math.isfinite(value):
                                tf.summary.scalar(f"step/{name}", value)
                    if step == 1:
                        self._log_views(writer, batch_images)
                bar.update(
                    step - epoch * self.steps_per_epoch,
                    values=[
                        ("loss", metrics["loss"]),
                        ("contrastive_acc", metrics["contrastive_accuracy"]),
                        *([("probe_acc", metrics["probe_accuracy"])] if has_labels else []),
                        ("lr", metrics["learning_rate"]),
                        ("img/s", timed_images / timed_seconds if timed_seconds else 0.0),
                    ],
                )
                if self.stop_training:
                    break
            if not counted:
                break
            step = int(self.step.numpy())
            manager.save(checkpoint_number=step)
            row = {name: total / counted for name, total in sums.items()}
            row.update(
                epoch=epoch + 1,
                step=step,
                images_per_second=timed_images / timed_seconds if timed_seconds else float("nan"),
                seconds=time.perf_counter() - epoch_start,
                **self.representation_quality(held_out),
            )
            if not has_labels:
                row["probe_accuracy"] = float("nan")
            run.append_epoch(row)
            with writer.as_default(step=step):
                for name in METRIC_COLUMNS[2:]:
                    if math.isfinite(row[name]):
                        tf.summary.scalar(f"epoch/{name}", row[name])
            writer.flush()
            rows.append(row)
            if config.verbose == 2:
                print(format_epoch(row, config.epochs), flush=True)
            if step >= self.total_steps or self.stop_training:
                break
        writer.close()
        return rows

    def representation_quality(self, images: np.ndarray) -> dict[str, float]:
        """Alignment, uniformity and per-dimension std of ``h`` on fixed images, as the
        evaluation defines them (:func:`simclr_tf.evaluation.quality.two_view_quality`)."""
        return two_view_quality(
            lambda views: self.encoder(views, training=False),
            images,
            self.augment_config,
            self.config.seed,
        )

    def _log_views(self, writer: tf.summary.SummaryWriter, images: Any) -> None:
        local = self.strategy.experimental_local_results(images)[0][:4]
        view1, view2 = two_views(local, self.config.seed, 0, self._eager_augment_config)
        with writer.as_default(step=0):
            tf.summary.image("augmented_views/view1", view1, max_outputs=4)
            tf.summary.image("augmented_views/view2", view2, max_outputs=4)


class RunDirectory:
    """The files of a run directory, and the rule that completed work is never overwritten."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.checkpoints = os.path.join(path, "checkpoints")
        self.logs = os.path.join(path, "logs")
        self.metrics = os.path.join(path, "metrics.csv")
        self.steps = os.path.join(path, "steps.csv")
        self.config = os.path.join(path, "config.json")
        self.encoder = os.path.join(path, "encoder")
        os.makedirs(self.checkpoints, exist_ok=True)

    def has_checkpoint(self) -> bool:
        return tf.train.latest_checkpoint(self.checkpoints) is not None

    def truncate_logs(self, step: int) -> None:
        """Drops rows written after ``step`` (they came from a run that was killed)."""
        _truncate_csv(self.steps, STEP_COLUMNS, lambda row: int(row["step"]) <= step)
        _truncate_csv(self.metrics, METRIC_COLUMNS, lambda row: int(row["step"]) <= step)

    def append_step(self, step: int, metrics: dict[str, float]) -> None:
        _append_csv(self.steps, STEP_COLUMNS, {"step": step, **metrics})

    def append_epoch(self, row: dict[str, float]) -> None:
        _append_csv(self.metrics, METRIC_COLUMNS, row)


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


def _truncate_csv(path: str, columns: Sequence[str], keep: Callable[[dict], bool]) -> None:
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if keep(row)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def format_epoch(row: dict[str, float], epochs: int) -> str:
    """One human-readable line for an epoch's metrics."""
    text = (
        f"epoch {int(row['epoch'])}/{epochs}  step {int(row['step'])}  loss {row['loss']:.4f}  "
        f"contrastive_acc {row['contrastive_accuracy']:.3f}"
    )
    if math.isfinite(row.get("probe_accuracy", float("nan"))):
        text += f"  probe_acc {row['probe_accuracy']:.3f}"
    return text + f"  {row['images_per_second']:.0f} img/s  {row['seconds']:.0f}s"


# -- data and the whole run ---------------------------------------------------------------------


def load_training_images(config: SimCLRConfig) -> TrainingImages:
    """The training images the config names: the sample, CIFAR-10 or a folder (streamed)."""
    return training_images(config.dataset, config.data_dir, config.image_size)


@dataclasses.dataclass
class PretrainResult:
    """What :func:`pretrain` produced."""

    run_dir: str
    encoder_path: str
    epochs: list[dict[str, float]]
    pretrainer: Pretrainer


def pretrain(config: SimCLRConfig) -> PretrainResult:
    """Runs a whole pretraining: data, models, loop, checkpoints, export of the encoder.

    Args:
        config: the run configuration.

    Returns:
        A :class:`PretrainResult` with the run directory, the exported encoder's path and the
        per-epoch metrics.

    Raises:
        FileExistsError: if ``config.out_dir`` already holds a run's checkpoints and
            ``config.resume`` is false (completed work is never overwritten).
        ValueError: for an invalid configuration, or a resume with another architecture.
    """
    config.validate()
    run = RunDirectory(config.out_dir)
    if run.has_checkpoint() and not config.resume:
        raise FileExistsError(
            f"{config.out_dir!r} already holds a run's checkpoints. Pass --resume to continue it, "
            "or choose a new --out_dir."
        )
    if config.resume and os.path.exists(run.config):
        previous = SimCLRConfig.load(run.config)
        changed = [
            name
            for name in _ARCHITECTURE_FIELDS
            if getattr(previous, name) != getattr(config, name)
        ]
        if changed:
            raise ValueError(
                "Cannot resume with a different architecture; these fields differ from "
                f"{run.config}: "
                + ", ".join(
                    f"{n}={getattr(config, n)!r} (was {getattr(previous, n)!r})" for n in changed
                )
            )
    source = load_training_images(config)
    pretrainer = Pretrainer(config, source.num_examples, source.num_classes)
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
    from simclr_tf.export import export_encoder

    encoder_path = export_encoder(
        pretrainer.encoder,
        run.encoder,
        config.image_size,
        metadata={"config": config.to_dict()},
    )
    return PretrainResult(config.out_dir, encoder_path, rows, pretrainer)


# -- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """An ``argparse`` parser with one flag per config field plus ``--preset``."""
    parser = argparse.ArgumentParser(
        prog="python -m simclr_tf.train",
        description="Pretrain a SimCLR encoder and export it as a SavedModel.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="Start from this preset; flags given explicitly override it. 'paper' is the "
        "SimCLR CIFAR-10 GPU recipe, 'cpu' the recipe measured on a 2-core CPU, 'smoke' a "
        "seconds-long check.",
    )
    defaults = SimCLRConfig()
    for field in dataclasses.fields(SimCLRConfig):
        default = getattr(defaults, field.name)
        kwargs: dict[str, Any] = {"help": field.metadata["help"], "default": argparse.SUPPRESS}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field.name == "data_dir":
            kwargs["type"] = str
        else:
            kwargs["type"] = type(default)
        parser.add_argument(f"--{field.name}", **kwargs)
    return parser


def config_from_args(
    argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> SimCLRConfig:
    """Parses command-line flags into a validated config.

    Args:
        argv: the flags; ``None`` reads ``sys.argv``.
        parser: a parser from :func:`build_parser`, possibly with extra flags of a caller;
            their values are ignored here.

    Raises:
        SystemExit: with a usage message for unknown flags or invalid values.
    """
    parser = parser or build_parser()
    values = vars(parser.parse_args(argv))
    fields = {field.name for field in dataclasses.fields(SimCLRConfig)}
    overrides = {name: value for name, value in values.items() if name in fields}
    try:
        return preset(values["preset"], **overrides)
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(argv)
    try:
        result = pretrain(config)
    except (FileExistsError, FileNotFoundError, ValueError, TrainingDivergedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Encoder exported to {result.encoder_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
