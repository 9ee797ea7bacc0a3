"""Colour operations of the batched augmentation (simclr_tf.augment.color)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from augment_helpers import random_images

from simclr_tf import augment


def test_unselected_images_are_left_exactly_unchanged_by_jitter():
    images = tf.constant(random_images(batch=4, dtype=np.float32))
    ones, zeros = tf.ones([4]), tf.zeros([4])
    order = tf.constant([[3, 2, 1, 0]] * 4)
    for method in augment.HUE_METHODS:
        out = augment.color_jitter(images, ones, ones, ones, zeros, order, method)
        np.testing.assert_array_equal(out.numpy(), images.numpy())


def test_grayscale_gives_equal_channels():
    images = tf.constant(random_images(dtype=np.float32))
    gray = augment.to_grayscale(images, tf.constant([True] * 4 + [False] * 4)).numpy()
    np.testing.assert_allclose(gray[:4, ..., 0], gray[:4, ..., 1], atol=1e-7)
    np.testing.assert_allclose(gray[:4, ..., 0], gray[:4, ..., 2], atol=1e-7)
    np.testing.assert_array_equal(gray[4:], images.numpy()[4:])


def test_yiq_hue_shift_keeps_luminance():
    # Muted colours, so that no channel leaves [0, 1] and nothing is clipped.
    images = tf.constant(0.35 + 0.3 * random_images(dtype=np.float32))
    shifts = tf.linspace(-0.2, 0.2, 8)
    shifted = augment.adjust_hue(images, shifts, "yiq")
    assert float(tf.reduce_max(tf.abs(shifted - images))) > 0.02  # the colours did change
    np.testing.assert_allclose(
        augment.grayscale(shifted).numpy(), augment.grayscale(images).numpy(), atol=1e-5
    )


def test_hsv_hue_shift_keeps_value_and_min_channel():
    images = tf.constant(random_images(dtype=np.float32))
    shifted = augment.adjust_hue(images, tf.linspace(-0.5, 0.5, 8), "hsv")
    for reduce in (tf.reduce_max, tf.reduce_min):
        np.testing.assert_allclose(
            reduce(shifted, axis=-1).numpy(), reduce(images, axis=-1).numpy(), atol=1e-5
        )


def test_hue_shift_by_a_full_turn_is_the_identity():
    images = tf.constant(random_images(dtype=np.float32))
    for method in augment.HUE_METHODS:
        half = augment.adjust_hue(images, tf.fill([8], 0.5), method)
        if method == "hsv":
            full = augment.adjust_hue(half, tf.fill([8], 0.5), method)
            np.testing.assert_allclose(full.numpy(), images.numpy(), atol=1e-5)
        assert float(tf.reduce_max(tf.abs(half - images))) > 0.1


def test_yiq_and_hsv_hue_turn_the_same_way():
    images = tf.constant(random_images(batch=16, dtype=np.float32))
    shifts = tf.fill([16], 0.05)
    hsv = augment.adjust_hue(images, shifts, "hsv")
    same_way = float(tf.reduce_mean(tf.abs(augment.adjust_hue(images, shifts, "yiq") - hsv)))
    other_way = float(tf.reduce_mean(tf.abs(augment.adjust_hue(images, -shifts, "yiq") - hsv)))
    assert same_way < 0.6 * other_way


def test_brightness_contrast_saturation_behave():
    images = tf.constant(random_images(dtype=np.float32))
    factors = tf.fill([8], 0.0)
    assert float(tf.reduce_max(augment.adjust_brightness(images, factors))) == 0.0
    flat = augment.adjust_contrast(images, factors).numpy()
    np.testing.assert_allclose(flat.std(axis=(1, 2, 3)), 0.0, atol=1e-6)
    gray = augment.adjust_saturation(images, factors).numpy()
    np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-6)


@pytest.mark.parametrize("method", augment.HUE_METHODS)
def test_jitter_order_matters(method):
    images = tf.constant(random_images(batch=2, dtype=np.float32))
    factors = tf.fill([2], 1.6)
    hue = tf.fill([2], 0.1)
    first = augment.color_jitter(
        images, factors, factors, factors, hue, tf.constant([[0, 1, 2, 3]] * 2), method
    )
    second = augment.color_jitter(
        images, factors, factors, factors, hue, tf.constant([[3, 2, 1, 0]] * 2), method
    )
    assert float(tf.reduce_max(tf.abs(first - second))) > 0.01
