"""Blur and solarisation of the batched augmentation (simclr_tf.augment.filters)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from augment_helpers import random_images

from simclr_tf import augment


def test_blur_keeps_constant_images_and_smooths_noise():
    images = tf.constant(random_images(dtype=np.float32))
    sigmas = tf.constant([0.0, 0.5, 1.0, 2.0] * 2)
    blurred = augment.gaussian_blur(images, sigmas, 5).numpy()
    np.testing.assert_array_equal(blurred[0], images.numpy()[0])
    stds = blurred.std(axis=(1, 2, 3))
    assert np.all(np.diff(stds[:4]) < 0)  # more sigma, smoother
    constant = tf.fill([8, 16, 16, 3], 0.3)
    np.testing.assert_allclose(augment.gaussian_blur(constant, sigmas, 5).numpy(), 0.3, atol=1e-6)


def test_solarize_inverts_bright_pixels_only():
    images = tf.constant([[[[0.2, 0.5, 0.9]]]])
    out = augment.solarize(images, 0.5).numpy().ravel()
    np.testing.assert_allclose(out, [0.2, 0.5, 0.1], atol=1e-7)
