"""Label-efficiency curves: the draws, the statistics and the curves' structure."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from simclr_tf.evaluate import label_efficiency as le
from simclr_tf.evaluate.finetune import FinetuneOptions
from simclr_tf.viz import plot_label_efficiency


def _separable(count_per_class: int, classes: int = 3, dim: int = 8, seed: int = 0):
    centres = np.random.default_rng(0).normal(scale=4.0, size=(classes, dim))
    rng = np.random.default_rng(seed + 1)
    labels = np.repeat(np.arange(classes), count_per_class)
    features = centres[labels] + rng.normal(size=(len(labels), dim))
    return features.astype(np.float32), labels


def test_label_draws_take_n_per_class_and_differ_between_draws():
    labels = np.repeat(np.arange(4), 30)
    draws = le.label_draws(labels, 5, draws=3, seed=7)
    assert len(draws) == 3
    for subset in draws:
        np.testing.assert_array_equal(np.bincount(labels[subset]), [5, 5, 5, 5])
    assert not np.array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(le.label_draws(labels, 5, 3, 7)[2], draws[2])


def test_all_labels_is_one_draw_of_everything():
    (subset,) = le.label_draws(np.arange(10) % 2, le.ALL_LABELS, draws=4)
    np.testing.assert_array_equal(subset, np.arange(10))


def test_label_draws_refuse_impossible_requests():
    with pytest.raises(ValueError, match="draws must be >= 1"):
        le.label_draws(np.zeros(4, int), 1, draws=0)
    with pytest.raises(ValueError, match="has only 2 examples"):
        le.label_draws(np.array([0, 0, 1, 1]), 3, draws=1)


def test_summarize_gives_the_standard_error_of_the_mean():
    summary = le.summarize([0.5, 0.7, 0.6])
    assert summary["mean"] == pytest.approx(0.6)
    assert summary["stderr"] == pytest.approx(np.std([0.5, 0.7, 0.6], ddof=1) / math.sqrt(3))
    assert le.summarize([0.4])["stderr"] == 0.0


def test_probe_curve_rises_with_labels_on_separable_features():
    train, train_labels = _separable(60)
    test, test_labels = _separable(40, seed=1)
    curve = le.probe_curve(
        train, train_labels, test, test_labels, labels_per_class=(1, 20, 0), draws=3
    )
    points = curve["points"]
    assert list(points) == ["1", "20", "0"]
    assert len(points["1"]["top1"]) == 3 and len(points["0"]["top1"]) == 1
    assert points["0"]["mean"] > 0.9
    assert all(0.0 <= p["mean"] <= 1.0 and p["stderr"] >= 0.0 for p in points.values())


def test_training_steps_options_train_small_draws_long_enough():
    base = FinetuneOptions(epochs=30, batch_size=64)
    assert le.training_steps_options(10, base, 200).epochs == 200  # one step per epoch
    assert le.training_steps_options(6400, base, 200).epochs == 30  # 100 steps per epoch


def test_training_curve_trains_a_fresh_encoder_per_draw():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(40) % 2
    made = []

    def make_encoder(seed):
        made.append(seed)
        return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])

    options = FinetuneOptions(epochs=1, batch_size=4)
    curve = le.training_curve(
        make_encoder, images, labels, images[:10], labels[:10], (1, 2), 2, 5, options, 3
    )
    assert made == [5, 6, 5, 6]
    assert set(curve["points"]) == {"1", "2"} and curve["min_steps"] == 3


def test_plot_label_efficiency_draws_every_method(tmp_path):
    curve = {
        "points": {
            "1": {"labels_per_class": 1, "mean": 0.3, "stderr": 0.02},
            "10": {"labels_per_class": 10, "mean": 0.5, "stderr": 0.01},
            "0": {"labels_per_class": 0, "mean": 0.8, "stderr": 0.0},
        }
    }
    figure = plot_label_efficiency({"SimCLR": curve, "scratch": curve}, tmp_path / "curve.png")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["SimCLR", "SimCLR, all labels", "scratch", "scratch, all labels"]
    assert (tmp_path / "curve.png").stat().st_size > 1000
