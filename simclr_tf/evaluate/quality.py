"""Label-free measures of a representation: alignment, uniformity and collapse.

Wang & Isola (2020) showed that the contrastive loss optimises two properties of the
L2-normalised embeddings, and that each can be measured without labels:

* **Alignment**: the two augmented views of an image should land close together. Measured as
  the mean squared distance between the normalised embeddings of positive pairs,
  ``E ||u - v||^2``, between 0 (identical) and 4 (opposite). Lower is better.
* **Uniformity**: the embeddings of different images should spread over the whole unit
  sphere, keeping as much information as possible. Measured as
  ``log E exp(-t ||u - w||^2)`` over pairs of different images, with ``t = 2``. It is at most
  0 (every embedding the same point), and lower (more negative) means more uniform.

A failure mode of self-supervised learning is **collapse**: the encoder maps every image to
the same point (complete collapse), or to a low-dimensional subspace (dimensional collapse).
Two indicators catch it:

* ``embedding_std``: the standard deviation of each dimension of the normalised embeddings
  over the batch, averaged over dimensions. Spread-out embeddings of width D give about
  ``1 / sqrt(D)``; complete collapse gives 0 (Chen & He, 2021, use this for SimSiam).
* ``effective_rank``: ``exp`` of the entropy of the normalised singular values of the centred
  embedding matrix (Roy & Vetterli, 2007). Between 1 and ``min(B, D)``: how many directions
  the embeddings really use.

All four are plain TensorFlow functions on float tensors, usable inside ``tf.function`` (the
training loop logs them every epoch) and in eager code. They return float32 scalars.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from simclr_tf.augment import AugmentConfig, two_views
from simclr_tf.losses import l2_normalize

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext

# The squared-distance scale t of the uniformity loss (Wang & Isola, 2020, use t = 2).
UNIFORMITY_T = 2.0
# Test images the "quality" protocol measures (a seeded subset when there are more).
QUALITY_IMAGES = 2048


def _normalised(h: tf.Tensor) -> tf.Tensor:
    """Casts to float32 and scales each row to unit L2 norm (zero rows stay zero)."""
    return l2_normalize(tf.cast(h, tf.float32))


def alignment(h1: tf.Tensor, h2: tf.Tensor, alpha: float = 2.0) -> tf.Tensor:
    """Mean distance (to the power ``alpha``) between the normalised embeddings of positive pairs.

    Args:
        h1: embeddings of the first views, float ``[B, D]``.
        h2: embeddings of the second views of the same images, in the same order, ``[B, D]``.
        alpha: exponent of the distance; 2 (the default) gives the mean squared distance.

    Returns:
        A float32 scalar in ``[0, 2**alpha]``; 0 when both views always map to the same point.
    """
    u = _normalised(h1)
    v = _normalised(h2)
    distance = tf.norm(u - v, axis=-1)
    return tf.reduce_mean(tf.pow(distance, alpha))


def uniformity(h: tf.Tensor, t: float = UNIFORMITY_T) -> tf.Tensor:
    """Log of the mean Gaussian potential between the normalised embeddings of distinct images.

    ``log( mean_{i != j} exp(-t * ||u_i - u_j||^2) )``, computed with a log-sum-exp so that it
    stays finite for well-spread embeddings.

    Args:
        h: embeddings, float ``[B, D]`` with ``B >= 2``.
        t: scale of the squared distances (> 0).

    Returns:
        A float32 scalar <= 0; 0 means every embedding is the same point, lower is more uniform.
    """
    u = _normalised(h)
    batch = tf.shape(u)[0]
    # For unit vectors ||u_i - u_j||^2 = 2 - 2 <u_i, u_j>.
    squared_distance = tf.maximum(2.0 - 2.0 * tf.matmul(u, u, transpose_b=True), 0.0)
    logits = -t * squared_distance
    # Leave out the pairs (i, i): their distance is 0 by definition, not a measurement.
    logits = tf.linalg.set_diag(logits, tf.fill([batch], tf.constant(-math.inf, tf.float32)))
    pairs = tf.cast(batch * (batch - 1), tf.float32)
    return tf.reduce_logsumexp(logits) - tf.math.log(pairs)


def embedding_std(h: tf.Tensor) -> tf.Tensor:
    """Per-dimension standard deviation of the normalised embeddings, averaged over dimensions.

    Args:
        h: embeddings, float ``[B, D]``.

    Returns:
        A float32 scalar: about ``1 / sqrt(D)`` for embeddings spread over the sphere, 0 for
        complete collapse.
    """
    u = _normalised(h)
    return tf.reduce_mean(tf.math.reduce_std(u, axis=0))


def effective_rank(h: tf.Tensor, epsilon: float = 1e-12) -> tf.Tensor:
    """Effective rank (Roy & Vetterli, 2007) of the centred embedding matrix.

    With singular values ``s`` of ``h - mean(h)`` and ``p = s / sum(s)``, the effective rank is
    ``exp(-sum p log p)``: ``k`` when the embeddings spread equally over ``k`` directions.

    Args:
        h: embeddings, float ``[B, D]``.
        epsilon: guards the logarithm and the division against exact zeros.

    Returns:
        A float32 scalar between 1 and ``min(B, D)``; 1 for collapsed embeddings.
    """
    x = tf.cast(h, tf.float32)
    x = x - tf.reduce_mean(x, axis=0, keepdims=True)
    singular_values = tf.linalg.svd(x, compute_uv=False)
    p = singular_values / (tf.reduce_sum(singular_values) + epsilon)
    entropy = -tf.reduce_sum(p * tf.math.log(p + epsilon))
    return tf.exp(entropy)


def two_view_quality(
    embed: Callable[[tf.Tensor], Any],
    images: np.ndarray,
    augment_config: AugmentConfig,
    seed: int,
    batch_size: int = 256,
) -> dict[str, float]:
    """Alignment, uniformity and per-dimension std of an encoder on fixed images.

    The one definition of these numbers: the training loop logs them in ``metrics.csv`` and
    the evaluation reports them in ``results.md``, both through this function, so they are the
    same quantity whenever encoder, images, augmentation and seed are the same.

    * alignment: between the representations of two augmented views of every image, made by
      :func:`simclr_tf.augment.two_views` with ``augment_config`` (the run's own augmentation),
      the batch starting at image ``i`` with step ``i``, at the images' own size (whatever
      view size the run trained on) and rounded to 8-bit pixels, as an export receives them;
    * uniformity and embedding_std: on the representations of the images themselves.

    Args:
        embed: maps float32 images ``[B, H, W, 3]`` in [0, 1] to representations ``[B, D]``.
        images: uint8 images ``[N, H, W, 3]``, ``N >= 2``.
        augment_config: the augmentation of the two views.
        seed: seed of the views.
        batch_size: images per call of ``embed``.

    Returns:
        ``{"alignment", "uniformity", "embedding_std"}`` as floats.
    """
    # Views at the images' own size (an export takes only that size), and no XLA: a few
    # batches only, compiling would cost more than it saves.
    augment_config = dataclasses.replace(augment_config, output_size=None, jit_compile=False)
    plain, first, second = [], [], []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size])
        # Views rounded to 8-bit pixels, as an exported encoder (uint8 input) receives them,
        # so that a Keras model and its export measure the same number.
        view1, view2 = (
            tf.round(view * 255.0) / 255.0 for view in two_views(batch, seed, start, augment_config)
        )
        plain.append(np.asarray(embed(tf.cast(batch, tf.float32) / 255.0), np.float32))
        first.append(np.asarray(embed(view1), np.float32))
        second.append(np.asarray(embed(view2), np.float32))
    h = np.concatenate(plain)
    return {
        "alignment": float(alignment(np.concatenate(first), np.concatenate(second))),
        "uniformity": float(uniformity(h)),
        "embedding_std": float(embedding_std(h)),
    }


def _augment_config_of(context: EvaluationContext) -> tuple[AugmentConfig, str]:
    """The augmentation of the run that made the encoder, and its preset name.

    An export records its run's config (crop area, view size, colour strength), as its
    ``metrics.csv`` measured them; otherwise the preset that suits the image size.
    """
    from simclr_tf.config import SimCLRConfig

    run_config = context.encoder.metadata.get("config") or {}
    if run_config:
        config = SimCLRConfig.from_dict(run_config, ignore_unknown=True)
        return config.augment_config(), config.augment
    size = context.encoder.image_size or context.x_test.shape[1:3]
    preset = "cifar" if max(size) <= 32 else "imagenet"
    return AugmentConfig.preset(preset), preset


def quality_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "quality" protocol: alignment on two views, the other measures on test features.

    Args:
        context: the evaluation; at most :data:`QUALITY_IMAGES` of its test images are used.

    Returns:
        The measures of :func:`two_view_quality`, plus ``effective_rank``, ``reference_std``
        (``1 / sqrt(D)``), ``max_rank``, ``num_images``, ``augment`` (the preset) and
        ``seconds``.
    """
    start = time.perf_counter()
    seed = context.options.seed
    images = context.x_test
    chosen = np.random.default_rng(seed).permutation(len(images))[:QUALITY_IMAGES]
    chosen = np.sort(chosen)
    augment_config, preset = _augment_config_of(context)
    h = context.test_features[chosen]
    result = {
        **two_view_quality(context.encoder, images[chosen], augment_config, seed),
        "effective_rank": float(effective_rank(h)),
        "reference_std": float(1.0 / np.sqrt(h.shape[1])),
        "max_rank": int(min(h.shape)),
        "num_images": int(len(chosen)),
        "augment": preset,
        "seconds": time.perf_counter() - start,
    }
    context.log(f"quality: {result}")
    return result
