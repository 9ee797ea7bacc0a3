"""Retrieval metrics of a representation on labelled data: recall@k, precision@k, mAP@k.

Each query image looks up its ``k`` nearest gallery images by cosine similarity
(:func:`simclr_tf.similarity.top_k`); a neighbour is *relevant* when it has the query's label.
The metrics follow TensorFlow Similarity's definitions (``tensorflow_similarity.retrieval_metrics``,
``average="micro"``: a mean over queries):

* **recall@k** (``RecallAtK``): 1 for a query when *any* of its ``k`` neighbours is relevant,
  else 0 -- the metric-learning recall, not the information-retrieval one.
* **precision@k** (``PrecisionAtK``): the fraction of the ``k`` neighbours that are relevant.
* **mAP@k** (``MapAtK``): ``sum_{j <= k} rel_j * P@j / R``, where ``rel_j`` says whether the
  j-th neighbour is relevant, ``P@j`` is the precision of the first ``j`` and ``R`` is the
  number of gallery images with the query's label. As in TensorFlow Similarity the
  denominator is ``R`` even when ``R > k``, so mAP@k is at most ``min(k, R) / R``. A query whose
  label has no gallery image (``R = 0``) scores 0.

With ``exclude_self=True`` the queries are the gallery itself (the same rows, in the same
order) and a query never finds itself: it is left out of its own neighbours and of its ``R``.

Pure NumPy; the similarities are computed in blocks, so a gallery of any size fits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simclr_tf.similarity import DEFAULT_BLOCK_BYTES, top_k

__all__ = ["retrieval_metrics"]


def retrieval_metrics(
    query_features: np.ndarray,
    query_labels: np.ndarray,
    gallery_features: np.ndarray,
    gallery_labels: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    exclude_self: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> dict[str, float]:
    """recall@k, precision@k and mAP@k of queries against a gallery, for each ``k`` in ``ks``.

    Args:
        query_features: ``[Q, D]`` representations of the queries.
        query_labels: ``[Q]`` integer labels.
        gallery_features: ``[N, D]`` representations of the gallery (the "index").
        gallery_labels: ``[N]`` integer labels.
        ks: the neighbour counts to report, each in ``1..N`` (``N - 1`` with ``exclude_self``).
        exclude_self: the queries are the gallery (same rows and order); a query's own row is
            never one of its neighbours.
        block_bytes: memory for one block of similarities.

    Returns:
        ``{"recall@1": ..., "precision@1": ..., "map@1": ..., "recall@5": ..., ...}``, each a
        float in [0, 1].

    Raises:
        ValueError: if features and labels do not match in length, the widths differ, ``ks``
            is empty or holds a value outside the valid range, or ``exclude_self`` is set but
            the queries are not the gallery's shape.
    """
    query_labels = _labels("query_labels", query_labels, query_features)
    gallery_labels = _labels("gallery_labels", gallery_labels, gallery_features)
    if exclude_self and (
        np.shape(query_features) != np.shape(gallery_features)
        or not np.array_equal(query_labels, gallery_labels)
    ):
        raise ValueError(
            "exclude_self=True means the queries are the gallery, but their features or "
            f"labels differ (shapes {np.shape(query_features)} and "
            f"{np.shape(gallery_features)}). Pass exclude_self=False for separate sets."
        )
    candidates = len(gallery_labels) - int(exclude_self)
    ks = [int(k) for k in ks]
    if not ks or any(k < 1 or k > candidates for k in ks):
        raise ValueError(
            f"ks must be neighbour counts in 1..{candidates} (the gallery size"
            f"{' less the query itself' if exclude_self else ''}); received ks={ks!r}."
        )
    exclude = np.arange(len(query_labels)) if exclude_self else None
    _, neighbours = top_k(
        query_features, gallery_features, max(ks), exclude=exclude, block_bytes=block_bytes
    )
    relevant = gallery_labels[neighbours] == query_labels[:, None]  # [Q, max k]
    classes, counts = np.unique(gallery_labels, return_counts=True)
    position = np.searchsorted(classes, query_labels)
    known = (position < len(classes)) & (
        classes[np.minimum(position, len(classes) - 1)] == query_labels
    )
    class_size = np.where(known, counts[np.minimum(position, len(classes) - 1)], 0)
    class_size = class_size - int(exclude_self)

    hits = np.cumsum(relevant, axis=1)  # relevant neighbours among the first j
    ranks = np.arange(1, relevant.shape[1] + 1)
    results: dict[str, float] = {}
    for k in ks:
        precision_sum = np.sum(relevant[:, :k] * hits[:, :k] / ranks[:k], axis=1)
        average_precision = np.divide(
            precision_sum, class_size, out=np.zeros(len(class_size)), where=class_size > 0
        )
        results[f"recall@{k}"] = float(np.mean(hits[:, k - 1] > 0))
        results[f"precision@{k}"] = float(np.mean(hits[:, k - 1] / k))
        results[f"map@{k}"] = float(np.mean(average_precision))
    return results


def _labels(name: str, labels: np.ndarray, features: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if np.ndim(features) != 2 or len(labels) != len(features):
        raise ValueError(
            f"{name} must hold one label per row of features: received {len(labels)} labels "
            f"for features of shape {np.shape(features)}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integers; received dtype {labels.dtype}.")
    return labels.astype(np.int64)
