"""The whole batched augmentation (simclr_tf.augment.views): parameters, views, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf
from augment_helpers import SEED, random_images

from simclr_tf import augment
from simclr_tf.augment import AugmentConfig


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


def test_probability_zero_is_the_identity():
    images = random_images(dtype=np.uint8)
    views = augment.augment_batch(images, SEED, identity_config())
    np.testing.assert_allclose(views.numpy(), images / 255.0, atol=1e-6)


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
