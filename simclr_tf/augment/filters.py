"""Filters: Gaussian blur and solarisation, batched, with per-image parameters."""

from __future__ import annotations

import tensorflow as tf

from simclr_tf.augment.color import per_image


def gaussian_blur(images: tf.Tensor, sigmas: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """Blurs each image with its own Gaussian, separably, with reflected borders.

    Each axis is a weighted sum of ``kernel_size`` shifted copies of the padded batch, with
    per-image weights; XLA fuses the sum into one pass. Borders are reflected without
    repeating the edge pixel (OpenCV's default ``BORDER_REFLECT_101``).

    Args:
        images: float ``[B, H, W, C]``.
        sigmas: ``[B]`` standard deviations in pixels; a sigma of 0 leaves an image unchanged.
        kernel_size: odd number of taps (>= 1), smaller than H and W.

    Returns:
        float32 ``[B, H, W, C]``.

    Raises:
        ValueError: if ``kernel_size`` is even or not smaller than the image.
    """
    radius = kernel_size // 2
    height, width = images.shape[1], images.shape[2]
    if kernel_size % 2 != 1 or radius >= min(height, width):
        raise ValueError(
            f"kernel_size must be odd and smaller than the image side; received "
            f"kernel_size={kernel_size} for {height}x{width} images."
        )
    if radius == 0:
        return images
    sigmas = tf.cast(sigmas, tf.float32)[:, None]
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    safe_sigmas = tf.where(sigmas > 0, sigmas, 1.0)
    kernels = tf.exp(-tf.square(offsets) / (2.0 * tf.square(safe_sigmas)))
    identity = tf.cast(tf.equal(offsets, 0.0), tf.float32)
    kernels = tf.where(sigmas > 0, kernels, identity)  # [B, k], not yet normalised
    taps = [per_image(kernels[:, tap]) for tap in range(kernel_size)]
    total = per_image(tf.reduce_sum(kernels, axis=1))

    # Each pass divides its weighted sum by the kernel's total (rather than normalising the
    # kernel first): a division is what keeps XLA from recomputing the first pass inside
    # every tap of the second, which would cost kernel_size times more work.
    padded = tf.pad(images, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode="REFLECT")
    images = tf.add_n([taps[t] * padded[:, :, t : t + width, :] for t in range(kernel_size)])
    images = images / total
    padded = tf.pad(images, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode="REFLECT")
    images = tf.add_n([taps[t] * padded[:, t : t + height, :, :] for t in range(kernel_size)])
    return images / total


def solarize(
    images: tf.Tensor, threshold: float = 0.5, apply: tf.Tensor | None = None
) -> tf.Tensor:
    """Inverts pixels at or above ``threshold`` (``x -> 1 - x``), in all or selected images.

    Args:
        images: float ``[B, H, W, C]`` in [0, 1].
        threshold: in [0, 1].
        apply: optional bool ``[B]``.

    Returns:
        float32 ``[B, H, W, C]``.
    """
    invert = images >= threshold
    if apply is not None:
        invert = invert & apply[:, None, None, None]
    return tf.where(invert, 1.0 - images, images)
