"""Retrieval on frozen features: how often an image's nearest neighbours share its class.

What a practitioner who searches a photo collection with the encoder cares about, and what
TensorFlow Similarity reports: every test image is a query against the training images as the
gallery (cosine similarity on ``h``), scored by recall@k (a neighbour of the query's class
among the k nearest), precision@k (the share of the k nearest of its class) and mAP@k
(:func:`simclr_tf.retrieval.retrieval_metrics`). Nothing is trained.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from simclr_tf.retrieval import retrieval_metrics

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext

__all__ = ["RETRIEVAL_KS", "retrieval_protocol"]

RETRIEVAL_KS = (1, 5, 10)
"""The neighbour counts the protocol reports."""


def retrieval_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "retrieval" protocol: test images as queries, training images as the gallery.

    Returns:
        ``{"recall@1", "precision@1", "map@1", ..., "ks", "seconds"}``.
    """
    start = time.perf_counter()
    ks = tuple(k for k in RETRIEVAL_KS if k <= len(context.train_features))
    metrics = retrieval_metrics(
        context.test_features,
        context.y_test,
        context.train_features,
        context.y_train,
        ks=ks,
    )
    last = ks[-1]
    context.log(
        f"Retrieval: recall@1 {metrics['recall@1']:.4f}, mAP@{last} {metrics[f'map@{last}']:.4f}"
    )
    return {**metrics, "ks": list(ks), "seconds": time.perf_counter() - start}
