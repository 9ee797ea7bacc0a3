"""Random resized crops and horizontal flips, batched, with per-image boxes.

Crop boxes are ``[y_min, x_min, y_max, x_max]`` in normalised coordinates, the convention of
``tf.image.crop_and_resize``: 0 is the centre of the first pixel and 1 the centre of the last,
and a box's area and aspect ratio are measured in these coordinates (the full box
``[0, 0, 1, 1]`` has area 1). The crop is resampled with bilinear interpolation exactly as
``tf.image.crop_and_resize`` does; it is written with gathers because ``CropAndResize`` has no
XLA kernel and so would break ``jit_compile=True``. A flip is the same crop read right to left
(:func:`flip_boxes`), so crop and flip cost one resampling.

How the crop is sampled, and how that differs from other code:

* The area is uniform in ``crop_area`` and the aspect ratio is log-uniform in ``crop_aspect``
  (so 3/4 and 4/3 are equally likely), as the paper's text and torchvision's
  ``RandomResizedCrop`` have it. The official SimCLR TensorFlow code instead calls
  ``tf.image.sample_distorted_bounding_box``, which draws the aspect ratio uniformly (not
  log-uniformly), then the crop *height* uniformly among whole pixels, so its areas lean
  towards small crops; it also resizes bicubically.
* A box that does not fit in the image is redrawn, ``crop_attempts`` times per image in
  parallel, and the first box that fits is used; if none fits (probability below 1e-8 with the
  defaults) the whole image is used, as in the official code.
* The box is continuous (sub-pixel), not rounded to whole pixels.
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from simclr_tf.augment.seeds import stream_seed, uniform


def sample_crop_boxes(
    seed: tf.Tensor,
    batch_size: Any,
    height: int,
    width: int,
    area: tuple[float, float] = (0.08, 1.0),
    aspect: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    attempts: int = 10,
) -> tf.Tensor:
    """Draws one random crop box per image.

    Args:
        seed: int32/int64 tensor of shape [2].
        batch_size: number of boxes B (int or scalar tensor).
        height: image height in pixels (sets what aspect ratio means in normalised units).
        width: image width in pixels.
        area: range of the box area, as a fraction of the image; sampled uniformly.
        aspect: range of the aspect ratio width / height (in pixels); sampled log-uniformly.
        attempts: boxes drawn per image; the first that fits is kept, else the full image.

    Returns:
        float32 ``[B, 4]`` boxes ``[y_min, x_min, y_max, x_max]`` in normalised coordinates.
    """
    shape = tf.stack([batch_size, attempts])
    crop_area = uniform(shape, stream_seed(seed, 0), area[0], area[1])
    log_aspect = uniform(shape, stream_seed(seed, 1), math.log(aspect[0]), math.log(aspect[1]))
    aspect_ratio = tf.exp(log_aspect)
    # Box sides in normalised units: w * h = area and (w * width) / (h * height) = aspect.
    box_width = tf.sqrt(crop_area * aspect_ratio * (height / width))
    box_height = tf.sqrt(crop_area / aspect_ratio * (width / height))
    fits = (box_width <= 1.0) & (box_height <= 1.0)
    first_fit = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    any_fit = tf.reduce_any(fits, axis=1)
    box_width = tf.where(any_fit, tf.gather(box_width, first_fit, axis=1, batch_dims=1), 1.0)
    box_height = tf.where(any_fit, tf.gather(box_height, first_fit, axis=1, batch_dims=1), 1.0)
    position = uniform(tf.stack([batch_size, 2]), stream_seed(seed, 2))
    y_min = position[:, 0] * (1.0 - box_height)
    x_min = position[:, 1] * (1.0 - box_width)
    return tf.stack([y_min, x_min, y_min + box_height, x_min + box_width], axis=1)


def _bilinear_weights(positions: tf.Tensor, size: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Lower index, upper index and upper weight of positions along an axis of ``size``."""
    lower = tf.floor(positions)
    weight = positions - lower
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, size - 1)
    return tf.clip_by_value(lower, 0, size - 1), upper, weight


def resized_crop(images: tf.Tensor, boxes: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Crops each image to its own box and resizes it, with bilinear interpolation.

    Gives the same result as ``tf.image.crop_and_resize(images, boxes, range(B), size)``
    (which has no XLA kernel). A box with ``x_min > x_max`` gives a horizontally flipped crop.

    Args:
        images: float ``[B, H, W, C]``.
        boxes: float ``[B, 4]`` boxes ``[y_min, x_min, y_max, x_max]`` in normalised
            coordinates (0: centre of the first pixel, 1: centre of the last).
        size: output ``(height, width)``.

    Returns:
        float32 ``[B, size[0], size[1], C]``.
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    out_height, out_width = size

    def grid(start: tf.Tensor, stop: tf.Tensor, count: int, extent: tf.Tensor) -> tf.Tensor:
        scale = tf.cast(extent - 1, tf.float32)
        if count == 1:  # crop_and_resize samples the box centre
            return ((start + stop) * 0.5 * scale)[:, None]
        steps = tf.range(count, dtype=tf.float32)
        return start[:, None] * scale + steps * ((stop - start) * scale / (count - 1))[:, None]

    rows = grid(boxes[:, 0], boxes[:, 2], out_height, height)  # [B, out_height]
    cols = grid(boxes[:, 1], boxes[:, 3], out_width, width)  # [B, out_width]
    top, bottom, row_weight = _bilinear_weights(rows, height)
    left, right, col_weight = _bilinear_weights(cols, width)
    top_rows = tf.gather(images, top, axis=1, batch_dims=1)
    bottom_rows = tf.gather(images, bottom, axis=1, batch_dims=1)
    sampled = top_rows + row_weight[:, :, None, None] * (bottom_rows - top_rows)
    left_cols = tf.gather(sampled, left, axis=2, batch_dims=1)
    right_cols = tf.gather(sampled, right, axis=2, batch_dims=1)
    return left_cols + col_weight[:, None, :, None] * (right_cols - left_cols)


def flip_boxes(boxes: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Swaps x_min and x_max of the boxes where ``flip`` is true (a flipped crop).

    Args:
        boxes: ``[B, 4]`` normalised boxes.
        flip: bool ``[B]``.

    Returns:
        ``[B, 4]`` boxes.
    """
    swapped = tf.gather(boxes, [0, 3, 2, 1], axis=1)
    return tf.where(flip[:, None], swapped, boxes)


def horizontal_flip(images: tf.Tensor, flip: tf.Tensor | None = None) -> tf.Tensor:
    """Mirrors images left to right (all of them, or those where ``flip`` is true).

    Args:
        images: ``[B, H, W, C]``.
        flip: optional bool ``[B]``.

    Returns:
        Tensor of the same shape and dtype.
    """
    flipped = tf.reverse(images, axis=[2])
    if flip is None:
        return flipped
    return tf.where(flip[:, None, None, None], flipped, images)
