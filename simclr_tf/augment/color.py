"""Colour: brightness, contrast, saturation, hue, grayscale and colour jitter, batched.

Every function takes a batch ``[B, H, W, 3]`` of float RGB images in [0, 1] and per-image
parameters of shape ``[B]``; the functions of the same names in :mod:`simclr_tf.transforms`
take one ``H x W x 3`` image and python numbers.

Brightness, contrast, saturation, grayscale and the (default, YIQ) hue rotation are all linear
maps of a pixel's colour, so each is a per-image 3x3 matrix (plus an offset for contrast),
applied by :func:`apply_color_matrices`. The random order of the four jitter operations is done
in four stages: at stage k every image applies the operation its own permutation puts at
position k, by picking its matrix from the four, so all 24 orders occur at the cost of one
operation per stage (:func:`color_jitter`).

How colour jitter is defined (these follow torchvision, which the paper's appendix cites):

* brightness multiplies by a factor; contrast blends with the image's mean gray level;
  saturation blends with the image's grayscale; every step is clipped to [0, 1].
* gray levels use the ITU-R BT.601 weights (0.299, 0.587, 0.114), as OpenCV does.
* the hue shift is a fraction of a turn of the colour wheel. ``hue_method="yiq"`` (default)
  rotates the chroma plane of the YIQ colour space: it keeps each pixel's luma (gray level)
  and is a 3x3 matrix like the other operations, but is only an approximation of the HSV hue
  rotation that torchvision and the official code use. ``hue_method="hsv"`` is that exact
  rotation (it keeps each pixel's largest and smallest channel); it is not linear, so it is
  computed for the whole batch at each of the four stages, which makes the jitter about twice
  as slow.
"""

from __future__ import annotations

import math

import tensorflow as tf

from simclr_tf.augment.config import (
    DEFAULT_HUE_METHOD,
    GRAY_WEIGHTS,
    RGB_TO_YIQ,
    check_hue_method,
)


def _gray_weights() -> tf.Tensor:
    return tf.constant(GRAY_WEIGHTS, tf.float32)


def _check_batch(images: tf.Tensor, function: str) -> None:
    """Raises if ``images`` has a known rank other than 4 (a batch ``[B, H, W, 3]``)."""
    shape = tf.TensorShape(getattr(images, "shape", None))
    if shape.rank is not None and shape.rank != 4:
        raise ValueError(
            f"{function} takes a batch [B, H, W, 3]; received shape {shape}. Add a batch axis "
            f"with images[None], or use simclr_tf.transforms.{function} for one H x W x 3 image."
        )


def grayscale(images: tf.Tensor) -> tf.Tensor:
    """Gray level of each pixel of a batch, with BT.601 weights, in one channel.

    The one-image version is :func:`simclr_tf.transforms.grayscale`.

    Args:
        images: float ``[B, H, W, 3]``.

    Returns:
        float32 ``[B, H, W, 1]``.

    Raises:
        ValueError: if ``images`` is not a batch (rank 4).
    """
    _check_batch(images, "grayscale")
    return tf.reduce_sum(images * _gray_weights(), axis=-1, keepdims=True)


def per_image(values: tf.Tensor) -> tf.Tensor:
    """``[B]`` -> ``[B, 1, 1, 1]`` for broadcasting against a batch of images."""
    return tf.reshape(tf.cast(values, tf.float32), [-1, 1, 1, 1])


# Brightness, contrast, saturation, grayscale and the YIQ hue rotation are all linear maps of
# a pixel's (R, G, B) values, plus a constant for contrast. So each is a per-image 3x3 matrix
# M (and offset c): pixel -> M @ pixel + c. One small routine applies any of them to a batch.


def apply_color_matrices(
    images: tf.Tensor, matrices: tf.Tensor, offsets: tf.Tensor | None = None
) -> tf.Tensor:
    """Maps every pixel ``p`` of image b to ``matrices[b] @ p + offsets[b]``.

    Written as three broadcast multiply-adds, which XLA fuses into one pass over the batch.

    Args:
        images: float ``[B, H, W, 3]``.
        matrices: float ``[B, 3, 3]``.
        offsets: optional float ``[B, 3]``.

    Returns:
        float32 ``[B, H, W, 3]`` (not clipped).
    """
    columns = tf.cast(matrices, tf.float32)[:, None, None, :, :]  # [B, 1, 1, 3 out, 3 in]
    mapped = (
        images[..., 0:1] * columns[..., 0]
        + images[..., 1:2] * columns[..., 1]
        + images[..., 2:3] * columns[..., 2]
    )
    if offsets is not None:
        mapped = mapped + tf.cast(offsets, tf.float32)[:, None, None, :]
    return mapped


def _scaled_identity(factors: tf.Tensor) -> tf.Tensor:
    return tf.cast(factors, tf.float32)[:, None, None] * tf.eye(3)


def _gray_projection() -> tf.Tensor:
    """The 3x3 matrix that replaces a pixel by its gray level in all three channels."""
    return tf.ones([3, 1]) * _gray_weights()[None, :]


def brightness_matrices(factors: tf.Tensor) -> tf.Tensor:
    """``[B]`` brightness factors -> ``[B, 3, 3]`` matrices ``f * I``."""
    return _scaled_identity(factors)


def saturation_matrices(factors: tf.Tensor) -> tf.Tensor:
    """``[B]`` saturation factors -> ``[B, 3, 3]``: a blend ``f * I + (1 - f) * gray``."""
    factors = tf.cast(factors, tf.float32)[:, None, None]
    return factors * tf.eye(3) + (1.0 - factors) * _gray_projection()


def yiq_hue_matrices(shifts: tf.Tensor) -> tf.Tensor:
    """``[B]`` hue shifts (turns) -> ``[B, 3, 3]`` RGB matrices rotating the YIQ chroma plane.

    Luma (Y) is kept; the chroma vector (I, Q) turns by ``shifts`` of a full turn, in the
    direction in which the HSV hue grows (red towards yellow and green).
    """
    to_yiq = tf.constant(RGB_TO_YIQ, tf.float32)
    from_yiq = tf.linalg.inv(to_yiq)
    angle = -2.0 * math.pi * tf.cast(shifts, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    one, zero = tf.ones_like(cos), tf.zeros_like(cos)
    rotation = tf.stack(
        [
            tf.stack([one, zero, zero], axis=-1),
            tf.stack([zero, cos, -sin], axis=-1),
            tf.stack([zero, sin, cos], axis=-1),
        ],
        axis=1,
    )
    matrices = tf.einsum("ij,bjk,kl->bil", from_yiq, rotation, to_yiq)
    # A zero shift gives exactly the identity (the product above is only close to it).
    return tf.where(tf.equal(shifts, 0.0)[:, None, None], tf.eye(3), matrices)


def _mean_gray(images: tf.Tensor) -> tf.Tensor:
    """``[B]`` mean gray level of each image."""
    return tf.reduce_sum(tf.reduce_mean(images, axis=[1, 2]) * _gray_weights(), axis=-1)


def _contrast_offsets(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """``[B, 3]`` offsets ``(1 - f) * mean gray`` that complete a contrast change."""
    offsets = (1.0 - tf.cast(factors, tf.float32)) * _mean_gray(images)
    return tf.tile(offsets[:, None], [1, 3])


def _clip(images: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(images, 0.0, 1.0)


def adjust_brightness(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Multiplies each image by its factor and clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 leaves an image unchanged.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    return _clip(apply_color_matrices(images, brightness_matrices(factors)))


def adjust_contrast(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Scales each image's distance from its mean gray level, then clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 unchanged, 0 a flat gray image.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    offsets = _contrast_offsets(images, factors)
    return _clip(apply_color_matrices(images, _scaled_identity(factors), offsets))


def adjust_saturation(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Blends each image with its own grayscale version, then clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 unchanged, 0 gray, above 1 more saturated.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    return _clip(apply_color_matrices(images, saturation_matrices(factors)))


def to_grayscale(images: tf.Tensor, apply: tf.Tensor | None = None) -> tf.Tensor:
    """Replaces the images of a batch (or those where ``apply`` is true) by their gray level in
    all 3 channels.

    The one-image version is :func:`simclr_tf.transforms.to_grayscale`.

    Args:
        images: float ``[B, H, W, 3]``.
        apply: optional bool ``[B]``.

    Returns:
        float32 ``[B, H, W, 3]``.

    Raises:
        ValueError: if ``images`` is not a batch (rank 4).
    """
    _check_batch(images, "to_grayscale")
    if apply is None:
        return tf.broadcast_to(grayscale(images), tf.shape(images))
    matrices = tf.where(apply[:, None, None], _gray_projection(), tf.eye(3))
    return apply_color_matrices(images, matrices)


def _hue_shift_hsv(images: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Hue rotation in HSV space; ``shifts`` is ``[B, 1, 1, 1]`` in turns.

    Uses the closed form of HSV -> RGB: channel n is ``V - C * clip(min(k, 4 - k), 0, 1)``
    with ``k = (n + H / 60 deg) mod 6`` and n = 5, 3, 1 for R, G, B, where V is the largest
    channel and C the largest minus the smallest. The sector is decided by comparing the
    channels with each other (never by testing a recomputed maximum for equality), so the
    result stays right however XLA fuses or recomputes the inputs.
    """
    red, green, blue = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    red_is_max = (red >= green) & (red >= blue)
    green_is_max = ~red_is_max & (green >= blue)
    value = tf.where(red_is_max, red, tf.where(green_is_max, green, blue))
    chroma = value - tf.minimum(tf.minimum(red, green), blue)
    inverse_chroma = tf.math.reciprocal_no_nan(chroma)
    # Hue in sextants (60 degree sectors): the largest channel decides the sector.
    hue = tf.where(
        red_is_max,
        (green - blue) * inverse_chroma,
        tf.where(
            green_is_max,
            (blue - red) * inverse_chroma + 2.0,
            (red - green) * inverse_chroma + 4.0,
        ),
    )
    sector = tf.constant([5.0, 3.0, 1.0]) + (hue + 6.0 * shifts)
    sector = sector - 6.0 * tf.floor(sector * (1.0 / 6.0))  # mod 6, cheaper than floormod
    return value - chroma * tf.clip_by_value(tf.minimum(sector, 4.0 - sector), 0.0, 1.0)


def adjust_hue(images: tf.Tensor, shifts: tf.Tensor, method: str = DEFAULT_HUE_METHOD) -> tf.Tensor:
    """Rotates each image's hue by its own shift, in turns (0.5 = half the colour wheel).

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        shifts: ``[B]`` in [-0.5, 0.5].
        method: "yiq" (default, ``DEFAULT_HUE_METHOD``: rotation of the YIQ chroma plane;
            keeps luma, then clips to [0, 1]) or "hsv" (exact; keeps each pixel's max and min
            channel).

    Returns:
        float32 ``[B, H, W, 3]`` in [0, 1].

    Raises:
        ValueError: for an unknown method.
    """
    if check_hue_method(method, "method") == "hsv":
        return _clip(_hue_shift_hsv(images, per_image(shifts)))
    return _clip(apply_color_matrices(images, yiq_hue_matrices(shifts)))


def color_jitter(
    images: tf.Tensor,
    brightness: tf.Tensor,
    contrast: tf.Tensor,
    saturation: tf.Tensor,
    hue: tf.Tensor,
    order: tf.Tensor | None = None,
    hue_method: str = DEFAULT_HUE_METHOD,
) -> tf.Tensor:
    """Applies the four jitter operations with per-image factors, in a per-image order.

    Each operation is followed by clipping to [0, 1], as in torchvision and the official
    code. The order is done in four stages: at stage k every image applies the operation
    ``order[b, k]``. Since brightness, contrast, saturation and the YIQ hue rotation are all
    per-image 3x3 colour matrices (plus an offset for contrast), a stage picks each image's
    matrix and applies them all in one pass. The HSV hue is not linear: it is computed for the
    whole batch at every stage and selected where an image's operation is the hue.

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        brightness: ``[B]`` brightness factors (1: unchanged).
        contrast: ``[B]`` contrast factors (1: unchanged).
        saturation: ``[B]`` saturation factors (1: unchanged).
        hue: ``[B]`` hue shifts in turns (0: unchanged).
        order: int ``[B, 4]``, each row a permutation of 0..3 indexing
            ``JITTER_OPERATIONS``; ``None`` means the fixed order 0, 1, 2, 3 for every image.
        hue_method: "yiq" (default) or "hsv", see :func:`adjust_hue`.

    Returns:
        float32 ``[B, H, W, 3]`` in [0, 1].

    Raises:
        ValueError: for an unknown hue method.
    """
    check_hue_method(hue_method)
    if order is None:
        order = tf.zeros_like(tf.cast(brightness, tf.int32))[:, None] + tf.range(4)
    order = tf.cast(order, tf.int32)
    contrast = tf.cast(contrast, tf.float32)
    if hue_method == "yiq":
        hue_matrix = yiq_hue_matrices(hue)
    else:
        hue_matrix = tf.eye(3, batch_shape=tf.shape(contrast))
    # [B, 4, 3, 3]: each image's matrix for each operation, in JITTER_OPERATIONS order.
    matrices = tf.stack(
        [
            brightness_matrices(brightness),
            _scaled_identity(contrast),
            saturation_matrices(saturation),
            hue_matrix,
        ],
        axis=1,
    )
    for stage in range(4):
        operation = order[:, stage]
        matrix = tf.gather(matrices, operation, axis=1, batch_dims=1)
        is_contrast = tf.equal(operation, 1)[:, None]
        offsets = tf.where(is_contrast, _contrast_offsets(images, contrast), 0.0)
        jittered = _clip(apply_color_matrices(images, matrix, offsets))
        if hue_method == "hsv":
            is_hue = (tf.equal(operation, 3) & tf.not_equal(hue, 0.0))[:, None, None, None]
            jittered = tf.where(is_hue, _clip(_hue_shift_hsv(images, per_image(hue))), jittered)
        images = jittered
    return images
