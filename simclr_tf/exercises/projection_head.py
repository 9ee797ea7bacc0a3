"""Checker of notebook 03: the projection head g."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    record_case,
    run_check,
    to_numpy,
)

MISTAKES["projection_head"] = {
    "output_shape": "the last layer is keras.layers.Dense(output_dim): z has output_dim numbers.",
    "hidden_bias": "the first Dense has a bias it does not need: use_bias=False, since the "
    "BatchNorm that follows has its own shift.",
    "no_batchnorm": "the BatchNormalization between the two Dense layers is missing.",
    "hidden_width": "the hidden layer must be hidden_dim wide: Dense(hidden_dim, use_bias=False).",
    "linear": "the head is linear: the ReLU between the BatchNorm and the last Dense is "
    "missing (a linear head is what the paper's Figure 8 compares against).",
}


def check_projection_head(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(input_dim, hidden_dim, output_dim)``, a builder of SimCLR's head g.

    The model it returns must map ``[B, input_dim]`` to ``[B, output_dim]``, have as many
    parameters as :func:`simclr_tf.models.build_projection_head` (Dense without bias, BatchNorm,
    ReLU, Dense with bias) and be non-linear.
    """
    import keras

    from simclr_tf.models import build_projection_head

    name = "projection_head"

    def body() -> str:
        input_dim, hidden_dim, output_dim = 48, 40, 16
        case = record_case(
            f"case input_dim={input_dim}, hidden_dim={hidden_dim}, output_dim={output_dim}"
        )
        keras.utils.set_random_seed(0)
        model = fn(input_dim, hidden_dim, output_dim)
        h = np.random.default_rng(0).normal(size=(8, input_dim)).astype(np.float32)
        z = to_numpy(model(h, training=False))
        if z.shape != (8, output_dim):
            fail(
                name,
                f"{case}: output shape {z.shape} for input (8, {input_dim}), expected "
                f"(8, {output_dim}).",
                "output_shape",
            )
        expected = build_projection_head(input_dim, hidden_dim, output_dim).count_params()
        params = model.count_params()
        if params != expected:
            variants = {
                "hidden_bias": expected + hidden_dim,
                "no_batchnorm": expected - 4 * hidden_dim,
                "hidden_width": build_projection_head(
                    input_dim, input_dim, output_dim
                ).count_params(),
            }
            mistake = next((key for key, value in variants.items() if value == params), None)
            fail(
                name,
                f"{case}: {params:,} parameters, expected {expected:,} (Dense "
                f"{input_dim}->{hidden_dim} without bias, BatchNorm, ReLU, Dense "
                f"{hidden_dim}->{output_dim} with bias).",
                mistake,
                None if mistake else MISTAKES[name]["hidden_width"],
            )
        plus = to_numpy(model(h, training=False))
        minus = to_numpy(model(-h, training=False))
        zero = to_numpy(model(np.zeros_like(h), training=False))
        if np.allclose(plus + minus, 2 * zero, atol=1e-5):
            fail(name, f"{case}: g(h) + g(-h) = 2 g(0) for every input.", "linear")
        return f"shape, parameter count ({expected:,}) and non-linearity are right."

    return run_check(name, body)
