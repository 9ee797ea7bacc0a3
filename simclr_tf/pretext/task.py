"""What a pretext task is, to the training loop: inputs and targets from a batch, a head, a loss.

A pretext task turns unlabelled images into a supervised problem whose labels come for free
(which way is up, what the hidden patch looked like). The encoder trained to solve it is then
judged like SimCLR's: by a linear probe and kNN on its representation ``h``. Each task
(:mod:`~simclr_tf.pretext.rotation`, :mod:`~simclr_tf.pretext.inpainting`, and the labelled
reference :mod:`~simclr_tf.pretext.supervised`) implements the three methods below;
:class:`~simclr_tf.pretext.trainer.PretextTrainer` does the rest (data, augmentation,
optimizer, schedule) exactly as SimCLR's :class:`~simclr_tf.pretrainer.Pretrainer` does, so that
the comparison changes one thing only: the objective.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class PretextTask:
    """Base class of the tasks; subclasses set ``name`` and ``metric`` and the three methods.

    Attributes:
        name: the task's name on the command line (``--task``).
        metric: name of the task's own quality measure (logged beside the loss).
        needs_labels: whether the task reads the class labels (only the supervised reference).
    """

    name: str = ""
    metric: str = ""
    needs_labels: bool = False

    def build_head(self, representation_dim: int, view_size: int, num_classes: int) -> keras.Model:
        """The network on top of ``h`` that solves the task (discarded after training).

        Args:
            representation_dim: width D of the encoder's output ``h``.
            view_size: side S of the views the encoder sees.
            num_classes: classes of the data set (used by the supervised reference only).

        Returns:
            A built Keras model ``[B, D] -> outputs``.
        """
        raise NotImplementedError

    def make_batch(
        self, views: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The encoder's inputs and the targets of one batch.

        Args:
            views: float32 ``[B, S, S, 3]`` in [0, 1], the augmented images (crop and flip).
            labels: int ``[B]`` class labels (only the supervised reference may read them).
            seed: int64 ``[2]``, this step's seed for the task's own randomness.

        Returns:
            ``(inputs float32 [M, S, S, 3], targets)``; M may differ from B.
        """
        raise NotImplementedError

    def loss(self, outputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The training loss and the task's metric (both float32 scalars)."""
        raise NotImplementedError
