"""Tests of simclr_tf.evaluate.knn: the weighted kNN vote."""

from __future__ import annotations

import numpy as np

from simclr_tf import evaluate


def test_knn_is_perfect_on_one_hot_features_and_chance_on_random_ones():
    labels = np.arange(200) % 4
    one_hot = np.eye(4, dtype=np.float32)[labels]
    assert evaluate.knn_accuracy(one_hot, labels, one_hot, labels, k=20) == 1.0

    rng = np.random.default_rng(0)
    train, test = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32))
    train_labels, test_labels = rng.integers(0, 4, 2000), rng.integers(0, 4, 2000)
    accuracy = evaluate.knn_accuracy(train, train_labels, test, test_labels, k=50)
    assert abs(accuracy - 0.25) < 0.05


def test_knn_predictions_do_not_depend_on_the_batch_size_and_k_is_clipped():
    rng = np.random.default_rng(1)
    train, test = rng.standard_normal((50, 5)), rng.standard_normal((23, 5))
    labels = rng.integers(0, 3, 50)
    whole = evaluate.knn_predict(train, labels, test, k=500, batch_size=512)
    pieces = evaluate.knn_predict(train, labels, test, k=500, batch_size=4)
    np.testing.assert_array_equal(whole, pieces)


def test_knn_vote_is_weighted_by_similarity():
    # Two neighbours of class 1 that are far, one of class 0 that is very close: with a low
    # temperature the close one wins, with a high temperature the majority does.
    train = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    query = np.array([[1.0, 0.2]], dtype=np.float32)
    assert evaluate.knn_predict(train, labels, query, k=3, temperature=0.05)[0] == 0
    assert evaluate.knn_predict(train, labels, query, k=3, temperature=100.0)[0] == 1
