"""Tests of simclr_tf.evaluate.rebuild: copies of an encoder's architecture, seeded weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from colour_data import IMAGE_SIZE, numpy_global_state

from simclr_tf import evaluate
from simclr_tf.export import export_encoder
from simclr_tf.models import build_encoder


def test_encoder_rebuilt_from_an_export_has_its_weights(tiny_encoder, exported_encoder):
    from simclr_tf.evaluate.rebuild import keras_copy

    loaded = evaluate.FeatureEncoder(exported_encoder)
    copy = keras_copy(loaded, pretrained=True)
    for a, b in zip(copy.get_weights(), tiny_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = keras_copy(loaded, pretrained=False, seed=0)
    assert not np.array_equal(fresh.get_weights()[0], tiny_encoder.get_weights()[0])
    same_seed = keras_copy(loaded, pretrained=False, seed=0)
    np.testing.assert_array_equal(fresh.get_weights()[0], same_seed.get_weights()[0])


def test_encoder_with_a_wider_representation_is_rebuilt_from_its_export(tmp_path):
    from simclr_tf.evaluate.rebuild import keras_copy

    keras.utils.set_random_seed(7)
    wide = build_encoder("small_cnn", IMAGE_SIZE, representation_dim=64)
    config = {"encoder": "small_cnn", "width": 1, "stem": "auto", "representation_dim": 64}
    path = export_encoder(wide, tmp_path / "encoder", IMAGE_SIZE, metadata={"config": config})
    copy = keras_copy(evaluate.FeatureEncoder(path), pretrained=True)
    assert copy.output_shape == (None, 64)
    for a, b in zip(copy.get_weights(), wide.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_random_copies_come_from_the_seed_alone_and_leave_global_generators_alone(tiny_encoder):
    loaded = evaluate.FeatureEncoder(tiny_encoder)
    keras.utils.set_random_seed(1)
    first = evaluate.keras_copy(loaded, pretrained=False, seed=5)
    keras.utils.set_random_seed(2)
    numpy_state = numpy_global_state()
    second = evaluate.keras_copy(loaded, pretrained=False, seed=5)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Nothing was reseeded: NumPy's global generator is where it was.
    np.testing.assert_array_equal(numpy_global_state(), numpy_state)
    other = evaluate.keras_copy(loaded, pretrained=False, seed=6)
    assert not np.array_equal(other.get_weights()[0], first.get_weights()[0])


def test_export_architecture_comes_from_the_config_defaults(tmp_path):
    keras.utils.set_random_seed(3)
    encoder = build_encoder("small_cnn", IMAGE_SIZE)
    # An old export that records only the architecture's name: every other field is the
    # default of SimCLRConfig.
    path = export_encoder(
        encoder, tmp_path / "encoder", IMAGE_SIZE, metadata={"config": {"encoder": "small_cnn"}}
    )
    loaded = evaluate.FeatureEncoder(path)
    config = evaluate.encoder_config(loaded)
    assert (config.encoder, config.width, config.stem, config.representation_dim) == (
        "small_cnn",
        1,
        "auto",
        0,
    )
    copy = evaluate.keras_copy(loaded, pretrained=True)
    for a, b in zip(copy.get_weights(), encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    bare = export_encoder(encoder, tmp_path / "bare" / "encoder", IMAGE_SIZE)
    with pytest.raises(ValueError, match="does not record its architecture"):
        evaluate.keras_copy(evaluate.FeatureEncoder(bare), pretrained=False)
