"""Crops and flips of the batched augmentation (simclr_tf.augment.geometry)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from augment_helpers import SEED, random_images

from simclr_tf import augment


def test_flip_twice_is_the_identity():
    images = tf.constant(random_images(dtype=np.float32))
    flip = tf.constant([True, False] * 4)
    twice = augment.horizontal_flip(augment.horizontal_flip(images, flip), flip)
    np.testing.assert_array_equal(twice.numpy(), images.numpy())


def test_flipped_box_gives_the_mirrored_crop():
    images = tf.constant(random_images(dtype=np.float32))
    boxes = augment.sample_crop_boxes(SEED, 8, 16, 16)
    crops = augment.resized_crop(images, boxes, (16, 16))
    flipped = augment.resized_crop(
        images, augment.flip_boxes(boxes, tf.ones([8], tf.bool)), (16, 16)
    )
    np.testing.assert_allclose(flipped.numpy(), crops.numpy()[:, :, ::-1], atol=1e-5)


def test_crop_matches_tf_crop_and_resize():
    images = tf.constant(random_images(height=20, width=14, dtype=np.float32))
    boxes = augment.sample_crop_boxes(SEED, 8, 20, 14)
    ours = augment.resized_crop(images, boxes, (11, 9))
    reference = tf.image.crop_and_resize(images, boxes, tf.range(8), (11, 9))
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5)


@pytest.mark.parametrize("height, width", [(32, 32), (24, 40)])
def test_crops_stay_inside_the_image_and_respect_the_bounds(height, width):
    area, aspect = (0.08, 1.0), (3 / 4, 4 / 3)
    boxes = augment.sample_crop_boxes(SEED, 4000, height, width, area, aspect).numpy()
    y_min, x_min, y_max, x_max = boxes.T
    assert np.all(y_min >= 0) and np.all(x_min >= 0)
    assert np.all(y_max <= 1 + 1e-6) and np.all(x_max <= 1 + 1e-6)
    box_area = (y_max - y_min) * (x_max - x_min)
    box_aspect = (x_max - x_min) * width / ((y_max - y_min) * height)
    assert np.all(box_area >= area[0] - 1e-5) and np.all(box_area <= area[1] + 1e-5)
    assert np.all(box_aspect >= aspect[0] - 1e-4) and np.all(box_aspect <= aspect[1] + 1e-4)
    # Area uniform and aspect ratio log-uniform, redrawn until the box fits, as documented.
    rng = np.random.default_rng(0)
    areas = rng.uniform(*area, 200_000)
    aspects = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]), 200_000))
    fits = (areas * aspects * height / width <= 1) & (areas / aspects * width / height <= 1)
    assert np.mean(box_area) == pytest.approx(np.mean(areas[fits]), abs=0.015)
    assert np.mean(np.log(box_aspect)) == pytest.approx(np.mean(np.log(aspects[fits])), abs=0.02)
