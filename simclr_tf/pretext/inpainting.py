"""Inpainting (Pathak et al., 2016, "Context Encoders: Feature Learning by Inpainting").

A square block of every image is blanked out and the network must paint it back from what
surrounds it. Here the encoder sees the damaged image, its representation ``h`` is the only
thing the decoder receives (the context encoder's bottleneck), and the decoder upsamples
``h`` back to the picture. The loss is the squared error, weighted 0.99 on the hidden block
and 0.01 on the rest (the paper's weighting, which also keeps the visible part anchored). The
paper's adversarial loss, which sharpens the painted block, is left out: it helps the
pictures, not the features (their Table 1 evaluates the features of the L2 model).

Its weakness as a pretext task: much of the loss is spent on low-level texture and colour
that a linear classifier cannot use, and the encoder trains on images with a grey hole but is
used on whole ones.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from simclr_tf.augment.seeds import uniform
from simclr_tf.pretext.task import PretextTask

MASK_WEIGHT = 0.99
"""Weight of the squared error inside the hidden block (the rest gets 1 - MASK_WEIGHT)."""
FILL_VALUE = 0.5
"""Value the hidden block is filled with, in [0, 1] (mid-grey, near the data's mean)."""
DECODER_UPSAMPLINGS = 3
"""The decoder starts at 1/8 of the view's side and doubles it three times."""


def block_masks(batch_size: tf.Tensor, size: int, block: int, seed: tf.Tensor) -> tf.Tensor:
    """One square block per image, at a random position inside it.

    Args:
        batch_size: B, the number of masks.
        size: side S of the images.
        block: side of the hidden block, in pixels (1 <= block <= S).
        seed: int64 ``[2]``; the same seed gives the same positions.

    Returns:
        float32 ``[B, S, S, 1]``: 1 inside the block, 0 elsewhere.

    Raises:
        ValueError: if ``block`` is not in [1, S].
    """
    if not 1 <= block <= size:
        raise ValueError(f"block must be in [1, {size}]; received block={block}.")
    corners = uniform([batch_size, 2], seed) * float(size - block + 1)
    corners = tf.minimum(tf.cast(tf.floor(corners), tf.int32), size - block)
    positions = tf.range(size, dtype=tf.int32)
    rows = (positions[None, :] >= corners[:, :1]) & (positions[None, :] < corners[:, :1] + block)
    cols = (positions[None, :] >= corners[:, 1:]) & (positions[None, :] < corners[:, 1:] + block)
    inside = rows[:, :, None] & cols[:, None, :]
    return tf.cast(inside, tf.float32)[..., None]


def weighted_reconstruction_loss(
    reconstruction: tf.Tensor, images: tf.Tensor, masks: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The context encoder's L2 loss and the mean squared error inside the blocks.

    Args:
        reconstruction: float ``[B, S, S, 3]``, the decoder's picture.
        images: float ``[B, S, S, 3]``, the undamaged images.
        masks: float ``[B, S, S, 1]`` from :func:`block_masks`.

    Returns:
        ``(loss, masked_mse)``: the squared error averaged with weight
        :data:`MASK_WEIGHT` inside the blocks and ``1 - MASK_WEIGHT`` outside, and the plain
        mean squared error of the hidden pixels.
    """
    error = tf.square(tf.cast(reconstruction, tf.float32) - images)
    weights = MASK_WEIGHT * masks + (1.0 - MASK_WEIGHT) * (1.0 - masks)
    loss = tf.reduce_sum(error * weights) / (3.0 * tf.reduce_sum(weights))
    masked_mse = tf.reduce_sum(error * masks) / (3.0 * tf.maximum(tf.reduce_sum(masks), 1.0))
    return loss, masked_mse


class Inpainting(PretextTask):
    """Hide a square block of every image; reconstruct the image from ``h``.

    Args:
        block_fraction: side of the hidden block as a fraction of the view's side (the
            context encoder's random blocks cover about a quarter of the area: 0.5).
        decoder_width: channels of the decoder's first feature map (halved at each
            upsampling).
    """

    name = "inpainting"
    metric = "masked_mse"

    def __init__(self, block_fraction: float = 0.5, decoder_width: int = 256) -> None:
        if not 0.0 < block_fraction <= 1.0:
            raise ValueError(f"block_fraction must be in (0, 1]; received {block_fraction!r}.")
        self.block_fraction = float(block_fraction)
        self.decoder_width = int(decoder_width)

    def build_head(self, representation_dim: int, view_size: int, num_classes: int) -> keras.Model:
        """The decoder ``[B, D] -> [B, S, S, 3]`` (sigmoid pixels).

        Raises:
            ValueError: if the view side is not a multiple of 8.
        """
        factor = 2**DECODER_UPSAMPLINGS
        if view_size % factor:
            raise ValueError(
                f"inpainting's decoder needs a view side that is a multiple of {factor}; "
                f"received view size {view_size} px. Change --image_size or --view_size_ratio."
            )
        base, width = view_size // factor, self.decoder_width
        layers: list[keras.layers.Layer] = [
            keras.Input((representation_dim,)),
            keras.layers.Dense(base * base * width, use_bias=False, name="decoder_dense"),
            keras.layers.BatchNormalization(name="decoder_bn0"),
            keras.layers.ReLU(),
            keras.layers.Reshape((base, base, width)),
        ]
        for index in range(DECODER_UPSAMPLINGS):
            width //= 2
            layers += [
                keras.layers.UpSampling2D(2, interpolation="nearest"),
                keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"up{index}"),
                keras.layers.BatchNormalization(name=f"decoder_bn{index + 1}"),
                keras.layers.ReLU(),
            ]
        layers.append(
            keras.layers.Conv2D(
                3, 3, padding="same", activation="sigmoid", dtype="float32", name="pixels"
            )
        )
        return keras.Sequential(layers, name="inpainting_decoder")

    def block_size(self, view_size: int) -> int:
        """Side of the hidden block for views of side ``view_size`` (at least one pixel)."""
        return max(1, round(self.block_fraction * view_size))

    def make_batch(
        self, views: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Damaged views as inputs; the targets pack the undamaged views and the masks.

        Returns:
            ``(inputs [B, S, S, 3], targets [B, S, S, 4])``: targets hold the clean image in
            channels 0-2 and the mask in channel 3.
        """
        size = int(views.shape[1])
        masks = block_masks(tf.shape(views)[0], size, self.block_size(size), seed)
        damaged = views * (1.0 - masks) + FILL_VALUE * masks
        return damaged, tf.concat([views, masks], axis=-1)

    def loss(self, outputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return weighted_reconstruction_loss(outputs, targets[..., :3], targets[..., 3:])
