"""The labelled reference: the same encoder and loop, trained on the class labels.

Not a pretext task: it reads the labels the others do without. It shows, in the same budget,
how far the self-supervised representations are from the one labels buy, and, trained on a
few labels only, what pretraining saves (the label-efficiency curve of notebook 06).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from simclr_tf.pretext.rotation import classification_loss
from simclr_tf.pretext.task import PretextTask


class SupervisedClassification(PretextTask):
    """Cross-entropy on the class labels with a linear classifier on ``h``."""

    name = "supervised"
    metric = "train_accuracy"
    needs_labels = True

    def build_head(self, representation_dim: int, view_size: int, num_classes: int) -> keras.Model:
        if num_classes < 2:
            raise ValueError(
                "the supervised reference needs labels of at least two classes; received "
                f"num_classes={num_classes}."
            )
        return keras.Sequential(
            [
                keras.Input((representation_dim,)),
                keras.layers.Dense(num_classes, dtype="float32", name="classifier"),
            ],
            name="classifier_head",
        )

    def make_batch(
        self, views: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        return views, tf.cast(labels, tf.int32)

    def loss(self, outputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return classification_loss(outputs, targets)
