"""Rotation prediction (Gidaris et al., 2018, "Unsupervised Representation Learning by
Predicting Image Rotations", RotNet).

Every image is shown four times, rotated by 0, 90, 180 and 270 degrees, and the network must
say which rotation it sees: a 4-way classification whose labels cost nothing. To answer, the
encoder has to find what is up in an image (heads above bodies, sky above ground), which
takes some notion of objects. Its weakness, and what SimCLR improves on: nothing asks two
images of the same thing to be represented alike, and rotation is ambiguous for round or
top-down objects.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from simclr_tf.pretext.task import PretextTask

ROTATIONS = 4
"""Quarter turns: 0, 90, 180 and 270 degrees (counter-clockwise)."""


def rotate_batch(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """All four rotations of every image, with the number of quarter turns as the label.

    Args:
        images: float ``[B, S, S, C]`` (square, so that every rotation has the same shape).

    Returns:
        ``(rotated [4B, S, S, C], labels int32 [4B])``: the B images turned 0 times, then the
        B turned once, and so on; label ``k`` means ``k`` quarter turns counter-clockwise.

    Raises:
        ValueError: if the images are not square.
    """
    if images.shape[1] != images.shape[2]:
        raise ValueError(
            f"rotation needs square images; received shape {tuple(images.shape)}. Resize or "
            "crop them to a square first."
        )
    # Quarter turns as transposes and reversals of the (height, width) axes, as np.rot90 does;
    # tf.image.rot90 would add a shape assertion to the graph for every turn.
    transposed = tf.transpose(images, [0, 2, 1, 3])
    turns = [images, tf.reverse(transposed, [1]), tf.reverse(images, [1, 2])]
    turns.append(tf.reverse(transposed, [2]))
    rotated = tf.concat(turns, axis=0)
    labels = tf.repeat(tf.range(ROTATIONS, dtype=tf.int32), tf.shape(images)[0])
    return rotated, labels


class RotationPrediction(PretextTask):
    """Predict which of four rotations an image shows, from ``h``.

    Args:
        hidden_dim: width of the head's hidden layer (a two-layer MLP, like SimCLR's
            projection head, so that the encoder's last layer is not forced to be linear in
            the task).
    """

    name = "rotation"
    metric = "rotation_accuracy"

    def __init__(self, hidden_dim: int = 512) -> None:
        self.hidden_dim = int(hidden_dim)

    def build_head(self, representation_dim: int, view_size: int, num_classes: int) -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((representation_dim,)),
                keras.layers.Dense(self.hidden_dim, use_bias=False, name="rotation_hidden"),
                keras.layers.BatchNormalization(name="rotation_bn"),
                keras.layers.ReLU(),
                keras.layers.Dense(ROTATIONS, dtype="float32", name="rotation_logits"),
            ],
            name="rotation_head",
        )

    def make_batch(
        self, views: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        return rotate_batch(views)

    def loss(self, outputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return classification_loss(outputs, targets)


def classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean cross-entropy and accuracy of ``logits [M, K]`` against int ``labels [M]``."""
    logits = tf.cast(logits, tf.float32)
    loss = tf.reduce_mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
    return loss, tf.reduce_mean(tf.cast(correct, tf.float32))
