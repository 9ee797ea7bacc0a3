"""The Keras layer of the batched augmentation (simclr_tf.augment.layer)."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from augment_helpers import random_images

from simclr_tf import augment
from simclr_tf.augment import AugmentConfig


def test_layer_gives_new_views_on_each_call_and_is_reproducible():
    images = random_images()
    config = AugmentConfig.preset("cifar", jit_compile=False)
    layer = augment.SimCLRAugmentation(config, seed=11)
    first, second = layer(images), layer(images)
    assert float(tf.reduce_max(tf.abs(first - second))) > 0.1
    again = augment.SimCLRAugmentation(config, seed=11)
    np.testing.assert_array_equal(again(images).numpy(), first.numpy())
    np.testing.assert_array_equal(again(images).numpy(), second.numpy())
    other_seed = augment.SimCLRAugmentation(config, seed=12)
    assert float(tf.reduce_max(tf.abs(other_seed(images) - first))) > 0.1


def test_layer_in_a_model_augments_only_in_training():
    images = random_images()
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    config = AugmentConfig.preset("cifar", jit_compile=False)
    layer = augment.SimCLRAugmentation(config, seed=1)
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_allclose(model(images, training=False).numpy(), images / 255.0, atol=1e-7)
    a = model(images, training=True)
    b = model(images, training=True)
    assert float(tf.reduce_max(tf.abs(a - b))) > 0.1

    compiled = tf.function(lambda x: model(x, training=True))
    c, d = compiled(images), compiled(images)  # no seed baked into the traced graph
    assert float(tf.reduce_max(tf.abs(c - d))) > 0.1
    assert int(layer.step.numpy()) == 4


def test_layer_config_round_trip():
    config = AugmentConfig.preset("imagenet", crop_area=(0.2, 1.0), hue_method="hsv")
    layer = augment.SimCLRAugmentation(config, seed=4)
    restored = augment.SimCLRAugmentation.from_config(layer.get_config())
    assert restored.config == config and restored.seed == 4
    assert math.isclose(restored.config.crop_aspect[1], 4 / 3)
