"""AugmentConfig (simclr_tf.augment.config): presets, derived ranges, validation."""

from __future__ import annotations

import pytest

from simclr_tf.augment import AugmentConfig


def test_presets_follow_the_paper():
    cifar = AugmentConfig.preset("cifar")
    imagenet = AugmentConfig.preset("imagenet")
    assert cifar.color_strength == 0.5 and cifar.blur_prob == 0.0
    assert imagenet.color_strength == 1.0 and imagenet.blur_prob == 0.5
    assert cifar.brightness_range == pytest.approx(0.4)
    assert cifar.hue_range == pytest.approx(0.1)
    assert imagenet.crop_area == (0.08, 1.0) and imagenet.grayscale_prob == 0.2
    assert imagenet.blur_kernel_size(224) == 23 and imagenet.blur_kernel_size(32) == 3


def test_preset_overrides_as_the_training_loop_passes_them():
    config = AugmentConfig.preset("cifar", crop_area=[0.2, 1.0], color_strength=0.7)
    assert config.crop_area == (0.2, 1.0)
    assert config.saturation_range == pytest.approx(0.56)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"crop_area": (0.5, 0.2)}, "crop_area"),
        ({"crop_area": (0.1, 1.5)}, "crop_area"),
        ({"flip_prob": 1.5}, "flip_prob"),
        ({"hue_method": "lab"}, "hue_method"),
        ({"hue": 0.7}, "hue"),
        ({"crop_attempts": 0}, "crop_attempts"),
        ({"color_strength": -1.0}, "color_strength"),
    ],
)
def test_invalid_config_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AugmentConfig(**kwargs)


def test_unknown_preset_or_field_is_rejected():
    with pytest.raises(ValueError, match="cifar"):
        AugmentConfig.preset("mnist")
    with pytest.raises(ValueError, match="colour_strength"):
        AugmentConfig.preset("cifar", colour_strength=0.5)


def test_the_crop_only_ablation_keeps_crop_and_flip_and_drops_colour():
    import dataclasses

    import numpy as np
    import tensorflow as tf

    from simclr_tf.augment import augment_batch
    from simclr_tf.config import preset

    crop_only = preset("cpu", augment="cifar_crop_only").augment_config()
    assert crop_only.color_prob == crop_only.grayscale_prob == crop_only.blur_prob == 0.0
    assert crop_only.crop_area == (0.2, 1.0) and crop_only.flip_prob == 0.5
    # A flat-coloured image stays exactly its colour through crop and flip alone.
    flat = np.full([4, 32, 32, 3], (200, 40, 90), np.uint8)
    views = augment_batch(tf.constant(flat), tf.constant([1, 2]), crop_only).numpy()
    np.testing.assert_allclose(
        views, np.broadcast_to(flat[:, :24, :24] / 255.0, views.shape), atol=1e-5
    )
    # Colour without crop: --crop_min_area=1.0 makes every box the whole image.
    color_only = preset("cpu", crop_min_area=1.0).augment_config()
    ramp = np.broadcast_to(np.arange(32, dtype=np.uint8)[None, None, :, None] * 8, [4, 32, 32, 3])
    geometry_only = dataclasses.replace(
        color_only, color_prob=0.0, grayscale_prob=0.0, flip_prob=0.0
    )
    views = augment_batch(tf.constant(ramp), tf.constant([3, 4]), geometry_only).numpy()
    whole = tf.image.resize(ramp / 255.0, [24, 24], antialias=True).numpy()
    np.testing.assert_allclose(views, whole, atol=0.02)
