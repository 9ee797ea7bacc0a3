"""Checker of notebook 06 (evaluation): the weighted kNN vote."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    record_case,
    run_check,
    to_numpy,
)

MISTAKES["knn_predict"] = {
    "shape": "return one predicted label per test feature: an int array of shape [N_test].",
    "not_normalised": "the neighbours were chosen by plain dot products: normalise the rows of "
    "both feature arrays to length 1 first, so that the similarity is the cosine.",
    "farthest": "the k *least* similar training images voted: sort the similarities in "
    "decreasing order (np.argsort(-similarity, axis=1)[:, :k]).",
    "unweighted": "every neighbour got one vote: weight each vote by "
    "np.exp(similarity / temperature), so that close neighbours count more.",
    "no_temperature": "the vote weights ignore the temperature: use "
    "np.exp(similarity / temperature), not np.exp(similarity).",
    "k_plus_one": "k + 1 neighbours voted: take exactly the first k columns of the sorted indices.",
}


def _knn_variant(train, labels, test, k, temperature, num_classes, mistake=None) -> np.ndarray:
    """The weighted kNN vote, correct (``None``) or with one mistake of ``MISTAKES``."""
    if mistake != "not_normalised":
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    similarity = test.astype(np.float64) @ train.T.astype(np.float64)
    order = np.argsort(similarity if mistake == "farthest" else -similarity, axis=1)
    neighbours = order[:, : k + (mistake == "k_plus_one")]
    nearest = np.take_along_axis(similarity, neighbours, axis=1)
    nearest = nearest - nearest.max(axis=1, keepdims=True)  # the same vote, without overflow
    weights = {
        "unweighted": np.ones_like(nearest),
        "no_temperature": np.exp(nearest),
    }.get(mistake, np.exp(nearest / temperature))
    scores = np.zeros((len(test), num_classes))
    rows = np.repeat(np.arange(len(test)), neighbours.shape[1])
    np.add.at(scores, (rows, labels[neighbours].ravel()), weights.ravel())
    return scores.argmax(axis=1)


def check_knn_predict(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(train_features, train_labels, test_features, k, temperature, num_classes)``.

    The answer must be the predicted labels ``[N_test]`` of the weighted kNN vote of
    ``st.evaluate.knn_predict``; it passes when every prediction agrees. The synthetic features
    have rows of very different lengths, so that dot products and cosines rank differently.
    """
    from simclr_tf import evaluate

    name = "knn_predict"

    def body() -> str:
        rng = np.random.default_rng(6)
        centres = rng.normal(size=(4, 16))
        train_labels = rng.integers(0, 4, 300)
        test_labels = rng.integers(0, 4, 80)
        lengths = rng.uniform(0.3, 3.0, (380, 1))
        features = np.concatenate([centres[train_labels], centres[test_labels]])
        features = (features + 2.0 * rng.normal(size=(380, 16))) * lengths
        train, test = features[:300].astype(np.float32), features[300:].astype(np.float32)
        cases = ((1, 0.1), (15, 0.1), (40, 0.5))
        for k, temperature in cases:
            case = record_case(
                f"case k={k}, T={temperature} (300 training and 80 test features, 4 classes)"
            )
            reference = evaluate.knn_predict(train, train_labels, test, k, temperature, 4)
            answer = np.asarray(to_numpy(fn(train, train_labels, test, k, temperature, 4)))
            if answer.shape != reference.shape:
                fail(
                    name,
                    f"{case}: predictions of shape {answer.shape}, expected {reference.shape}.",
                    "shape",
                )
            wrong = np.flatnonzero(answer.astype(np.int64) != reference)
            if len(wrong):
                variants = {
                    key: _knn_variant(train, train_labels, test, k, temperature, 4, key)
                    for key in MISTAKES[name]
                    if key != "shape"
                }
                mistake = next(
                    (
                        key
                        for key, value in variants.items()
                        if np.array_equal(value, answer) and not np.array_equal(value, reference)
                    ),
                    None,
                )
                first = int(wrong[0])
                fail(
                    name,
                    f"{case}: {len(wrong)} of {len(reference)} predictions differ from the "
                    f"library's (first: test feature {first}, yours {int(answer[first])}, the "
                    f"library's {int(reference[first])}).",
                    mistake,
                    None
                    if mistake
                    else "for test feature 0, print the indices, similarities and labels of "
                    "its k neighbours and add up the weights per class by hand.",
                )
        return (
            f"all {80 * len(cases)} predictions agree with st.evaluate.knn_predict "
            f"({len(cases)} values of k and T)."
        )

    return run_check(name, body)
