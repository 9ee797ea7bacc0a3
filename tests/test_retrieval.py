"""recall@k, precision@k and mAP@k against a brute-force loop over TensorFlow Similarity's
definitions."""

from __future__ import annotations

import numpy as np
import pytest

from simclr_tf.retrieval import retrieval_metrics


def _brute_force(queries, query_labels, gallery, gallery_labels, k, exclude_self):
    """One query at a time, straight from the definitions."""
    recall, precision, average_precision = [], [], []
    for i, (query, label) in enumerate(zip(queries, query_labels, strict=True)):
        similarities = []
        for j, item in enumerate(gallery):
            if exclude_self and i == j:
                continue
            cosine = query @ item / (np.linalg.norm(query) * np.linalg.norm(item))
            similarities.append((-cosine, j))
        neighbours = [j for _, j in sorted(similarities)[:k]]
        relevant = [gallery_labels[j] == label for j in neighbours]
        class_size = sum(
            1
            for j, other in enumerate(gallery_labels)
            if other == label and not (exclude_self and j == i)
        )
        recall.append(float(any(relevant)))
        precision.append(sum(relevant) / k)
        total = sum(sum(relevant[: j + 1]) / (j + 1) for j in range(k) if relevant[j])
        average_precision.append(total / class_size if class_size else 0.0)
    return np.mean(recall), np.mean(precision), np.mean(average_precision)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_matches_brute_force(exclude_self):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6))
    gallery_labels = rng.integers(0, 4, 80)
    gallery = centres[gallery_labels] + rng.normal(size=(80, 6))
    if exclude_self:
        queries, query_labels = gallery, gallery_labels
    else:
        query_labels = np.concatenate([rng.integers(0, 4, 29), [7]])  # label 7: not in gallery
        queries = np.concatenate([centres, [[0.0] * 6]])[np.minimum(query_labels, 4)]
        queries = queries + rng.normal(size=queries.shape)
    metrics = retrieval_metrics(
        queries,
        query_labels,
        gallery,
        gallery_labels,
        ks=(1, 5, 20),
        exclude_self=exclude_self,
        block_bytes=512,
    )
    for k in (1, 5, 20):
        expected = _brute_force(queries, query_labels, gallery, gallery_labels, k, exclude_self)
        got = (metrics[f"recall@{k}"], metrics[f"precision@{k}"], metrics[f"map@{k}"])
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert 0 < metrics["map@20"] < metrics["recall@20"] <= 1


def test_perfect_retrieval_and_the_map_denominator():
    # Two tight classes of 3: both other members of a query's class are its 2 neighbours.
    gallery = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1], [0.01, 1], [-0.01, 1]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    metrics = retrieval_metrics(gallery, labels, gallery, labels, ks=(1, 2), exclude_self=True)
    assert {name: value for name, value in metrics.items() if not name.startswith("map")} == {
        f"{name}@{k}": 1.0 for k in (1, 2) for name in ("recall", "precision")
    }
    # mAP@k divides by R = 2 (the class less the query) even for k = 1, as TF Similarity does.
    assert metrics["map@1"] == pytest.approx(1 / 2) and metrics["map@2"] == pytest.approx(1.0)
    # Without excluding itself, R = 3 > k = 1: mAP@1 is 1/3.
    metrics = retrieval_metrics(gallery, labels, gallery, labels, ks=(1,))
    assert metrics["map@1"] == pytest.approx(1 / 3)


def test_bad_arguments_say_what_is_wrong():
    features, labels = np.ones((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="one label per row"):
        retrieval_metrics(features, labels[:3], features, labels)
    with pytest.raises(ValueError, match=r"1\.\.3 \(the gallery size less the query itself\)"):
        retrieval_metrics(features, labels, features, labels, ks=(4,), exclude_self=True)
    with pytest.raises(ValueError, match="queries are the gallery"):
        retrieval_metrics(features[:2], labels[:2], features, labels, exclude_self=True)
    with pytest.raises(ValueError, match="must be integers"):
        retrieval_metrics(features, labels * 0.5, features, labels)
