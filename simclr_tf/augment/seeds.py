"""Stateless randomness: seed pairs, one named stream per random choice, XLA-stable numbers.

Every random number of the augmentation is a function of a seed pair (an int64 tensor of shape
``[2]``), made with ``tf.random.stateless_*`` ops, so the same seed gives the same views on every
run, eagerly or inside ``tf.function``, with or without ``jit_compile=True``.

Each random choice draws from its own *stream*: the batch seed with a fixed number folded in
(the ``STREAM_*`` constants below), so that adding an operation never changes the numbers
another operation draws.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

STREAM_CROP = 1
STREAM_FLIP = 3
STREAM_JITTER_APPLY = 4
STREAM_JITTER_FACTORS = 5
STREAM_JITTER_ORDER = 6
STREAM_GRAYSCALE = 7
STREAM_BLUR_APPLY = 8
STREAM_BLUR_SIGMA = 9
STREAM_SOLARIZE = 10
STREAM_VIEWS = 0x5EED  # two_views folds this in before the step


def seed_pair(seed: Any) -> tf.Tensor:
    """A seed as an int64 pair.

    Args:
        seed: a python int, an integer scalar tensor, or an integer tensor of shape ``[2]``.

    Returns:
        int64 ``[2]``; a scalar ``s`` becomes ``[s, 0]``.

    Raises:
        ValueError: for a non-integer dtype or another shape.
    """
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be an integer or integer tensor; received dtype {seed.dtype}.")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    if seed.shape.rank == 1 and seed.shape[0] == 2:
        return seed
    raise ValueError(f"seed must be a scalar or have shape [2]; received shape {seed.shape}.")


def stream_seed(seed: tf.Tensor, stream: Any) -> tf.Tensor:
    """The seed pair of stream number ``stream`` (int or int tensor) of the seed pair ``seed``."""
    return tf.random.experimental.stateless_fold_in(seed, stream, alg="philox")


def uniform(shape: Any, seed: tf.Tensor, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    """Uniform float32 numbers in [low, high) that are the same with and without XLA.

    ``tf.random.stateless_uniform`` for floats gives different numbers under XLA than with the
    plain kernels, while the integer bits agree; so we draw 32 random bits and keep the top 24
    as the mantissa of a number in [0, 1).

    Args:
        shape: the output shape (list or int32 tensor).
        seed: int64 ``[2]`` seed pair.
        low: smallest value.
        high: bound above the largest value.

    Returns:
        float32 tensor of ``shape``.
    """
    bits = tf.random.stateless_uniform(
        shape, seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    unit = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))
    return low + (high - low) * unit


def bernoulli(shape: Any, seed: tf.Tensor, prob: float) -> tf.Tensor:
    """bool tensor of ``shape``, each entry true with probability ``prob`` (see :func:`uniform`)."""
    return uniform(shape, seed) < prob
