"""Tests of LARS, the other optimizers, the warm-up + cosine schedule and learning-rate scaling."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_tf.optim import (
    LARS,
    AdamW,
    AdamWithL2,
    SGDWithL2,
    WarmupCosineDecay,
    build_optimizer,
    scaled_learning_rate,
)

MOMENTUM = 0.9
WEIGHT_DECAY = 0.01
TRUST_COEFFICIENT = 0.001


def reference_lars(
    weights: np.ndarray,
    targets: np.ndarray,
    learning_rates: list[float],
    excluded: bool,
    momentum: float = MOMENTUM,
    weight_decay: float = WEIGHT_DECAY,
    trust_coefficient: float = TRUST_COEFFICIENT,
) -> np.ndarray:
    """LARS (You et al., 2017, Algorithm 1, with SimCLR's momentum form) in float64, on the loss
    0.5 * |w - target|^2, whose gradient is w - target. ``excluded`` variables get neither weight
    decay nor the trust ratio."""
    w = weights.astype(np.float64)
    velocity = np.zeros_like(w)
    for learning_rate in learning_rates:
        gradient = w - targets
        ratio = 1.0
        if not excluded:
            gradient = gradient + weight_decay * w
            w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(gradient)
            if w_norm > 0 and g_norm > 0:
                ratio = trust_coefficient * w_norm / g_norm
        velocity = momentum * velocity + learning_rate * ratio * gradient
        w = w - velocity
    return w


@pytest.fixture
def problem():
    """A kernel (2-D, decayed and adapted) and a bias (1-D, excluded), with their targets."""
    rng = np.random.default_rng(0)
    return {
        "kernel": rng.normal(size=(3, 4)).astype(np.float32),
        "bias": rng.normal(size=(4,)).astype(np.float32),
        "kernel_target": rng.normal(size=(3, 4)).astype(np.float32),
        "bias_target": rng.normal(size=(4,)).astype(np.float32),
    }


def _quadratic_step(optimizer, variables, targets):
    """One optimizer step on 0.5 * sum |v - target|^2."""
    with tf.GradientTape() as tape:
        loss = tf.add_n(
            [0.5 * tf.reduce_sum(tf.square(v - t)) for v, t in zip(variables, targets, strict=True)]
        )
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))


def _check_against_reference(problem, variables, learning_rates, bias_excluded=True):
    np.testing.assert_allclose(
        variables[0].numpy(),
        reference_lars(problem["kernel"], problem["kernel_target"], learning_rates, False),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        variables[1].numpy(),
        reference_lars(problem["bias"], problem["bias_target"], learning_rates, bias_excluded),
        rtol=1e-5,
        atol=1e-6,
    )


def _make_variables(problem):
    return [
        keras.Variable(problem["kernel"], name="kernel"),
        keras.Variable(problem["bias"], name="bias"),
    ]


def test_lars_matches_numpy_reference_over_several_steps(problem):
    variables = _make_variables(problem)
    targets = [problem["kernel_target"], problem["bias_target"]]
    optimizer = LARS(0.5, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    for _ in range(6):
        _quadratic_step(optimizer, variables, targets)
    _check_against_reference(problem, variables, [0.5] * 6)
    # The step is really scaled: without the trust ratio the kernel would move much further.
    assert not np.allclose(
        variables[0].numpy(),
        reference_lars(problem["kernel"], problem["kernel_target"], [0.5] * 6, True),
        atol=1e-3,
    )


def test_lars_with_schedule_inside_jit_compiled_tf_function(problem):
    variables = _make_variables(problem)
    targets = [tf.constant(problem["kernel_target"]), tf.constant(problem["bias_target"])]
    schedule = WarmupCosineDecay(2.0, warmup_steps=2, total_steps=6)
    optimizer = LARS(schedule, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    step = tf.function(lambda: _quadratic_step(optimizer, variables, targets), jit_compile=True)
    for _ in range(5):
        step()
    learning_rates = [float(schedule(i)) for i in range(5)]
    assert learning_rates[0] == 0.0 and learning_rates[2] == 2.0
    _check_against_reference(problem, variables, learning_rates)


def test_lars_adaptation_of_vectors_is_configurable(problem):
    variables = _make_variables(problem)
    targets = [problem["kernel_target"], problem["bias_target"]]
    optimizer = LARS(
        0.5,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        exclude_vectors_from_weight_decay=False,
        exclude_vectors_from_adaptation=False,
    )
    for _ in range(3):
        _quadratic_step(optimizer, variables, targets)
    _check_against_reference(problem, variables, [0.5] * 3, bias_excluded=False)


def test_lars_honours_keras_exclusion_by_name():
    kernel = keras.Variable(np.ones((2, 2), np.float32), name="kernel")
    optimizer = LARS(1.0, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["kernel"])
    # Zero gradient: only weight decay could move the kernel.
    optimizer.apply_gradients([(tf.zeros((2, 2)), kernel)])
    np.testing.assert_array_equal(kernel.numpy(), np.ones((2, 2)))


@pytest.mark.parametrize("loss_scaling", [False, True])
def test_lars_under_mirrored_strategy_matches_reference(problem, loss_scaling, two_replicas):
    strategy = two_replicas
    with strategy.scope():
        variables = _make_variables(problem)
        optimizer = LARS(0.5, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        if loss_scaling:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=64.0)
        # Under a strategy, optimizer variables must be created in its scope, not in strategy.run.
        optimizer.build(variables)
    targets = [tf.constant(problem["kernel_target"]), tf.constant(problem["bias_target"])]

    @tf.function
    def replica_step():
        # Each replica holds half of the loss; the optimizer sums the replicas' gradients.
        with tf.GradientTape() as tape:
            loss = tf.add_n(
                [
                    0.25 * tf.reduce_sum(tf.square(v - t))
                    for v, t in zip(variables, targets, strict=True)
                ]
            )
            loss = optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    for _ in range(4):
        strategy.run(replica_step)
    _check_against_reference(problem, variables, [0.5] * 4)
    assert int(optimizer.iterations.numpy()) == 4


def test_lars_wrapped_in_loss_scale_optimizer_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        results = []
        for wrap in (False, True):
            keras.utils.set_random_seed(3)
            model = keras.Sequential(
                [keras.Input((5,)), keras.layers.Dense(3), keras.layers.Dense(2)]
            )
            optimizer = LARS(0.5, weight_decay=WEIGHT_DECAY)
            if wrap:
                # A scale small enough that no step overflows (an overflowing step is skipped).
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=256.0)
            x = tf.constant(np.random.default_rng(4).normal(size=(8, 5)), tf.float32)

            @tf.function
            def step(model=model, optimizer=optimizer, x=x):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(tf.cast(model(x), tf.float32) - 1.0))
                    scaled = optimizer.scale_loss(loss)
                gradients = tape.gradient(scaled, model.trainable_variables)
                optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
                return loss

            losses = [float(step()) for _ in range(5)]
            assert losses[-1] < losses[0]
            results.append([v.numpy() for v in model.trainable_variables])
        assert model.layers[0].compute_dtype == "float16"
        assert optimizer.dynamic_scale.numpy() == 256.0  # the loss really was scaled
        assert int(optimizer.iterations.numpy()) == 5  # and no step was skipped
        for plain, scaled in zip(*results, strict=True):
            np.testing.assert_allclose(plain, scaled, rtol=1e-3, atol=1e-4)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_lars_config_round_trip():
    optimizer = LARS(
        WarmupCosineDecay(1.0, 10, 100), momentum=0.8, weight_decay=1e-6, trust_coefficient=0.002
    )
    restored = LARS.from_config(optimizer.get_config())
    assert restored.momentum == 0.8 and restored.trust_coefficient == 0.002
    assert restored.weight_decay == 1e-6
    assert isinstance(restored._learning_rate, WarmupCosineDecay)
    deserialized = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(deserialized, LARS)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"trust_coefficient": 0.0}, "trust_coefficient"),
    ],
)
def test_lars_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        LARS(0.1, **kwargs)


# --- Other optimizers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_class"),
    [("lars", LARS), ("sgd", SGDWithL2), ("adam", AdamWithL2), ("adamw", AdamW)],
)
def test_weight_decay_spares_biases_and_batchnorm(name, expected_class):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    for variable in model.trainable_variables:
        variable.assign(tf.ones(variable.shape))
    optimizer = build_optimizer(name, 0.1, weight_decay=0.5)
    assert isinstance(optimizer, expected_class)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    # A zero gradient: only weight decay can move a variable.
    zeros = [tf.zeros(v.shape) for v in model.trainable_variables]
    pairs = list(zip(zeros, model.trainable_variables, strict=True))
    step = tf.function(lambda: optimizer.apply_gradients(pairs))
    step()
    step()
    for variable in model.trainable_variables:
        moved = not np.allclose(variable.numpy(), before[variable.path])
        assert moved == (len(variable.shape) == 2), variable.path


def test_sgd_weight_decay_is_an_l2_term_through_momentum():
    weight = keras.Variable(np.full((2, 2), 2.0, np.float32))
    optimizer = build_optimizer("sgd", 0.1, weight_decay=0.5, momentum=0.9)
    gradient = np.full((2, 2), 0.25, np.float32)
    w, velocity = 2.0, 0.0
    for _ in range(3):
        optimizer.apply_gradients([(tf.constant(gradient), weight)])
        velocity = 0.9 * velocity - 0.1 * (0.25 + 0.5 * w)
        w = w + velocity
    np.testing.assert_allclose(weight.numpy(), np.full((2, 2), w), rtol=1e-6)


def test_adamw_weight_decay_is_decoupled():
    weight = keras.Variable(np.full((2, 2), 2.0, np.float32))
    optimizer = build_optimizer("adamw", 0.1, weight_decay=0.5)
    optimizer.apply_gradients([(tf.zeros((2, 2)), weight)])
    # Zero gradient: Adam moves nothing, decoupled decay shrinks by lr * wd.
    np.testing.assert_allclose(weight.numpy(), np.full((2, 2), 2.0 * (1 - 0.1 * 0.5)), rtol=1e-6)


def test_build_optimizer_accepts_schedule_and_integer_learning_rate():
    schedule = WarmupCosineDecay(0.3, 5, 50)
    optimizer = build_optimizer("sgd", schedule, weight_decay=0.0)
    assert optimizer._learning_rate is schedule
    assert float(build_optimizer("adamw", 1, weight_decay=0.0).learning_rate) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": "rmsprop"}, "name"),
        ({"name": "LARS"}, "name"),
        ({"name": "sgd", "weight_decay": -0.1}, "weight_decay"),
        ({"name": "sgd", "momentum": 1.5}, "momentum"),
        ({"name": "adam", "learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_build_optimizer_rejects_bad_arguments(kwargs, argument):
    arguments = {"learning_rate": 0.1, "weight_decay": 0.0, **kwargs}
    with pytest.raises(ValueError, match=f"{argument}="):
        build_optimizer(**arguments)


# --- Schedule and scaling -------------------------------------------------------------------


def test_warmup_cosine_decay_values_at_key_steps():
    schedule = WarmupCosineDecay(2.0, warmup_steps=10, total_steps=110)
    values = {step: float(schedule(step)) for step in (0, 5, 10, 35, 60, 85, 110, 200)}
    assert values[0] == 0.0
    assert values[5] == pytest.approx(1.0)  # half-way through the warm-up
    assert values[10] == pytest.approx(2.0)  # the peak
    assert values[35] == pytest.approx(1.0 + math.cos(math.pi / 4))
    assert values[60] == pytest.approx(1.0)  # half-way through the decay
    assert values[85] == pytest.approx(1.0 - math.cos(math.pi / 4), abs=1e-6)
    assert values[110] == pytest.approx(0.0, abs=1e-7)
    assert values[200] == pytest.approx(0.0, abs=1e-7)
    steps = np.arange(0, 111)
    curve = np.array([float(schedule(int(s))) for s in steps])
    assert np.all(np.diff(curve[:11]) > 0) and np.all(np.diff(curve[10:]) <= 1e-7)


def test_warmup_cosine_decay_without_warmup_starts_at_peak():
    schedule = WarmupCosineDecay(0.5, warmup_steps=0, total_steps=4)
    expected = [
        0.5,
        0.25 * (1 + math.cos(math.pi / 4)),
        0.25,
        0.25 * (1 - math.cos(math.pi / 4)),
        0,
    ]
    assert [float(schedule(s)) for s in range(5)] == pytest.approx(expected, abs=1e-6)


def test_warmup_longer_than_the_run_only_rises_then_stops():
    schedule = WarmupCosineDecay(1.0, warmup_steps=100, total_steps=10)
    assert float(schedule(5)) == pytest.approx(0.05)
    assert float(schedule(9)) == pytest.approx(0.09)
    assert float(schedule(10)) == 0.0


def test_warmup_cosine_decay_accepts_int64_step_tensors_and_serialises():
    schedule = WarmupCosineDecay(1.0, 4, 20)
    assert float(schedule(tf.constant(2, tf.int64))) == pytest.approx(0.5)
    restored = WarmupCosineDecay.from_config(schedule.get_config())
    assert restored.get_config() == {
        "peak_learning_rate": 1.0,
        "warmup_steps": 4,
        "total_steps": 20,
    }
    deserialized = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(deserialized, WarmupCosineDecay)
    assert float(deserialized(12)) == pytest.approx(float(schedule(12)))


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ((-1.0, 0, 10), "peak_learning_rate"),
        ((1.0, -1, 10), "warmup_steps"),
        ((1.0, 2.5, 10), "warmup_steps"),
        ((1.0, 0, 0), "total_steps"),
    ],
)
def test_warmup_cosine_decay_rejects_bad_arguments(args, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        WarmupCosineDecay(*args)


def test_scaled_learning_rate_formulas():
    # Appendix B.1: LR = 0.3 x BatchSize / 256 (linear) or 0.075 x sqrt(BatchSize).
    assert scaled_learning_rate(0.3, 4096, "linear") == pytest.approx(4.8)
    assert scaled_learning_rate(0.075, 4096, "sqrt") == pytest.approx(4.8)
    assert scaled_learning_rate(1.0, 512, "linear") == pytest.approx(2.0)
    assert scaled_learning_rate(0.075, 256, "sqrt") == pytest.approx(1.2)
    assert scaled_learning_rate(0.01, 1024, "none") == 0.01


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ((0.1, 256, "log"), "scaling"),
        ((-0.1, 256, "linear"), "base_lr"),
        ((0.1, 0, "sqrt"), "batch_size"),
    ],
)
def test_scaled_learning_rate_rejects_bad_arguments(args, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        scaled_learning_rate(*args)
