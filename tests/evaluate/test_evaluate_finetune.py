"""Tests of simclr_tf.evaluate.finetune: few-label fine-tuning and its supervised baseline."""

from __future__ import annotations

import keras
import numpy as np
from colour_data import IMAGE_SIZE, colour_images, numpy_global_state

from simclr_tf import evaluate
from simclr_tf.models import build_encoder, initialize_weights


def test_finetune_protocol_trains_a_copy_and_leaves_the_encoder_alone(tiny_encoder, tiny_data):
    before = [np.array(w) for w in tiny_encoder.get_weights()]
    results = evaluate.evaluate_encoder(
        tiny_encoder,
        dataset="tiny",
        protocols=["finetune"],
        data=tiny_data,
        label_fractions=[0.5],
        finetune_options=evaluate.FinetuneOptions(epochs=1, batch_size=10),
    )
    entry = results["protocols"]["finetune"]["fractions"]["0.5"]
    assert entry["num_labels"] == 30
    for key in ("finetune", "supervised", "linear"):
        assert 0.0 <= entry[key]["top1"] <= 1.0
    assert entry["finetune"]["steps"] == 3  # 30 labels, batches of 10, one epoch
    for old, new in zip(before, tiny_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert "Fine-tuned encoder" in evaluate.format_results_table(results)


def test_train_classifier_learns_an_easy_task():
    keras.utils.set_random_seed(0)
    model = build_encoder("small_cnn", IMAGE_SIZE)
    (x_train, y_train), (x_test, y_test) = colour_images(90, seed=3), colour_images(30, seed=4)
    options = evaluate.FinetuneOptions(epochs=8, batch_size=15, learning_rate=0.05)
    result = evaluate.train_classifier(model, x_train, y_train, x_test, y_test, options)
    assert result["top1"] > 0.9


def test_fine_tuning_is_reproducible_without_global_seeds():
    (x_train, y_train), (x_test, y_test) = colour_images(30, seed=3), colour_images(12, seed=4)
    options = evaluate.FinetuneOptions(epochs=1, batch_size=10)
    runs = []
    for global_seed in (1, 2):
        keras.utils.set_random_seed(global_seed)
        numpy_state = numpy_global_state()
        model = initialize_weights(build_encoder("small_cnn", IMAGE_SIZE), seed=0)
        result = evaluate.train_classifier(model, x_train, y_train, x_test, y_test, options, 3, 7)
        np.testing.assert_array_equal(numpy_global_state(), numpy_state)
        runs.append((result["train_loss"], [np.array(w) for w in model.get_weights()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)
