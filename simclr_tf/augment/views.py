"""The whole augmentation: per-image parameters for a batch, one view, and the two views.

* :func:`sample_parameters` draws every random choice for a batch (:class:`AugmentParameters`,
  one entry per image) from a seed pair; :func:`apply_parameters` applies them, operation by
  operation (crop and flip, colour jitter, grayscale, blur, solarisation), skipping those whose
  probability is 0. Drawing and applying are separate, so tests can fix the parameters.
* :func:`augment_batch` is the two together: one random view of every image, compiled by XLA
  as its own cluster when ``config.jit_compile`` is set (the default), even when the training
  step is not: XLA fuses the element-wise work into a few passes over the batch, which on a CPU
  is several times faster than running one TensorFlow kernel per operation.
  ``benchmarks/augment_throughput.py`` measures it.
* :func:`two_views` is what training calls: the two views of a batch, a pure function of
  (images, seed, step, config).

Input: uint8 images are divided by 255, float images are assumed to be in [0, 1] already
(:func:`to_unit_range`). Output: float32 in [0, 1], shape ``[B, S, S, 3]`` where S is
``config.output_size`` (by default the input's height and width, so the shape is unchanged).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from simclr_tf.augment.color import color_jitter, to_grayscale
from simclr_tf.augment.config import AugmentConfig
from simclr_tf.augment.filters import gaussian_blur, solarize
from simclr_tf.augment.geometry import flip_boxes, resized_crop, sample_crop_boxes
from simclr_tf.augment.seeds import (
    STREAM_BLUR_APPLY,
    STREAM_BLUR_SIGMA,
    STREAM_CROP,
    STREAM_FLIP,
    STREAM_GRAYSCALE,
    STREAM_JITTER_APPLY,
    STREAM_JITTER_FACTORS,
    STREAM_JITTER_ORDER,
    STREAM_SOLARIZE,
    STREAM_VIEWS,
    bernoulli,
    seed_pair,
    stream_seed,
    uniform,
)
from simclr_tf.distribute import replica_block


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
    """Converts images to float32 in [0, 1].

    Args:
        images: ``[..., H, W, C]`` uint8 (divided by 255) or float (assumed in [0, 1]).

    Returns:
        float32 tensor of the same shape.

    Raises:
        ValueError: for integer dtypes other than uint8.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) * (1.0 / 255.0)
    if not images.dtype.is_floating:
        raise ValueError(
            f"images must be uint8 (0..255) or float (0..1); received dtype {images.dtype.name}. "
            "Cast them, e.g. tf.cast(images, tf.uint8)."
        )
    return tf.cast(images, tf.float32)


class AugmentParameters(NamedTuple):
    """Every random choice for a batch, one entry per image (B images)."""

    crop_boxes: tf.Tensor  # float32 [B, 4], before flipping
    flip: tf.Tensor  # bool [B]
    jitter: tf.Tensor  # bool [B]: colour jitter applied
    brightness: tf.Tensor  # float32 [B]
    contrast: tf.Tensor  # float32 [B]
    saturation: tf.Tensor  # float32 [B]
    hue: tf.Tensor  # float32 [B], turns
    jitter_order: tf.Tensor  # int32 [B, 4], permutations of 0..3
    grayscale: tf.Tensor  # bool [B]
    blur: tf.Tensor  # bool [B]
    blur_sigma: tf.Tensor  # float32 [B]
    solarize: tf.Tensor  # bool [B]


def sample_parameters(
    seed: tf.Tensor, batch_size: Any, height: int, width: int, config: AugmentConfig
) -> AugmentParameters:
    """Draws all random parameters for a batch of B images.

    Args:
        seed: int32/int64 tensor of shape [2].
        batch_size: B (int or scalar int tensor).
        height: input image height.
        width: input image width.
        config: the augmentation settings.

    Returns:
        The parameters, each a tensor with leading dimension B.
    """
    seed = seed_pair(seed)
    batch = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    boxes = sample_crop_boxes(
        stream_seed(seed, STREAM_CROP),
        batch[0],
        height,
        width,
        config.crop_area,
        config.crop_aspect,
        config.crop_attempts,
    )

    def factors(stream: tf.Tensor, max_change: float) -> tf.Tensor:
        return uniform(batch, stream, max(0.0, 1.0 - max_change), 1.0 + max_change)

    factor_seeds = tf.random.experimental.stateless_split(
        stream_seed(seed, STREAM_JITTER_FACTORS), 4, alg="philox"
    )
    if config.color_random_order:
        keys = uniform(tf.concat([batch, [4]], 0), stream_seed(seed, STREAM_JITTER_ORDER))
        order = tf.argsort(keys, axis=1, stable=True)
    else:
        order = tf.tile(tf.range(4)[None, :], tf.concat([batch, [1]], 0))
    return AugmentParameters(
        crop_boxes=boxes,
        flip=bernoulli(batch, stream_seed(seed, STREAM_FLIP), config.flip_prob),
        jitter=bernoulli(batch, stream_seed(seed, STREAM_JITTER_APPLY), config.color_prob),
        brightness=factors(factor_seeds[0], config.brightness_range),
        contrast=factors(factor_seeds[1], config.contrast_range),
        saturation=factors(factor_seeds[2], config.saturation_range),
        hue=uniform(batch, factor_seeds[3], -config.hue_range, config.hue_range),
        jitter_order=tf.cast(order, tf.int32),
        grayscale=bernoulli(batch, stream_seed(seed, STREAM_GRAYSCALE), config.grayscale_prob),
        blur=bernoulli(batch, stream_seed(seed, STREAM_BLUR_APPLY), config.blur_prob),
        blur_sigma=uniform(
            batch, stream_seed(seed, STREAM_BLUR_SIGMA), config.blur_sigma[0], config.blur_sigma[1]
        ),
        solarize=bernoulli(batch, stream_seed(seed, STREAM_SOLARIZE), config.solarize_prob),
    )


def _check_images(images: tf.Tensor) -> tuple[int, int]:
    shape = images.shape
    if shape.rank != 4 or shape[-1] != 3 or shape[1] is None or shape[2] is None:
        raise ValueError(
            "images must be a batch [B, H, W, 3] of RGB images with known H and W; received "
            f"shape {shape}. Add a batch axis with images[None] for a single image."
        )
    return int(shape[1]), int(shape[2])


def apply_parameters(
    images: tf.Tensor, params: AugmentParameters, config: AugmentConfig
) -> tf.Tensor:
    """Augments a batch with given parameters (see :func:`sample_parameters`).

    Operations whose probability in ``config`` is 0 are skipped altogether.

    Args:
        images: uint8 or float ``[B, H, W, 3]`` (see :func:`to_unit_range`).
        params: the per-image parameters.
        config: the augmentation settings.

    Returns:
        float32 ``[B, S, S, 3]`` in [0, 1]; S is ``config.output_size`` or the input's H, W.
    """
    height, width = _check_images(tf.convert_to_tensor(images))
    images = to_unit_range(images)
    size = (config.output_size, config.output_size) if config.output_size else (height, width)
    boxes = params.crop_boxes
    if config.flip_prob > 0:
        boxes = flip_boxes(boxes, params.flip)
    views = resized_crop(images, boxes, size)
    if config.color_prob > 0:
        # Images without jitter get neutral factors, which leave them exactly unchanged.
        order = params.jitter_order if config.color_random_order else None
        views = color_jitter(
            views,
            tf.where(params.jitter, params.brightness, 1.0),
            tf.where(params.jitter, params.contrast, 1.0),
            tf.where(params.jitter, params.saturation, 1.0),
            tf.where(params.jitter, params.hue, 0.0),
            order,
            config.hue_method,
        )
    if config.grayscale_prob > 0:
        views = to_grayscale(views, params.grayscale)
    if config.blur_prob > 0:
        kernel_size = config.blur_kernel_size(min(size))
        if kernel_size > 1:
            sigmas = tf.where(params.blur, params.blur_sigma, 0.0)
            views = gaussian_blur(views, sigmas, kernel_size)
    if config.solarize_prob > 0:
        views = solarize(views, config.solarize_threshold, params.solarize)
    return tf.clip_by_value(views, 0.0, 1.0)


def _block(params: AugmentParameters, offset: tf.Tensor, size: tf.Tensor) -> AugmentParameters:
    """The parameters of images ``[offset, offset + size)`` of a batch."""
    index = offset + tf.range(size)
    return AugmentParameters(*(tf.gather(values, index) for values in params))


def _augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    offset: tf.Tensor,
    global_size: tf.Tensor,
    config: AugmentConfig,
) -> tf.Tensor:
    height, width = _check_images(images)
    params = sample_parameters(seed, global_size, height, width, config)
    return apply_parameters(images, _block(params, offset, tf.shape(images)[0]), config)


# The same computation compiled by XLA as one cluster (traced once per config and shape).
_augment_batch_compiled = tf.function(_augment_batch, jit_compile=True, autograph=False)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """One random view of every image in a batch; each image gets its own random parameters.

    The parameters of an image depend on the seed and on its position in the *global* batch:
    inside ``strategy.run`` with R replicas, ``images`` is taken to be this replica's block
    of the global batch (:func:`simclr_tf.distribute.replica_block`), and the parameters are
    drawn for the whole global batch and sliced. So one device and R devices given the same
    global batch make the same views.

    Args:
        images: uint8 or float ``[B, H, W, 3]``; uint8 is divided by 255, float is assumed to
            be in [0, 1].
        seed: int32/int64 tensor of shape [2]; the same seed gives the same views.
        config: the augmentation settings (with ``config.jit_compile`` the work is compiled
            by XLA).

    Returns:
        float32 ``[B, S, S, 3]`` in [0, 1]; S is ``config.output_size`` or the input's H, W.

    Raises:
        ValueError: if images are not ``[B, H, W, 3]`` or the seed is not an integer pair.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    seed = seed_pair(seed)
    offset, global_size = replica_block(tf.shape(images)[0])
    if config.jit_compile:
        return _augment_batch_compiled(images, seed, offset, global_size, config)
    return _augment_batch(images, seed, offset, global_size, config)


def _view_seeds(batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return stream_seed(batch_seed, 1), stream_seed(batch_seed, 2)


def two_views(
    images: tf.Tensor, seed: Any, step: Any, config: AugmentConfig | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """The two augmented views SimCLR compares, for a batch.

    The views are a pure function of (images, seed, step, config): the same seed and step
    give the same views, a different step gives different views. The two views are two
    ``augment_batch`` calls with seeds derived from (seed, step). Under a ``tf.distribute``
    strategy with several replicas, ``images`` is the replica's block of the global batch
    and each image gets the augmentation of its global position (see :func:`augment_batch`),
    so the views of a global batch do not depend on the number of replicas.

    Args:
        images: uint8 or float ``[B, H, W, 3]`` (float assumed in [0, 1]).
        seed: python int, or int scalar tensor (or an int pair of shape [2]).
        step: int scalar (tensor), e.g. the optimizer's iteration counter.
        config: the augmentation settings; ``None`` means ``AugmentConfig()`` (ImageNet
            recipe). Use ``AugmentConfig.preset("cifar")`` for CIFAR-10.

    Returns:
        Two float32 ``[B, S, S, 3]`` tensors in [0, 1].
    """
    config = AugmentConfig() if config is None else config
    images = tf.convert_to_tensor(images)
    _check_images(images)
    batch_seed = stream_seed(seed_pair(seed), STREAM_VIEWS)
    batch_seed = tf.random.experimental.stateless_fold_in(
        batch_seed, tf.cast(step, tf.int64), alg="philox"
    )
    first_seed, second_seed = _view_seeds(batch_seed)
    return augment_batch(images, first_seed, config), augment_batch(images, second_seed, config)
