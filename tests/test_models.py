"""Tests of the encoders and the projection head."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_tf.models import (
    build_encoder,
    build_projection_head,
    encoder_output_dim,
    resolve_stem,
)


def trainable_parameter_count(model: keras.Model) -> int:
    return sum(int(np.prod(variable.shape)) for variable in model.trainable_variables)


def random_images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, size, size, 3)).astype(np.float32)


@pytest.fixture
def policy(request):
    """Sets the global dtype policy named by the test's parameter, and restores float32."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    ("name", "width", "expected_dim"),
    [("small_cnn", 1, 256), ("small_cnn", 2, 512), ("resnet18", 1, 512), ("resnet50", 1, 2048)],
)
def test_encoder_output_shape(name, width, expected_dim):
    encoder = build_encoder(name, 32, width=width)
    h = encoder(random_images(2, 32), training=False)
    assert encoder.name == "encoder"
    assert tuple(h.shape) == (2, expected_dim)
    assert h.dtype == tf.float32
    assert encoder_output_dim(name, width) == expected_dim


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_encoder_declares_its_image_size_but_accepts_smaller_views(name):
    encoder = build_encoder(name, 32, representation_dim=64)
    assert encoder.input_shape == (None, 32, 32, 3)
    h = encoder(random_images(2, 24), training=False)
    assert tuple(h.shape) == (2, 64)
    with pytest.raises(ValueError):
        encoder(tf.zeros([2, 24, 24, 4]))  # the channel count is still checked


def test_encoder_output_dim_formula():
    assert encoder_output_dim("resnet18", 4) == 2048
    assert encoder_output_dim("resnet34", 2) == 1024
    assert encoder_output_dim("resnet50", 2) == 4096
    assert encoder_output_dim("small_cnn", 3) == 768


def test_representation_dim_adds_a_pointwise_expansion_before_pooling():
    plain = build_encoder("small_cnn", 32)
    wide = build_encoder("small_cnn", 32, representation_dim=1024)
    assert encoder_output_dim("small_cnn", 1, 1024) == 1024
    h = wide(random_images(3, 32), training=False)
    assert tuple(h.shape) == (3, 1024)
    assert h.dtype == tf.float32
    expand = wide.get_layer("expand_conv")
    assert expand.kernel_size == (1, 1)
    assert tuple(expand.input.shape) == (None, 4, 4, 256)
    # 1x1 kernel 256 x 1024, and the BatchNorm's gamma and beta: nothing else is added.
    added = trainable_parameter_count(wide) - trainable_parameter_count(plain)
    assert added == 256 * 1024 + 2 * 1024
    # ReLU before the pooling: every pooled feature is a mean of non-negative values.
    assert float(tf.reduce_min(h)) >= 0.0


def _resnet_parameter_count(block: str, blocks: tuple[int, ...], stem_kernel: int) -> int:
    """Counts conv kernels and BatchNorm (gamma, beta) of a ResNet v1 without the fc layer."""

    def conv_bn(k, c_in, c_out):
        return k * k * c_in * c_out + 2 * c_out

    total = conv_bn(stem_kernel, 3, 64)
    c_in = 64
    for stage, n in enumerate(blocks):
        c = 64 * 2**stage
        c_out = c if block == "basic" else 4 * c
        for index in range(n):
            if block == "basic":
                total += conv_bn(3, c_in, c) + conv_bn(3, c, c)
            else:
                total += conv_bn(1, c_in, c) + conv_bn(3, c, c) + conv_bn(1, c, c_out)
            if index == 0 and (stage > 0 or c_in != c_out):
                total += conv_bn(1, c_in, c_out)
            c_in = c_out
    return total


@pytest.mark.parametrize(
    ("name", "stem", "published_count"),
    [
        # Published totals with the 1000-class fc layer subtracted (512*1000 + 1000 for
        # ResNet-18/34, 2048*1000 + 1000 for ResNet-50): 11,689,512, 21,797,672, 25,557,032.
        ("resnet18", "imagenet", 11_689_512 - 513_000),
        ("resnet34", "imagenet", 21_797_672 - 513_000),
        ("resnet50", "imagenet", 25_557_032 - 2_049_000),
        # The CIFAR stem replaces the 7x7x3x64 kernel by a 3x3x3x64 one: 9,408 - 1,728 fewer.
        ("resnet18", "cifar", 11_689_512 - 513_000 - 9_408 + 1_728),
        ("resnet50", "cifar", 25_557_032 - 2_049_000 - 9_408 + 1_728),
    ],
)
def test_resnet_parameter_counts(name, stem, published_count):
    block = "bottleneck" if name == "resnet50" else "basic"
    blocks = (2, 2, 2, 2) if name == "resnet18" else (3, 4, 6, 3)
    counted = _resnet_parameter_count(block, blocks, 7 if stem == "imagenet" else 3)
    assert counted == published_count
    assert trainable_parameter_count(build_encoder(name, 32, stem=stem)) == published_count
    # In round figures: ResNet-18 (CIFAR) about 11.2 M, ResNet-50 about 23.5 M.
    expected_millions = {"resnet18": 11.2, "resnet34": 21.3, "resnet50": 23.5}[name]
    assert round(published_count / 1e6, 1) == expected_millions


def test_width_multiplier_scales_channels():
    narrow = build_encoder("small_cnn", 32, width=1)
    wide = build_encoder("small_cnn", 32, width=2)
    assert narrow.get_layer("stage3_2_conv").filters * 2 == wide.get_layer("stage3_2_conv").filters
    # Convolution kernels grow 4x (in and out channels); the stem's input stays 3 channels.
    ratio = trainable_parameter_count(wide) / trainable_parameter_count(narrow)
    assert 3.9 < ratio < 4.0


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_auto_stem_is_cifar_at_32_px(name):
    encoder = build_encoder(name, 32)
    stem = encoder.get_layer("stem_conv")
    assert stem.kernel_size == (3, 3) and stem.strides == (1, 1)
    assert not _has_layer(encoder, "stem_pool")
    # Stride 1 and no pooling: the stem keeps the full 32x32 resolution.
    assert tuple(stem.output.shape[1:3]) == (32, 32)


@pytest.mark.parametrize("size", [96, 224])
def test_auto_stem_is_imagenet_from_96_px(size):
    assert resolve_stem("auto", size) == "imagenet"
    encoder = build_encoder("small_cnn", size)
    stem = encoder.get_layer("stem_conv")
    assert stem.kernel_size == (7, 7) and stem.strides == (2, 2)
    pool = encoder.get_layer("stem_pool")
    assert pool.pool_size == (3, 3) and pool.strides == (2, 2)
    assert tuple(pool.output.shape[1:3]) == (size // 4, size // 4)


def test_auto_stem_boundary_and_explicit_stems():
    assert resolve_stem("auto", 32) == "cifar"
    assert resolve_stem("auto", 33) == "imagenet"
    assert build_encoder("small_cnn", 96, stem="cifar").get_layer("stem_conv").strides == (1, 1)
    imagenet_at_32 = build_encoder("small_cnn", 32, stem="imagenet")
    assert _has_layer(imagenet_at_32, "stem_pool")


def test_encoder_rescales_unit_interval_to_symmetric_range():
    rescale = build_encoder("small_cnn", 8).get_layer("rescale")
    np.testing.assert_allclose(rescale(np.array([0.0, 0.5, 1.0])).numpy(), [-1.0, 0.0, 1.0])


def test_encoder_in_inference_mode_is_deterministic_and_batch_independent():
    encoder = build_encoder("small_cnn", 16)
    images = random_images(4, 16)
    together = encoder(images, training=False).numpy()
    alone = encoder(images[:1], training=False).numpy()
    np.testing.assert_allclose(together[:1], alone, rtol=1e-4, atol=1e-5)


def test_residual_blocks_start_as_identity_branches():
    # The last BatchNorm of each residual block starts with gamma = 0.
    encoder = build_encoder("resnet18", 32)
    assert np.all(encoder.get_layer("stage2_block1_2_bn").gamma.numpy() == 0.0)
    assert np.all(encoder.get_layer("stage2_block1_1_bn").gamma.numpy() == 1.0)


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("small_cnn", "mixed_bfloat16"),
        ("resnet18", "mixed_bfloat16"),
        ("small_cnn", "mixed_float16"),
    ],
    indirect=["policy"],
)
def test_outputs_are_float32_under_mixed_precision(name, policy):
    encoder = build_encoder(name, 32)
    head = build_projection_head(encoder.output_shape[-1], hidden_dim=64)
    half = policy.removeprefix("mixed_")
    assert encoder.get_layer("stem_conv").compute_dtype == half
    assert encoder.get_layer("stem_conv").kernel.dtype == "float32"
    assert head.get_layer("hidden1_dense").compute_dtype == half
    h = encoder(random_images(2, 32), training=True)
    z = head(h, training=True)
    assert h.dtype == tf.float32 and z.dtype == tf.float32
    assert np.all(np.isfinite(z.numpy()))
    # BatchNorm keeps its statistics in float32.
    assert encoder.get_layer("stem_bn").moving_variance.dtype == "float32"


def test_resnet50_runs_and_trains_at_32_px():
    encoder = build_encoder("resnet50", 32)
    images = random_images(2, 32)
    with tf.GradientTape() as tape:
        h = encoder(images, training=True)
        loss = tf.reduce_mean(tf.square(h))
    gradients = tape.gradient(loss, encoder.trainable_variables)
    assert tuple(h.shape) == (2, 2048)
    assert all(g is not None for g in gradients)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": "resnet101", "image_size": 32}, "name"),
        ({"name": "resnet18", "image_size": 0}, "image_size"),
        ({"name": "resnet18", "image_size": -32}, "image_size"),
        ({"name": "resnet18", "image_size": 32, "width": 0}, "width"),
        ({"name": "resnet18", "image_size": 32, "stem": "tiny"}, "stem"),
        ({"name": "small_cnn", "image_size": 32, "representation_dim": -1}, "representation_dim"),
        ({"name": "small_cnn", "image_size": 32, "representation_dim": 2.5}, "representation_dim"),
    ],
)
def test_build_encoder_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}=") as error:
        build_encoder(**kwargs)
    assert repr(next(v for k, v in kwargs.items() if k == argument)) in str(error.value)


# --- Projection head --------------------------------------------------------------------------


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_projection_head_layers_and_shapes(num_layers):
    head = build_projection_head(32, hidden_dim=16, output_dim=8, num_layers=num_layers)
    assert head.name == "projection_head"
    dense = [layer for layer in head.layers if isinstance(layer, keras.layers.Dense)]
    norms = [layer for layer in head.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(dense) == num_layers and len(norms) == num_layers - 1
    assert dense[-1].name == "output_dense" and dense[-1].units == 8
    assert all(layer.units == 16 for layer in dense[:-1])
    z = head(np.ones((3, 32), np.float32), training=True)
    assert tuple(z.shape) == (3, 8) and z.dtype == tf.float32


def test_projection_head_hidden_dim_zero_means_input_dim():
    head = build_projection_head(24)
    assert head.get_layer("hidden1_dense").units == 24
    assert head.output_shape == (None, 128)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_dim": 0}, "input_dim"),
        ({"input_dim": 8, "hidden_dim": -1}, "hidden_dim"),
        ({"input_dim": 8, "output_dim": 0}, "output_dim"),
        ({"input_dim": 8, "num_layers": 0}, "num_layers"),
    ],
)
def test_build_projection_head_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        build_projection_head(**kwargs)


# --- Synchronised BatchNorm under MirroredStrategy --------------------------------------------


def _training_outputs_on_two_replicas(strategy, build, inputs: np.ndarray, synchronized: bool):
    """Training-mode outputs of a model run on half of ``inputs`` per replica, and of the same
    model (same weights) run on all of ``inputs`` on one device."""
    with strategy.scope():
        model = build(synchronized)
    single = build(False)
    single.set_weights(model.get_weights())
    halves = np.split(inputs, 2)
    distributed_inputs = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(halves[context.replica_id_in_sync_group])
    )
    outputs = strategy.run(tf.function(lambda x: model(x, training=True)), (distributed_inputs,))
    replicated = np.concatenate([v.numpy() for v in strategy.experimental_local_results(outputs)])
    return replicated, single(inputs, training=True).numpy()


def test_synchronized_batchnorm_head_normalises_over_the_global_batch(two_replicas):
    rng = np.random.default_rng(0)
    # Replicas see different data (shifted second half), so local and global statistics differ.
    h = rng.normal(size=(8, 6)).astype(np.float32)
    h[4:] += 3.0

    def build(synchronized):
        keras.utils.set_random_seed(1)
        return build_projection_head(6, hidden_dim=5, output_dim=4, sync_batchnorm=synchronized)

    replicated, single = _training_outputs_on_two_replicas(two_replicas, build, h, True)
    np.testing.assert_allclose(replicated, single, rtol=1e-4, atol=1e-5)
    replicated, single = _training_outputs_on_two_replicas(two_replicas, build, h, False)
    assert not np.allclose(replicated, single, rtol=1e-4, atol=1e-5)


def test_synchronized_batchnorm_encoder_builds_and_runs_under_mirrored_strategy(two_replicas):
    images = random_images(4, 16)
    images[2:] = images[2:] ** 3  # different statistics on the second replica

    def build(synchronized):
        keras.utils.set_random_seed(2)
        return build_encoder("small_cnn", 16, sync_batchnorm=synchronized)

    replicated, single = _training_outputs_on_two_replicas(two_replicas, build, images, True)
    assert replicated.shape == (4, 256)
    np.testing.assert_allclose(replicated, single, rtol=1e-3, atol=1e-4)
