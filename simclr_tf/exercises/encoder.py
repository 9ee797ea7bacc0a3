"""Checker of notebook 02 (base encoder): the CIFAR stem of a ResNet."""

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

MISTAKES["cifar_stem"] = {
    "downsamples": "the map was halved: a stride of 2 (or a max-pool) does that. The CIFAR stem "
    "keeps all 32x32 positions: strides=1 and no pooling.",
    "imagenet_stem": "32x32 became 8x8: that is the ImageNet stem (7x7 convolution with stride "
    "2, then a 3x3 max-pool with stride 2). For small images use one 3x3 convolution with "
    "stride 1 and no max-pool.",
    "valid_padding": "the map lost a pixel at each border: padding='valid' does that. Use "
    "padding='same'.",
    "channels": "the convolution needs `channels` filters: keras.layers.Conv2D(channels, 3, ...).",
    "conv_bias": "one bias per channel too many: use_bias=False, since the BatchNorm that "
    "follows adds its own shift (beta) and would cancel a bias anyway.",
    "kernel_size": "the parameter count is that of a 7x7 kernel: the CIFAR stem uses a 3x3 "
    "kernel (kernel_size=3).",
    "no_batchnorm": "the parameters of a BatchNormalization layer are missing (4 per channel: "
    "gamma, beta and the two running statistics): Conv2D -> BatchNormalization -> ReLU.",
    "relu_last": "the output has negative values: finish with a ReLU after the BatchNorm "
    "(Conv2D -> BatchNormalization -> ReLU), as every stage of the encoder does.",
}


def check_cifar_stem(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(channels)``, a Keras model for the CIFAR stem of a ResNet.

    The model must map float images ``[B, 32, 32, 3]`` to ``[B, 32, 32, channels]`` with one
    3x3, stride-1, bias-free convolution, a BatchNorm and a ReLU: the same output shape and
    parameter count as the stem of ``st.models.build_encoder(..., stem="cifar")``.
    """
    from simclr_tf.models import build_encoder

    name = "cifar_stem"

    def body() -> str:
        images = np.random.default_rng(2).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
        for encoder_name, channels in (("resnet18", 64), ("small_cnn", 32)):
            library = build_encoder(encoder_name, 32, stem="cifar")
            expected_params = sum(
                library.get_layer(layer).count_params() for layer in ("stem_conv", "stem_bn")
            )
            expected_shape = tuple(library.get_layer("stem_relu").output.shape[1:])
            case = record_case(
                f"case channels={channels} (the stem of {encoder_name}, 32x32 images)"
            )
            model = fn(channels)
            output = to_numpy(model(images, training=True))
            shape = tuple(output.shape[1:])
            if shape != expected_shape:
                message = f"{case}: output shape {shape}, expected {expected_shape}."
                if shape[-1] != channels:
                    fail(name, message, "channels")
                mistake = {16: "downsamples", 8: "imagenet_stem", 30: "valid_padding"}.get(shape[0])
                fail(name, message, mistake, None if mistake else MISTAKES[name]["downsamples"])
            params = model.count_params()
            if params != expected_params:
                message = (
                    f"{case}: {params:,} parameters, the library's stem has {expected_params:,} "
                    f"(3x3x3x{channels} weights + 4x{channels} BatchNorm)."
                )
                variants = {
                    "conv_bias": expected_params + channels,
                    "kernel_size": 7 * 7 * 3 * channels + 4 * channels,
                    "no_batchnorm": 3 * 3 * 3 * channels,
                }
                mistake = next((key for key, value in variants.items() if value == params), None)
                fail(name, message, mistake, None if mistake else MISTAKES[name]["no_batchnorm"])
            if output.min() < 0:
                fail(name, f"{case}: the smallest output is {output.min():.3g}.", "relu_last")
        return (
            "output shapes (32, 32, 64) and (32, 32, 32) and parameter counts equal the "
            "library's CIFAR stem; outputs are non-negative."
        )

    return run_check(name, body)
