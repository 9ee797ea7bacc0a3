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
