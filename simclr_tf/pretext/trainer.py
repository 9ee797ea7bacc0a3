"""The training loop of the pretext baselines: SimCLR's recipe with another objective.

:class:`PretextTrainer` mirrors :class:`simclr_tf.pretrainer.Pretrainer` wherever the comparison
must be fair: the same encoder (built and seeded by :func:`simclr_tf.models.encoder_from_config`
and :func:`simclr_tf.models.initialize_weights`, so every method starts from the very same
weights), the same epochs of the same images in the same order
(:func:`simclr_tf.data.batches.epoch_batches`), the same random resized crop, flip and view
size, the same optimizer, learning-rate schedule and precision. Only three things differ:
the task's head, its loss, and the augmentation's colour distortion and blur, which are left
out (RotNet and the context encoder train without them, and a colour-jittered target would be
a different inpainting task).

It trains on one device (``tf.distribute``'s default strategy) and keeps no checkpoints: a
baseline run is short and is judged once, at its end.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from simclr_tf import runtime
from simclr_tf.augment import AugmentConfig, augment_batch
from simclr_tf.augment.seeds import seed_pair, stream_seed
from simclr_tf.config import SimCLRConfig
from simclr_tf.data.batches import epoch_batches
from simclr_tf.data.sources import TrainingImages
from simclr_tf.models import encoder_from_config, initialize_weights
from simclr_tf.optim import learning_rate_from_config, optimizer_from_config
from simclr_tf.pretext.task import PretextTask

STREAM_PRETEXT = 0x9E7E
"""Seed stream of the pretext runs' randomness (views and the task's own), folded with the step."""

StepCallback = Callable[[int, dict[str, float]], None]


def pretext_augment_config(config: SimCLRConfig) -> AugmentConfig:
    """The run's crop, flip and view size, without colour distortion, grey, blur or solarise."""
    return dataclasses.replace(
        config.augment_config(),
        color_prob=0.0,
        grayscale_prob=0.0,
        blur_prob=0.0,
        solarize_prob=0.0,
    )


class PretextTrainer:
    """Holds the encoder, the task's head, the optimizer and the compiled step of one run.

    Args:
        config: the run configuration (SimCLR's; its contrastive fields, such as the
            temperature and the projection head, are not used).
        task: the pretext task (or the supervised reference).
        num_examples: training images per epoch; fixes the learning-rate schedule.
        num_classes: classes of the data set (the supervised reference's head only).

    Raises:
        ValueError: if the batch is larger than the data set, or the task cannot train on
            this configuration (for example inpainting on views whose side is not a multiple
            of 8).
    """

    def __init__(
        self,
        config: SimCLRConfig,
        task: PretextTask,
        num_examples: int,
        num_classes: int = 0,
    ) -> None:
        self.config = config.validate()
        self.task = task
        if not 0 < config.batch_size <= num_examples:
            raise ValueError(
                f"batch_size must be in [1, {num_examples}] (the number of training images); "
                f"received batch_size={config.batch_size}."
            )
        self.num_examples = num_examples
        self.steps_per_epoch = num_examples // config.batch_size
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.steps:
            self.total_steps = min(self.total_steps, config.steps)
        self.augment_config = pretext_augment_config(config)
        self.learning_rate = learning_rate_from_config(
            config, self.steps_per_epoch, self.total_steps
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        with runtime.precision_policy(config.precision):
            self.encoder = initialize_weights(encoder_from_config(config), config.seed)
            representation_dim = int(self.encoder.output.shape[-1])
            self.head = initialize_weights(
                task.build_head(representation_dim, config.view_size, num_classes),
                config.seed + 1,
            )
        self.optimizer = optimizer_from_config(config, lambda: self.learning_rate(self.step))
        self.trainable_variables = self.encoder.trainable_variables + self.head.trainable_variables
        self.optimizer.build(self.trainable_variables)
        self._train_step = tf.function(self._step)
        # Set by a callback of fit() to end the run early (for example at a time budget).
        self.stop_training = False

    def _step(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        seed = tf.random.experimental.stateless_fold_in(
            stream_seed(seed_pair(self.config.seed), STREAM_PRETEXT), self.step, alg="philox"
        )
        views = augment_batch(images, stream_seed(seed, 1), self.augment_config)
        inputs, targets = self.task.make_batch(views, labels, stream_seed(seed, 2))
        with tf.GradientTape() as tape:
            h = self.encoder(inputs, training=True)
            outputs = self.head(h, training=True)
            loss, metric = self.task.loss(outputs, targets)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.step.assign_add(1)
        return {"loss": loss, self.task.metric: metric}

    def train_step(self, images: tf.Tensor | np.ndarray, labels: tf.Tensor | np.ndarray) -> dict:
        """One optimizer step on a batch of uint8 images ``[B, H, W, 3]`` and labels ``[B]``.

        Returns:
            ``{"loss": float, <task.metric>: float}``.
        """
        values = self._train_step(tf.convert_to_tensor(images), tf.convert_to_tensor(labels))
        return {name: float(value) for name, value in values.items()}

    def fit(
        self, source: TrainingImages, callbacks: Sequence[StepCallback] = ()
    ) -> list[dict[str, float]]:
        """Trains to ``total_steps`` (or until a callback sets ``stop_training``).

        Args:
            source: the training images (and labels, which only the supervised reference
                reads).
            callbacks: functions ``(step, metrics)`` called after every step.

        Returns:
            One row per epoch: ``epoch``, ``step``, ``loss`` and the task's metric (means over
            the epoch), ``images_per_second`` and ``seconds``.
        """
        rows: list[dict[str, float]] = []
        epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        start_epoch = int(self.step.numpy()) // self.steps_per_epoch
        for epoch in range(start_epoch, epochs):
            row = self._fit_epoch(source, epoch, callbacks)
            if row:
                rows.append(row)
                if self.config.verbose:
                    print(self._format(row, epochs), flush=True)
            if self.stop_training or int(self.step.numpy()) >= self.total_steps:
                break
        return rows

    def _fit_epoch(
        self, source: TrainingImages, epoch: int, callbacks: Sequence[StepCallback]
    ) -> dict[str, float] | None:
        step = int(self.step.numpy())
        skip = step - epoch * self.steps_per_epoch
        count = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)
        batches = epoch_batches(
            source,
            self.config.batch_size,
            self.config.seed,
            epoch,
            skip=skip,
            num_batches=count,
            image_size=self.config.image_size,
        )
        sums: dict[str, float] = {}
        done, start = 0, time.perf_counter()
        for images, labels in batches:
            metrics = self.train_step(images, labels)
            for name, value in metrics.items():
                sums[name] = sums.get(name, 0.0) + value
            done += 1
            for callback in callbacks:
                callback(int(self.step.numpy()), metrics)
            if self.stop_training:
                break
        if not done:
            return None
        seconds = time.perf_counter() - start
        return {
            "epoch": epoch + 1,
            "step": int(self.step.numpy()),
            **{name: total / done for name, total in sums.items()},
            "images_per_second": done * self.config.batch_size / seconds,
            "seconds": seconds,
        }

    def _format(self, row: dict[str, float], epochs: int) -> str:
        metric = self.task.metric
        return (
            f"{self.task.name} epoch {row['epoch']}/{epochs}  step {row['step']}  "
            f"loss {row['loss']:.4f}  {metric} {row[metric]:.4f}  "
            f"{row['images_per_second']:.0f} img/s  {row['seconds']:.0f}s"
        )
