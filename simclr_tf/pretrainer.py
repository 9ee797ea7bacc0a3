"""The SimCLR custom training loop: :class:`Pretrainer`, its models, its step and ``fit``.

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
every step, and it runs unchanged under any ``tf.distribute`` strategy. What it writes, the
run directory, is described in :mod:`simclr_tf.runs`; checkpoints, logs and progress are
callbacks (:mod:`simclr_tf.callbacks`).

Resuming is exact: the augmentation of step ``t`` depends only on ``(seed, t)`` and the order
of the images in epoch ``e`` only on ``(seed, e)``, so a run that is killed and resumed from a
checkpoint repeats the losses of an uninterrupted run step for step.

A whole run (the data the config names, the run directory's lock and checks, the export of the
encoder) and the command line are :func:`simclr_tf.train.pretrain` and
``python -m simclr_tf.train``; the per-epoch means and throughput are
:class:`simclr_tf.epoch_meter.EpochMeter`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from simclr_tf import distribute, runtime
from simclr_tf.augment import two_views
from simclr_tf.callbacks import (
    Callback,
    CallbackList,
    Checkpointer,
    CSVLogger,
    DivergenceCheck,
    ProgressLogger,
    TensorBoardLogger,
    TrainingInterrupted,
)
from simclr_tf.config import SimCLRConfig
from simclr_tf.data.batches import epoch_batches, resize_images
from simclr_tf.data.sources import ArrayImages, TrainingImages
from simclr_tf.epoch_meter import EpochMeter
from simclr_tf.evaluate.quality import two_view_quality
from simclr_tf.loss_scale import current_loss_scale, skipped_steps
from simclr_tf.losses import nt_xent_loss
from simclr_tf.models import encoder_from_config, initialize_weights, projection_head_from_config
from simclr_tf.optim import learning_rate_from_config, optimizer_from_config
from simclr_tf.runs import RunDirectory, restore_checkpoint

__all__ = ["QUALITY_IMAGES", "STEP_METRICS", "Pretrainer"]

QUALITY_IMAGES = 256
"""Training images on which each epoch measures alignment, uniformity and embedding std."""

STEP_METRICS = (
    "loss",
    "contrastive_accuracy",
    "probe_accuracy",
    "loss_scale",
    "learning_rate",
    "skipped_steps",
)
"""What every training step returns (:meth:`Pretrainer.train_step`), in this order."""


def _check_batch(config: SimCLRConfig, num_examples: int, num_replicas: int) -> None:
    if config.batch_size % num_replicas:
        raise ValueError(
            f"batch_size={config.batch_size} does not split evenly over "
            f"{num_replicas} replicas; use a multiple of {num_replicas}."
        )
    if config.batch_size > num_examples:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the data set "
            f"({num_examples} images); lower --batch_size."
        )


def _check_jit(config: SimCLRConfig, strategy: tf.distribute.Strategy) -> None:
    if config.jit_compile and not distribute.xla_compiles_collectives(strategy):
        raise ValueError(
            f"jit_compile=True with {strategy.num_replicas_in_sync} replicas on CPU devices: "
            "TensorFlow compiles cross-replica operations (gathered negatives, synchronised "
            "BatchNorm, summed gradients) with XLA only on GPUs and TPUs. Drop --jit_compile "
            "(the augmentation is still compiled on its own) or train on GPUs."
        )


def _online_probe(representation_dim: int, num_classes: int) -> keras.Model:
    """A linear classifier on ``h`` (float32 logits ``[B, num_classes]``)."""
    return keras.Sequential(
        [
            keras.Input((representation_dim,)),
            keras.layers.Dense(num_classes, dtype="float32", name="probe_logits"),
        ],
        name="online_probe",
    )


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
        self.strategy = strategy or runtime.make_strategy(config.strategy, config.cpu_replicas)
        self.num_replicas = self.strategy.num_replicas_in_sync
        _check_batch(config, num_examples, self.num_replicas)
        _check_jit(config, self.strategy)
        self.num_examples = num_examples
        self.steps_per_epoch = num_examples // config.batch_size
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.steps:
            self.total_steps = min(self.total_steps, config.steps)
        self.augment_config = config.augment_config()
        self.learning_rate = learning_rate_from_config(
            config, self.steps_per_epoch, self.total_steps
        )
        with runtime.precision_policy(config.precision), self.strategy.scope():
            self._build(num_classes)
        self.checkpoint = tf.train.Checkpoint(
            encoder=self.encoder,
            projection_head=self.projection_head,
            optimizer=self.optimizer,
            step=self.step,
            **({"probe": self.probe} if self.probe else {}),
        )
        self._train_step = tf.function(self._distributed_step)
        self._train_steps = tf.function(self._distributed_steps)
        self._replica_fn = (
            tf.function(self._replica_step, jit_compile=True)
            if config.jit_compile
            else self._replica_step
        )
        # Only the chief writes into out_dir; other workers of a multi-worker cluster save
        # their (identical) checkpoints into a scratch folder of their own, removed at the end.
        self.is_chief = runtime.is_chief(self.strategy)
        self._scratch: str | None = None
        # Set by a callback of fit() to end the run early (for example at a time budget).
        self.stop_training = False
        self._example_images: np.ndarray | None = None
        self._restored: tuple[str, int] | None = None  # (run directory, step) of the restore

    def _build(self, num_classes: int | None) -> None:
        """Models, optimizer and step counter, inside the strategy's scope; weights seeded."""
        config = self.config
        # The one step counter: every batch trained on, skipped for an overflow or not. The
        # learning-rate schedule and the augmentation follow it (not optimizer.iterations,
        # which counts only the updates applied), so both match the logged learning rate.
        self.step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        sync = config.sync_batchnorm and self.num_replicas > 1
        self.encoder = initialize_weights(encoder_from_config(config, sync), config.seed)
        representation_dim = int(self.encoder.output.shape[-1])
        self.projection_head = initialize_weights(
            projection_head_from_config(config, representation_dim, sync), config.seed + 1
        )
        self.probe = None
        if num_classes and config.online_probe:
            self.probe = initialize_weights(
                _online_probe(representation_dim, num_classes), config.seed + 2
            )
        self.optimizer = optimizer_from_config(config, lambda: self.learning_rate(self.step))
        self.trainable_variables = (
            self.encoder.trainable_variables
            + self.projection_head.trainable_variables
            + (self.probe.trainable_variables if self.probe else [])
        )
        self.optimizer.build(self.trainable_variables)
        # Without synchronised BatchNorm each replica moves its own copy of the moving
        # statistics; they are averaged after every step (nothing to average otherwise).
        models = [self.encoder, self.projection_head, *([self.probe] if self.probe else [])]
        self._replica_statistics = (
            distribute.replica_local_statistics(models)
            if self.num_replicas > 1 and not sync
            else []
        )

    # -- one step ---------------------------------------------------------------------------

    def _probe_loss(self, h: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Cross-entropy and accuracy of the online probe on ``stop_gradient(h)``."""
        both_labels = tf.concat([labels, labels], axis=0)
        logits = self.probe(tf.stop_gradient(h), training=True)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(both_labels, logits, from_logits=True)
        )
        correct = tf.equal(tf.argmax(logits, -1), tf.cast(both_labels, tf.int64))
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))

    def _replica_step(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        """Runs on every replica: augment, encode, project, loss, gradients, update."""
        self._check_image_size(images)
        # The views depend on (seed, step) and each image's position in the global batch only.
        view1, view2 = two_views(images, self.config.seed, self.step, self.augment_config)
        with tf.GradientTape() as tape:
            h = self.encoder(tf.concat([view1, view2], axis=0), training=True)
            z = self.projection_head(h, training=True)
            z1, z2 = tf.split(z, 2, axis=0)
            loss, accuracy = nt_xent_loss(z1, z2, self.config.temperature)
            total = loss
            probe_accuracy = tf.constant(float("nan"))
            if self.probe is not None:
                probe_loss, probe_accuracy = self._probe_loss(h, labels)
                total = total + probe_loss
            # Gradients are summed over replicas, so each contributes 1/replicas of the mean.
            scaled = self.optimizer.scale_loss(total / self.num_replicas)
        gradients = tape.gradient(scaled, self.trainable_variables)
        loss_scale = current_loss_scale(self.optimizer)
        self.optimizer.apply(gradients, self.trainable_variables)
        distribute.average_over_replicas(self._replica_statistics)
        return {
            "loss": loss,
            "contrastive_accuracy": accuracy,
            "probe_accuracy": probe_accuracy,
            "loss_scale": loss_scale,
        }

    def _check_image_size(self, images: tf.Tensor) -> None:
        size = self.config.image_size
        if images.shape[1] != size or images.shape[2] != size:
            raise ValueError(
                f"The training step takes {size}x{size} images (image_size={size}); received "
                f"a batch of shape {images.shape}. Resize in the input pipeline "
                "(Pretrainer.epoch_batches does, with simclr_tf.data.batches.resize_images)."
            )

    def _distributed_step(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = self.strategy.run(self._replica_fn, args=(images, labels))
        metrics = {
            name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in per_replica.items()
        }
        metrics["learning_rate"] = self.learning_rate(self.step)
        self.step.assign_add(1)
        metrics["skipped_steps"] = skipped_steps(self.optimizer, self.step)
        return metrics

    def _distributed_steps(self, iterator: Any, count: tf.Tensor) -> tf.Tensor:
        """``count`` steps on the next batches of ``iterator``: float32 ``[count, metrics]``."""
        rows = tf.TensorArray(tf.float32, size=count)
        for index in tf.range(count):
            images, labels = next(iterator)
            metrics = self._distributed_step(images, labels)
            rows = rows.write(index, tf.stack([metrics[name] for name in STEP_METRICS]))
        return rows.stack()

    def train_step(self, images: Any, labels: Any = None) -> dict[str, float]:
        """One optimisation step on one (distributed) batch; returns the metrics as floats.

        A plain batch (an array or a tensor) of another size than ``config.image_size`` is
        resized first, on the host (:func:`~simclr_tf.data.batches.resize_images`).
        """
        if isinstance(images, (np.ndarray, tf.Tensor)):
            images = resize_images(images, self.config.image_size)
        if labels is None:
            labels = tf.zeros(tf.shape(images)[:1], tf.int32)
        metrics = self._train_step(images, labels)
        return {name: float(value) for name, value in metrics.items()}

    def train_steps(self, iterator: Any, count: int) -> list[dict[str, float]]:
        """``count`` optimisation steps in one call of the compiled function.

        The steps run in a loop inside one ``tf.function`` (as Keras' ``steps_per_execution``
        does), and their metrics come back in one device-to-host copy, so a call costs one
        Python round trip however many steps it takes. Traced once for every ``count``.

        Args:
            iterator: an iterator over the (distributed) batches, e.g.
                ``iter(pretrainer.distributed_batches(source, epoch))``; it must hold at
                least ``count`` more batches.
            count: the number of steps (>= 1).

        Returns:
            The metrics of each step, in order, as :meth:`train_step` returns them.
        """
        rows = self._train_steps(iterator, tf.constant(count, tf.int32)).numpy()
        return [dict(zip(STEP_METRICS, map(float, row), strict=True)) for row in rows]

    def steps_per_call(self, step: int, end: int) -> int:
        """How many steps the next :meth:`train_steps` call takes from ``step``.

        At most ``config.steps_per_execution``, none past ``end``, and the call ends on a
        checkpoint step (a multiple of ``config.checkpoint_every``), so that the callbacks of
        that step see, and a checkpoint saves, the weights of that very step.

        Args:
            step: the run's step before the call.
            end: the step to stop at (the end of the epoch or of the run).

        Returns:
            The count, >= 1 when ``step < end``.
        """
        count = min(self.config.steps_per_execution, end - step)
        every = self.config.checkpoint_every
        return min(count, every - step % every) if every else count

    # -- the loop ---------------------------------------------------------------------------

    def epoch_batches(
        self,
        source: TrainingImages,
        epoch: int,
        skip: int = 0,
        input_context: tf.distribute.InputContext | None = None,
    ) -> tf.data.Dataset:
        """The batches of ``epoch`` in an order fixed by ``(seed, epoch)``, minus the first
        ``skip`` (already trained on before a resume), resized to ``config.image_size``.
        Yields ``(images, labels)``: global batches, or with an ``input_context`` one input
        pipeline's per-replica batches (see :func:`simclr_tf.data.batches.epoch_batches`)."""
        return epoch_batches(
            source,
            self.config.batch_size,
            self.config.seed,
            epoch,
            skip,
            self.steps_per_epoch,
            image_size=self.config.image_size,
            input_context=input_context,
        )

    def distributed_batches(
        self, source: TrainingImages, epoch: int, skip: int = 0
    ) -> tf.distribute.DistributedDataset:
        """:meth:`epoch_batches` sharded over the strategy's input pipelines and replicas.

        Each worker reads only its block of every global batch; replica r of R gets images
        ``[r n, (r + 1) n)`` of the global batch, the same batches in the same order whatever
        the number of workers and devices.
        """
        return self.strategy.distribute_datasets_from_function(
            lambda context: self.epoch_batches(source, epoch, skip, context)
        )

    def default_callbacks(
        self, run: RunDirectory, checkpointer: Checkpointer | None = None
    ) -> list[Callback]:
        """The callbacks every run has: divergence check, checkpoints, CSV, TensorBoard,
        progress (see :mod:`simclr_tf.callbacks`)."""
        if checkpointer is None:
            checkpointer = self.checkpointer(run)
        logs = [
            CSVLogger(run),
            TensorBoardLogger(run.logs, max(1, self.steps_per_epoch // 50), self.total_steps),
        ]
        return [
            DivergenceCheck(RunDirectory(self.config.out_dir)),
            checkpointer,
            *(logs if self.is_chief else []),
            ProgressLogger(self.config.verbose, self.config.epochs),
        ]

    def writable_run(self) -> RunDirectory:
        """Where this process writes: ``config.out_dir`` on the chief, a scratch folder on the
        other workers (every worker must take part in saving checkpoints, but only the chief's
        are kept; TensorFlow's multi-worker pattern)."""
        if self.is_chief:
            return RunDirectory(self.config.out_dir)
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="simclr-worker-")
        return RunDirectory(self._scratch)

    def remove_scratch(self) -> None:
        """Removes a non-chief worker's scratch folder (nothing on the chief)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def checkpointer(self, run: RunDirectory) -> Checkpointer:
        """The callback that saves this run's checkpoints in ``run``."""
        manager = tf.train.CheckpointManager(
            self.checkpoint, run.checkpoints, max_to_keep=3, step_counter=self.step
        )
        return Checkpointer(manager, self.config.checkpoint_every, run)

    def restore(self, run: RunDirectory) -> int:
        """Restores the run's newest intact checkpoint, if any; returns the step it holds.

        Raises:
            CheckpointError: if the run's checkpoints are all damaged or belong to other
                models (see :func:`simclr_tf.runs.restore_checkpoint`).
        """
        restore_checkpoint(self.checkpoint, run)
        self._restored = (os.path.abspath(run.path), int(self.step.numpy()))
        return self._restored[1]

    def fit(
        self,
        images: np.ndarray | TrainingImages,
        labels: np.ndarray | None = None,
        callbacks: Sequence[Callback | Callable[[int, dict[str, float]], None]] = (),
    ) -> list[dict[str, float]]:
        """Trains until ``total_steps``, saving checkpoints and logs in ``config.out_dir``.

        Args:
            images: uint8 training images ``[N, H, W, 3]``, or a
                :class:`~simclr_tf.data.sources.TrainingImages` (for example a
                ``FolderImages``, which streams a folder from disk).
            labels: int labels ``[N]`` for the online probe, or ``None`` (arrays only).
            callbacks: :class:`~simclr_tf.callbacks.Callback` instances, or functions called as
                ``callback(step, metrics)`` after every step, after the run's own callbacks.
                One may set ``pretrainer.stop_training = True`` to end the run after this step
                (the epoch is then closed as usual: checkpoint, metrics row).

        Returns:
            The rows written to ``metrics.csv`` by this call, one per finished epoch.

        Raises:
            TrainingDivergedError: if the loss becomes NaN or infinite.
        """
        source = images if isinstance(images, TrainingImages) else ArrayImages(images, labels)
        shared = RunDirectory(self.config.out_dir)
        run = self.writable_run()
        os.makedirs(run.checkpoints, exist_ok=True)
        start = int(self.step.numpy())
        if self._restored != (os.path.abspath(shared.path), start):
            start = self.restore(shared)
        if self.is_chief:
            run.truncate_logs(start)
        self.stop_training = False
        self._example_images = source.first(QUALITY_IMAGES)
        checkpointer = self.checkpointer(run)
        callback_list = CallbackList([*self.default_callbacks(run, checkpointer), *callbacks])
        callback_list.set_pretrainer(self)
        callback_list.on_train_begin(start)
        rows: list[dict[str, float]] = []
        try:
            for epoch in range(start // self.steps_per_epoch, self.config.epochs):
                if int(self.step.numpy()) >= self.total_steps or self.stop_training:
                    break
                row = self._fit_epoch(source, epoch, callback_list, source.num_classes)
                if row is None:
                    break
                rows.append(row)
        except KeyboardInterrupt as interrupt:
            if isinstance(interrupt, TrainingInterrupted):
                raise
            raise self._interrupted(checkpointer) from None
        finally:
            callback_list.on_train_end()
        return rows

    def _interrupted(self, checkpointer: Checkpointer) -> TrainingInterrupted:
        """Checkpoints the current step after Ctrl-C or SIGTERM; returns what to raise."""
        step = int(self.step.numpy())
        if step:
            checkpointer.save(step)
        return TrainingInterrupted(
            f"Interrupted at step {step} of {self.total_steps}; "
            + (f"step {step} is checkpointed in {checkpointer.run.checkpoints!r}. " if step else "")
            + "Run the same command with --resume to continue.",
            step,
        )

    def _fit_epoch(
        self, source: TrainingImages, epoch: int, callbacks: Callback, num_classes: int | None
    ) -> dict[str, float] | None:
        """Trains one epoch (or what is left of it); returns its ``metrics.csv`` row."""
        first = epoch * self.steps_per_epoch
        skip = max(0, int(self.step.numpy()) - first)
        steps = min(self.steps_per_epoch, self.total_steps - first)
        callbacks.on_epoch_begin(epoch, steps, skip)
        meter = EpochMeter(self.config.batch_size)
        batches = iter(self.distributed_batches(source, epoch, skip))
        step, end = first + skip, first + steps
        while step < end and not self.stop_training:
            count = self.steps_per_call(step, end)
            if count > 1:
                rows = self.train_steps(batches, count)
            else:
                rows = [self.train_step(*next(batches))]
            if num_classes is None:
                for metrics in rows:
                    metrics["probe_accuracy"] = float("nan")
            meter.add(rows)
            for metrics in rows:
                step += 1
                callbacks.on_step_end(step, metrics)
        if not meter.steps:
            return None
        row = meter.row(epoch + 1, int(self.step.numpy()))
        row.update(self.representation_quality(self._example_images))
        callbacks.on_epoch_end(epoch, row)
        return row

    def representation_quality(self, images: np.ndarray) -> dict[str, float]:
        """Alignment, uniformity and per-dimension std of ``h`` on fixed images, as the
        evaluation defines them (:func:`simclr_tf.evaluate.quality.two_view_quality`)."""
        return two_view_quality(
            lambda views: self.encoder(views, training=False),
            images,
            self.augment_config,
            self.config.seed,
        )

    def example_views(self, count: int = 4) -> tuple[tf.Tensor, tf.Tensor]:
        """Two augmented views of the first ``count`` training images (for the logs)."""
        images = self._example_images[:count]
        config = dataclasses.replace(self.augment_config, jit_compile=False)
        return two_views(images, self.config.seed, 0, config)
