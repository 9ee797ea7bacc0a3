"""Weighted k-nearest-neighbour classification on frozen features.

The kNN monitor of instance-discrimination work (Wu et al., 2018), which lightly and
solo-learn also report for SimCLR: nothing is trained. Every training image keeps its
L2-normalised feature vector and its label (the "memory bank"). A test image is compared with
all of them by cosine similarity, its ``k`` most similar training images vote for their
labels, and each vote is weighted by ``exp(similarity / temperature)``, so that very similar
neighbours count more. The predicted class is the one with the largest total weight.

Because it needs no optimisation and has no hyper-parameter chosen on data, kNN accuracy is a
cheap, stable signal of how well the representation groups images of the same class.

Test images are processed in batches, so 10,000 test x 50,000 training similarities never
sit in memory at once: each batch needs a ``[batch_size, N_train]`` block only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from simclr_tf.evaluate.features import check_features
from simclr_tf.losses import l2_normalize

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext

DEFAULT_K = 200
DEFAULT_TEMPERATURE = 0.1


def knn_predict(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    k: int = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE,
    num_classes: int | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Predicts a class for every test feature by a similarity-weighted vote of its neighbours.

    Args:
        train_features: memory bank, float ``[N_train, D]``.
        train_labels: integer labels of the memory bank, ``[N_train]``.
        test_features: queries, float ``[N_test, D]``.
        k: neighbours that vote (> 0); clipped to ``N_train``.
        temperature: vote weights are ``exp(cosine_similarity / temperature)`` (> 0).
        num_classes: number of classes; by default ``max(train_labels) + 1``.
        batch_size: queries per block of similarities (> 0).

    Returns:
        Predicted labels, int64 ``[N_test]``.

    Raises:
        ValueError: for arrays of the wrong shape or non-positive ``k``, ``temperature`` or
            ``batch_size``.
    """
    train_features, train_labels, test_features, _ = check_features(
        train_features, train_labels, test_features
    )
    for name, value in (("k", k), ("temperature", temperature), ("batch_size", batch_size)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0; received {name}={value!r}.")
    num_classes = int(num_classes or train_labels.max() + 1)
    k = min(int(k), train_features.shape[0])

    bank = l2_normalize(tf.constant(train_features))
    bank_labels = tf.constant(train_labels)
    predictions = np.empty(test_features.shape[0], dtype=np.int64)
    for start in range(0, test_features.shape[0], batch_size):
        queries = l2_normalize(tf.constant(test_features[start : start + batch_size]))
        predictions[start : start + batch_size] = _vote(
            queries, bank, bank_labels, k, float(temperature), num_classes
        ).numpy()
    return predictions


def _vote(
    queries: tf.Tensor,
    bank: tf.Tensor,
    bank_labels: tf.Tensor,
    k: int,
    temperature: float,
    num_classes: int,
) -> tf.Tensor:
    """Weighted vote for one block of normalised queries ``[B, D]`` -> labels ``[B]``."""
    similarity = tf.matmul(queries, bank, transpose_b=True)  # [B, N_train]
    top_similarity, top_index = tf.math.top_k(similarity, k=k)  # [B, k]
    weights = tf.exp(top_similarity / temperature)
    votes = tf.one_hot(tf.gather(bank_labels, top_index), num_classes)  # [B, k, C]
    scores = tf.reduce_sum(votes * weights[..., None], axis=1)  # [B, C]
    return tf.argmax(scores, axis=1)


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    k: int = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE,
    num_classes: int | None = None,
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` on labelled test features.

    Args:
        train_features, train_labels, test_features, k, temperature, num_classes, batch_size:
            as for :func:`knn_predict`.
        test_labels: true labels of the test features, ``[N_test]``.

    Returns:
        The fraction of test images whose predicted class is right, in ``[0, 1]``.

    Raises:
        ValueError: as :func:`knn_predict`, or if ``test_labels`` does not match the test rows.
    """
    train_features, train_labels, test_features, test_labels = check_features(
        train_features, train_labels, test_features, test_labels
    )
    if num_classes is None:
        num_classes = int(max(np.max(train_labels), test_labels.max()) + 1)
    predictions = knn_predict(
        train_features, train_labels, test_features, k, temperature, num_classes, batch_size
    )
    return float(np.mean(predictions == test_labels))


def knn_result(
    context: EvaluationContext, train_features: np.ndarray, test_features: np.ndarray
) -> dict[str, Any]:
    """:func:`knn_accuracy` with the labels, ``k`` and temperature of an evaluation.

    Args:
        context: the evaluation (labels, number of classes, options).
        train_features: the memory bank, features of ``context``'s training images.
        test_features: features of its test images.

    Returns:
        ``{"top1", "k", "temperature", "seconds"}``.
    """
    options = context.options
    start = time.perf_counter()
    top1 = knn_accuracy(
        train_features,
        context.y_train,
        test_features,
        context.y_test,
        options.knn_k,
        options.knn_temperature,
        context.num_classes,
    )
    return {
        "top1": top1,
        "k": int(options.knn_k),
        "temperature": float(options.knn_temperature),
        "seconds": time.perf_counter() - start,
    }


def knn_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "knn" protocol: the weighted kNN vote on the frozen encoder's features."""
    result = knn_result(context, context.train_features, context.test_features)
    context.log(f"kNN: {result['top1']:.4f}")
    return result
