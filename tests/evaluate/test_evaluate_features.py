"""Tests of simclr_tf.evaluate.features: encoders in memory and exported, the cache, errors."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from colour_data import IMAGE_SIZE, colour_images

from simclr_tf import evaluate


def test_saved_model_and_keras_encoder_give_the_same_features(tiny_encoder, exported_encoder):
    images, _ = colour_images(10)
    from_keras = evaluate.extract_features(tiny_encoder, images, batch_size=4)
    from_export = evaluate.extract_features(exported_encoder, images, batch_size=3)
    assert from_keras.shape == (10, 256) and from_keras.dtype == np.float32
    np.testing.assert_allclose(from_keras, from_export, atol=1e-4)
    assert evaluate.FeatureEncoder(exported_encoder).image_size == (IMAGE_SIZE, IMAGE_SIZE)


def test_feature_cache_is_reused(tiny_encoder, tmp_path):
    images, _ = colour_images(6)
    cache = tmp_path / "cache.npz"
    first = evaluate.extract_features(tiny_encoder, images, cache_path=cache)
    assert cache.is_file()

    class Broken(keras.Model):
        def call(self, inputs):
            raise AssertionError("the cache should have been used")

    np.testing.assert_array_equal(first, evaluate.extract_features(Broken(), images, 4, cache))


def test_images_of_another_size_are_resized(tiny_encoder):
    images = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    assert evaluate.extract_features(tiny_encoder, images).shape == (3, 256)


def test_missing_encoder_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "encoder"
    with pytest.raises(FileNotFoundError, match="encoder=.*nowhere"):
        evaluate.FeatureEncoder(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        evaluate.evaluate_encoder(tmp_path / "empty", protocols=["knn"])


def _copy_export(exported_encoder, tmp_path, name):
    import shutil

    return shutil.copytree(exported_encoder, tmp_path / name)


def test_a_file_given_as_the_encoder_is_named_a_file(tmp_path):
    path = tmp_path / "encoder.keras"
    path.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        evaluate.FeatureEncoder(path)


def test_damaged_exports_are_clear_errors(exported_encoder, tmp_path):
    bad_json = _copy_export(exported_encoder, tmp_path, "bad_json")
    (bad_json / "simclr_tf.json").write_text("{not json")
    with pytest.raises(ValueError, match="simclr_tf.json is not valid JSON"):
        evaluate.FeatureEncoder(bad_json)
    no_size = _copy_export(exported_encoder, tmp_path, "no_size")
    (no_size / "simclr_tf.json").write_text(json.dumps({"image_size": "big"}))
    with pytest.raises(ValueError, match="received image_size='big'"):
        evaluate.read_metadata(no_size)
    corrupt = _copy_export(exported_encoder, tmp_path, "corrupt")
    (corrupt / "saved_model.pb").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match="could not be loaded.*Export the encoder again"):
        evaluate.FeatureEncoder(corrupt)


def test_rows_are_normalised_the_same_in_numpy_and_tensorflow():
    from simclr_tf.losses import l2_normalize

    rows = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    normalised = evaluate.l2_normalize_rows(rows)
    np.testing.assert_allclose(normalised, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(normalised, l2_normalize(tf.constant(rows)).numpy(), atol=1e-6)
    assert normalised.dtype == np.float32


def test_classifier_inputs_are_checked_with_the_array_named():
    features, labels = np.ones((4, 3)), np.arange(4) % 2
    checked = evaluate.check_features(features, labels, features[:2], None)
    assert checked[0].dtype == np.float32 and checked[1].dtype == np.int64 and checked[3] is None
    with pytest.raises(ValueError, match=r"test_features must be a non-empty 2-D array"):
        evaluate.check_features(features, labels, np.ones((0, 3)))
    with pytest.raises(ValueError, match="train_labels has 3 entries but train_features has 4"):
        evaluate.check_features(features, labels[:3], features)
    with pytest.raises(ValueError, match="test_labels has 4 entries but test_features has 2"):
        evaluate.knn_accuracy(features, labels, features[:2], labels)
    with pytest.raises(ValueError, match="have 3 dimensions but test_features have 5"):
        evaluate.linear_probe(features, labels, np.ones((2, 5)), labels[:2])


def test_many_keras_encoders_do_not_warn_of_retracing(caplog):
    """A notebook wraps one encoder per method; TensorFlow must not call that excessive."""
    images, _ = colour_images(10)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for seed in range(7):
            keras.utils.set_random_seed(seed)
            encoder = keras.Sequential(
                [keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()]
            )
            evaluate.extract_features(evaluate.FeatureEncoder(encoder), images, batch_size=4)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
