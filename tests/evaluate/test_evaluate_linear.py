"""Tests of simclr_tf.evaluate.linear (the linear probe) and the per-class sampling it uses."""

from __future__ import annotations

import numpy as np
import pytest

from simclr_tf import evaluate
from simclr_tf.evaluate import linear as linear_probe_module


def test_linear_probe_is_perfect_on_one_hot_features_and_chance_on_random_ones():
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    features = np.eye(3, dtype=np.float32)[labels] + 0.01 * rng.standard_normal((300, 3))
    result = evaluate.linear_probe(features[:200], labels[:200], features[200:], labels[200:])
    assert result["top1"] == 1.0
    assert set(result["validation_top1"]) == set(linear_probe_module.DEFAULT_C_VALUES)

    train, test = rng.standard_normal((1500, 16)), rng.standard_normal((1500, 16))
    result = evaluate.linear_probe(train, rng.integers(0, 3, 1500), test, rng.integers(0, 3, 1500))
    assert abs(result["top1"] - 1.0 / 3.0) < 0.06


def test_regularisation_is_chosen_without_ever_seeing_the_test_set(monkeypatch):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    train = labels[:, None] + 1.5 * rng.standard_normal((400, 20))
    test = 1000.0 + rng.standard_normal((100, 20))  # recognisable: no training row is near 1000
    seen = []
    original = linear_probe_module.choose_regularization

    def spy(*arrays, **kwargs):
        seen.extend(np.asarray(a) for a in arrays[:4])
        return original(*arrays, **kwargs)

    monkeypatch.setattr(linear_probe_module, "choose_regularization", spy)
    first = evaluate.linear_probe(train, labels, test, rng.integers(0, 2, 100))
    assert seen, "the regularisation was not chosen by choose_regularization"
    for array in seen:
        if array.ndim == 2:
            assert np.abs(array).max() < 100.0, "test features reached the model selection"
    # Whatever the test set, the chosen C is the same: it only depends on the training set.
    second = evaluate.linear_probe(train, labels, -test, 1 - rng.integers(0, 2, 100))
    assert first["c"] == second["c"]
    assert first["validation_top1"] == second["validation_top1"]


def test_linear_probe_with_one_label_per_class_uses_the_grid_middle():
    rng = np.random.default_rng(0)
    labels = np.arange(10)
    features = np.eye(10, dtype=np.float32)[labels] + 0.01 * rng.normal(size=(10, 10))
    result = evaluate.linear_probe(features, labels, features, labels, c_values=(0.01, 0.1, 1.0))
    assert result["c"] == 0.1
    assert result["validation_top1"] == {}
    assert result["top1"] == 1.0


def test_validation_split_partitions_and_stratifies():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    fit, validation = evaluate.split_train_validation(labels, 0.1, seed=3)
    assert len(np.intersect1d(fit, validation)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, validation])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(labels[validation]), [1, 2, 3, 4])
    again = evaluate.split_train_validation(labels, 0.1, seed=3)
    np.testing.assert_array_equal(validation, again[1])
    with pytest.raises(ValueError, match="validation_fraction"):
        evaluate.split_train_validation(labels, 1.5)


def test_class_balanced_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(5), 200)
    subset = evaluate.class_balanced_subset(labels, 0.01, seed=7)
    np.testing.assert_array_equal(np.bincount(labels[subset]), [2] * 5)
    np.testing.assert_array_equal(subset, evaluate.class_balanced_subset(labels, 0.01, seed=7))
    assert not np.array_equal(subset, evaluate.class_balanced_subset(labels, 0.01, seed=8))
    with pytest.raises(ValueError, match="fraction"):
        evaluate.class_balanced_subset(labels, 0.0)
