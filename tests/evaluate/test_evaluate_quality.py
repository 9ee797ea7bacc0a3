"""Tests of simclr_tf.evaluate.quality: alignment, uniformity and the collapse indicators."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import evaluate


def test_alignment_is_zero_for_identical_views_and_four_for_opposite_ones():
    h = tf.random.stateless_normal([16, 8], seed=[1, 2])
    assert float(evaluate.alignment(h, 3.0 * h)) == pytest.approx(0.0, abs=1e-6)
    assert float(evaluate.alignment(h, -h)) == pytest.approx(4.0, abs=1e-5)


def test_uniformity_of_collapsed_and_orthonormal_embeddings():
    collapsed = tf.ones([10, 4])
    assert float(evaluate.uniformity(collapsed)) == pytest.approx(0.0, abs=1e-6)
    # Orthonormal rows: every pair is at squared distance 2, so log E exp(-2 * 2) = -4.
    assert float(evaluate.uniformity(tf.eye(6))) == pytest.approx(-4.0, abs=1e-5)


def test_collapse_indicators():
    collapsed = tf.ones([32, 16]) * [[1.0] + [0.5] * 15]
    spread = tf.random.stateless_normal([4096, 16], seed=[3, 4])
    assert float(evaluate.embedding_std(collapsed)) == pytest.approx(0.0, abs=1e-6)
    assert float(evaluate.embedding_std(spread)) == pytest.approx(1.0 / 4.0, rel=0.05)
    assert float(evaluate.effective_rank(collapsed)) == pytest.approx(1.0, abs=1e-3)
    assert float(evaluate.effective_rank(tf.eye(8) - 1.0 / 8)) == pytest.approx(7.0, rel=1e-3)
    assert float(evaluate.effective_rank(spread)) > 15.0


def test_quality_measures_run_inside_tf_function_on_bfloat16():
    @tf.function
    def measures(h1, h2):
        return (
            evaluate.alignment(h1, h2),
            evaluate.uniformity(h1),
            evaluate.embedding_std(h1),
            evaluate.effective_rank(h1),
        )

    h = tf.cast(tf.random.stateless_normal([12, 6], seed=[5, 6]), tf.bfloat16)
    values = measures(h, h)
    assert all(value.dtype == tf.float32 and value.shape == () for value in values)
    assert all(np.isfinite(value.numpy()) for value in values)
