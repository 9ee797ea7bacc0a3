"""Properties of the batched SimCLR augmentation (simclr_tf.augment)."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import augment
from simclr_tf.augment import AugmentConfig

SEED = tf.constant([3, 14], tf.int64)


def random_images(batch=8, height=16, width=16, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    return rng.random((batch, height, width, 3), dtype=np.float32)


def identity_config(**overrides):
    """Every random operation switched off or made trivial."""
    values = dict(
        crop_area=(1.0, 1.0),
        crop_aspect=(1.0, 1.0),
        flip_prob=0.0,
        color_prob=0.0,
        grayscale_prob=0.0,
        blur_prob=0.0,
        solarize_prob=0.0,
        jit_compile=False,
    )
    values.update(overrides)
    return AugmentConfig(**values)


# --- configuration ------------------------------------------------------------------------------


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


# --- shapes, types, ranges ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_views_keep_shape_and_are_float_in_unit_range(dtype):
    images = random_images(dtype=dtype, height=16, width=12)
    config = AugmentConfig.preset("imagenet", solarize_prob=0.5, jit_compile=False)
    first, second = augment.two_views(images, seed=0, step=0, config=config)
    for view in (first, second):
        assert view.shape == images.shape and view.dtype == tf.float32
        assert float(tf.reduce_min(view)) >= 0.0 and float(tf.reduce_max(view)) <= 1.0


def test_output_size_resizes_the_views():
    images = random_images(batch=4, height=20, width=24)
    config = AugmentConfig.preset("cifar", output_size=12, jit_compile=False)
    assert augment.augment_batch(images, SEED, config).shape == (4, 12, 12, 3)


def test_bad_inputs_raise_value_errors():
    config = identity_config()
    with pytest.raises(ValueError, match="images"):
        augment.augment_batch(np.zeros((16, 16, 3), np.uint8), SEED, config)
    with pytest.raises(ValueError, match="dtype"):
        augment.augment_batch(np.zeros((2, 16, 16, 3), np.int32), SEED, config)
    with pytest.raises(ValueError, match="seed"):
        augment.augment_batch(np.zeros((2, 16, 16, 3), np.uint8), [1, 2, 3], config)


# --- individual operations ----------------------------------------------------------------------


def test_probability_zero_is_the_identity():
    images = random_images(dtype=np.uint8)
    views = augment.augment_batch(images, SEED, identity_config())
    np.testing.assert_allclose(views.numpy(), images / 255.0, atol=1e-6)


def test_unselected_images_are_left_exactly_unchanged_by_jitter():
    images = tf.constant(random_images(batch=4, dtype=np.float32))
    ones, zeros = tf.ones([4]), tf.zeros([4])
    order = tf.constant([[3, 2, 1, 0]] * 4)
    for method in augment.HUE_METHODS:
        out = augment.color_jitter(images, ones, ones, ones, zeros, order, method)
        np.testing.assert_array_equal(out.numpy(), images.numpy())


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


# --- random parameters --------------------------------------------------------------------------


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


def test_parameters_are_drawn_per_image():
    config = AugmentConfig.preset("imagenet", solarize_prob=0.5)
    params = augment.sample_parameters(SEED, 2000, 32, 32, config)
    for values in (params.brightness, params.hue, params.blur_sigma, params.crop_boxes[:, 0]):
        assert len(np.unique(values.numpy())) > 1900
    for flags, prob in (
        (params.flip, 0.5),
        (params.jitter, 0.8),
        (params.grayscale, 0.2),
        (params.blur, 0.5),
        (params.solarize, 0.5),
    ):
        assert np.mean(flags.numpy()) == pytest.approx(prob, abs=0.04)
    orders = {tuple(row) for row in params.jitter_order.numpy()}
    assert orders == set(itertools.permutations(range(4)))  # all 24 orders occur
    assert np.all(params.brightness.numpy() >= 0.2) and np.all(params.brightness.numpy() <= 1.8)
    assert np.all(np.abs(params.hue.numpy()) <= 0.2)


def test_identical_images_in_a_batch_get_different_views():
    image = random_images(batch=1)
    batch = np.repeat(image, 6, axis=0)
    views = augment.augment_batch(batch, SEED, AugmentConfig(jit_compile=False)).numpy()
    for i, j in itertools.combinations(range(6), 2):
        assert np.abs(views[i] - views[j]).max() > 0.05


# --- reproducibility ----------------------------------------------------------------------------


def test_same_seed_and_step_give_the_same_views():
    images = random_images()
    config = AugmentConfig.preset("cifar", jit_compile=False)
    a = augment.two_views(images, 7, 3, config)
    b = augment.two_views(images, 7, tf.constant(3, tf.int64), config)
    c = augment.two_views(images, 7, 4, config)
    d = augment.two_views(images, 8, 3, config)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    for other in (c, d):
        assert float(tf.reduce_max(tf.abs(a[0] - other[0]))) > 0.1
    assert float(tf.reduce_max(tf.abs(a[0] - a[1]))) > 0.1  # the two views differ


@pytest.mark.parametrize(
    "outer_jit, inner_jit",
    [(False, True), (True, False)],
    ids=["XLA inside a plain tf.function", "plain ops in a jit_compile=True tf.function"],
)
def test_views_inside_tf_function_match_eager(outer_jit, inner_jit):
    images = random_images(batch=4, height=16, width=16)
    # A larger blur kernel than the default, so that 16 px images are blurred too.
    settings = dict(blur_kernel_fraction=0.2, solarize_prob=0.0)
    expected = augment.two_views(
        images, 5, 2, AugmentConfig.preset("imagenet", jit_compile=False, **settings)
    )
    config = AugmentConfig.preset("imagenet", jit_compile=inner_jit, **settings)

    @tf.function(jit_compile=outer_jit)
    def views(images, step):
        return augment.two_views(images, 5, step, config)

    got = views(tf.constant(images), tf.constant(2, tf.int64))
    for x, y in zip(got, expected, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-4)
    other = views(tf.constant(images), tf.constant(3, tf.int64))
    assert float(tf.reduce_max(tf.abs(other[0] - got[0]))) > 0.1


def test_replicas_get_different_augmentations():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    image = random_images(batch=1)
    batch = tf.constant(np.repeat(image, 4, axis=0))
    config = AugmentConfig.preset("cifar", jit_compile=False)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).unbatch().batch(4)
    )

    @tf.function
    def step(images):
        return strategy.run(lambda x: augment.two_views(x, 0, 1, config)[0], args=(images,))

    per_replica = strategy.experimental_local_results(step(next(iter(dataset))))
    assert float(tf.reduce_max(tf.abs(per_replica[0] - per_replica[1]))) > 0.05


# --- Keras layer --------------------------------------------------------------------------------


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


# --- the view grid (simclr_tf.viz.plot_view_pairs) ----------------------------------------------


def test_plot_view_pairs_draws_the_grid_and_saves_a_png(tmp_path):
    from matplotlib.image import imread

    from simclr_tf import viz

    images = random_images(batch=5)
    config = AugmentConfig.preset("cifar", jit_compile=False)
    pairs = [augment.two_views(images, 0, step, config) for step in range(2)]
    views1 = np.stack([first.numpy() for first, _ in pairs])
    views2 = np.stack([second.numpy() for _, second in pairs])
    path = tmp_path / "figures" / "views.png"
    fig = viz.plot_view_pairs(images, views1, views2, titles=list("abcde"), max_images=4, path=path)
    assert len(fig.axes) == 5 * 4  # original + 2 pairs of views, 4 columns
    assert [ax.get_ylabel() for ax in fig.axes[::4]][:2] == ["original", "view 1 (1)"]
    assert imread(path).ndim == 3
    with pytest.raises(ValueError, match="views1"):
        viz.plot_view_pairs(images, views1[:, :3], views2[:, :3])
    with pytest.raises(ValueError, match="titles"):
        viz.plot_view_pairs(images, views1, views2, titles=["a"])
