"""The NumPy/OpenCV reference (simclr_tf.transforms) against the batched augmentation.

Where both compute the same deterministic operation from the same parameters, the results
must agree to ATOL (values in [0, 1]; the differences seen are about 2e-6, from float32
rounding in different orders).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import augment, transforms
from simclr_tf.augment import AugmentConfig

ATOL = 1e-5


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    return rng.random((6, 20, 24, 3), dtype=np.float32)


def batched(function, images, *per_image_args, **kwargs):
    tensors = [tf.constant(np.asarray(values)) for values in per_image_args]
    return function(tf.constant(images), *tensors, **kwargs).numpy()


def one_by_one(function, images, *per_image_args, **kwargs):
    return np.stack(
        [
            function(image, *args, **kwargs)
            for image, *args in zip(images, *per_image_args, strict=True)
        ]
    )


def test_resized_crop_agrees(images):
    rng = np.random.default_rng(2)
    boxes = np.array([transforms.sample_crop_box(rng, 20, 24) for _ in images], np.float32)
    boxes[0] = (0.0, 0.0, 1.0, 1.0)
    ours = batched(augment.resized_crop, images, boxes, size=(16, 12))
    reference = one_by_one(transforms.resized_crop, images, boxes, size=(16, 12))
    np.testing.assert_allclose(ours, reference, atol=ATOL)


def test_flip_agrees_with_the_flipped_box(images):
    boxes = np.tile(np.array([[0.1, 0.2, 0.8, 0.7]], np.float32), (6, 1))
    flipped_boxes = augment.flip_boxes(tf.constant(boxes), tf.ones([6], tf.bool))
    ours = batched(augment.resized_crop, images, flipped_boxes, size=(20, 24))
    reference = np.stack(
        [
            transforms.horizontal_flip(transforms.resized_crop(i, b, (20, 24)))
            for i, b in zip(images, boxes, strict=True)
        ]
    )
    np.testing.assert_allclose(ours, reference, atol=ATOL)
    np.testing.assert_array_equal(
        batched(augment.horizontal_flip, images), one_by_one(transforms.horizontal_flip, images)
    )


@pytest.mark.parametrize(
    "name, factors",
    [
        ("brightness", [0.0, 0.5, 1.0, 1.3, 1.8, 0.9]),
        ("contrast", [0.0, 0.5, 1.0, 1.3, 1.8, 0.9]),
        ("saturation", [0.0, 0.5, 1.0, 1.3, 1.8, 0.9]),
    ],
)
def test_colour_factors_agree(images, name, factors):
    factors = np.array(factors, np.float32)
    ours = batched(getattr(augment, f"adjust_{name}"), images, factors)
    reference = one_by_one(getattr(transforms, f"adjust_{name}"), images, factors)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


@pytest.mark.parametrize("method", augment.HUE_METHODS)
def test_hue_agrees(images, method):
    shifts = np.array([-0.5, -0.2, 0.0, 0.05, 0.2, 0.5], np.float32)
    ours = batched(augment.adjust_hue, images, shifts, method=method)
    reference = one_by_one(transforms.adjust_hue, images, shifts, method=method)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


def test_grayscale_agrees(images):
    np.testing.assert_allclose(
        batched(augment.to_grayscale, images),
        one_by_one(transforms.to_grayscale, images),
        atol=ATOL,
    )


@pytest.mark.parametrize("name", ["grayscale", "to_grayscale"])
def test_grayscale_of_the_wrong_rank_points_to_the_other_module(images, name):
    with pytest.raises(ValueError, match=rf"received shape \(20, 24, 3\).*transforms\.{name}"):
        getattr(augment, name)(tf.constant(images[0]))
    with pytest.raises(ValueError, match=rf"received shape \(6, 20, 24, 3\).*augment\.{name}"):
        getattr(transforms, name)(images)


@pytest.mark.parametrize("method", augment.HUE_METHODS)
def test_color_jitter_in_random_orders_agrees(images, method):
    rng = np.random.default_rng(3)
    brightness, contrast, saturation = rng.uniform(0.2, 1.8, (3, 6)).astype(np.float32)
    hue = rng.uniform(-0.2, 0.2, 6).astype(np.float32)
    orders = np.array([rng.permutation(4) for _ in range(6)], np.int32)
    ours = augment.color_jitter(
        tf.constant(images), brightness, contrast, saturation, hue, orders, method
    ).numpy()
    reference = np.stack(
        [
            transforms.color_jitter(image, b, c, s, h, tuple(order), method)
            for image, b, c, s, h, order in zip(
                images, brightness, contrast, saturation, hue, orders, strict=True
            )
        ]
    )
    np.testing.assert_allclose(ours, reference, atol=ATOL)


def test_both_implementations_default_to_the_config_hue_method():
    assert AugmentConfig().hue_method == augment.DEFAULT_HUE_METHOD
    for function, argument in (
        (augment.adjust_hue, "method"),
        (transforms.adjust_hue, "method"),
        (augment.color_jitter, "hue_method"),
        (transforms.color_jitter, "hue_method"),
    ):
        default = inspect.signature(function).parameters[argument].default
        assert default == augment.DEFAULT_HUE_METHOD, function


def test_both_implementations_reject_an_unknown_hue_method(images):
    batch, ones = tf.constant(images), tf.ones([6])
    with pytest.raises(ValueError, match=r"received method='lab'"):
        augment.adjust_hue(batch, ones, "lab")
    with pytest.raises(ValueError, match=r"received method='lab'"):
        transforms.adjust_hue(images[0], 0.1, "lab")
    with pytest.raises(ValueError, match=r"received hue_method='lab'"):
        augment.color_jitter(batch, ones, ones, ones, ones, hue_method="lab")
    with pytest.raises(ValueError, match=r"received hue_method='lab'"):
        transforms.color_jitter(images[0], 1.0, 1.0, 1.0, 0.1, hue_method="lab")


def test_blur_and_solarize_agree(images):
    sigmas = np.array([0.1, 0.5, 1.0, 1.5, 2.0, 0.0], np.float32)
    ours = batched(augment.gaussian_blur, images, sigmas, kernel_size=5)
    reference = one_by_one(transforms.gaussian_blur, images, sigmas, kernel_size=5)
    np.testing.assert_allclose(ours, reference, atol=ATOL)
    np.testing.assert_allclose(
        augment.solarize(tf.constant(images), 0.4).numpy(),
        np.stack([transforms.solarize(image, 0.4) for image in images]),
        atol=ATOL,
    )


def test_crop_boxes_follow_the_same_distribution():
    rng = np.random.default_rng(4)
    area, aspect = (0.2, 1.0), (0.5, 2.0)
    reference = np.array(
        [transforms.sample_crop_box(rng, 32, 32, area, aspect) for _ in range(3000)]
    )
    ours = augment.sample_crop_boxes(tf.constant([1, 2]), 3000, 32, 32, area, aspect).numpy()

    def areas(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    for boxes in (reference, ours):
        assert areas(boxes).min() >= area[0] - 1e-5 and areas(boxes).max() <= area[1] + 1e-5
    assert np.mean(areas(ours)) == pytest.approx(np.mean(areas(reference)), abs=0.02)
    assert np.std(areas(ours)) == pytest.approx(np.std(areas(reference)), abs=0.02)


def test_reference_draws_parameters_in_the_configured_ranges(monkeypatch):
    config = AugmentConfig.preset("cifar", color_prob=1.0)
    calls = []
    original = transforms.color_jitter

    def recording(image, brightness, contrast, saturation, hue, order, hue_method):
        calls.append((brightness, contrast, saturation, hue, order, hue_method))
        return original(image, brightness, contrast, saturation, hue, order, hue_method)

    monkeypatch.setattr(transforms, "color_jitter", recording)
    transform = transforms.ImageTransforms(16, config, seed=0)
    image = np.zeros((16, 16, 3), np.uint8)
    for _ in range(200):
        transform(image)
    b, c, s, h, orders, methods = zip(*calls, strict=True)
    params = augment.sample_parameters(tf.constant([0, 1]), 400, 16, 16, config)
    for drawn, batched_drawn, limit in (
        (b, params.brightness, 0.4),
        (c, params.contrast, 0.4),
        (s, params.saturation, 0.4),
    ):
        for values in (np.array(drawn), batched_drawn.numpy()):
            assert values.min() >= 1 - limit and values.max() <= 1 + limit
            assert values.min() < 1 - 0.9 * limit and values.max() > 1 + 0.9 * limit
    for values in (np.array(h), params.hue.numpy()):
        assert np.abs(values).max() <= 0.1 and np.abs(values).max() > 0.09
    assert len(set(orders)) == 24
    assert set(methods) == {config.hue_method}


def test_image_transforms_make_two_views():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    transform = transforms.ImageTransforms(24, AugmentConfig.preset("imagenet"), seed=7)
    first, second = transform(image)
    for view in (first, second):
        assert view.shape == (24, 24, 3) and view.dtype == np.float32
        assert view.min() >= 0.0 and view.max() <= 1.0
    assert np.abs(first - second).max() > 0.05
    again = transforms.ImageTransforms(24, AugmentConfig.preset("imagenet"), seed=7)(image)
    np.testing.assert_array_equal(again[0], first)


def test_image_transforms_reject_bad_input():
    with pytest.raises(ValueError, match="image_size"):
        transforms.ImageTransforms(0)
    with pytest.raises(ValueError, match="image"):
        transforms.ImageTransforms(8)(np.zeros((8, 8), np.uint8))
