"""Tests for the retrieval protocol of simclr_tf.evaluate."""

from __future__ import annotations

import pytest

from simclr_tf import evaluate
from simclr_tf.retrieval import retrieval_metrics


def test_retrieval_protocol_scores_test_queries_against_the_training_gallery(
    tiny_encoder, tiny_data
):
    results = evaluate.evaluate_encoder(tiny_encoder, protocols=["retrieval"], data=tiny_data)
    got = results["protocols"]["retrieval"]
    assert got["ks"] == [1, 5, 10]
    features = evaluate.FeatureEncoder(tiny_encoder)
    (x_train, y_train), (x_test, y_test) = tiny_data
    want = retrieval_metrics(features(x_test), y_test, features(x_train), y_train, ks=(1, 5, 10))
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    table = evaluate.format_results_table(results)
    assert "Retrieval" in table and "mAP@10" in table


def test_retrieval_needs_labels(tiny_encoder, tiny_data):
    (x_train, _), (x_test, _) = tiny_data
    with pytest.raises(ValueError, match="retrieval"):
        evaluate.evaluate_encoder(
            tiny_encoder, protocols=["retrieval"], data=((x_train, None), (x_test, None))
        )
