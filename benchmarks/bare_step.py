"""Throughput of a bare SimCLR training step on this machine.

One step pushes the two augmented views of a batch (2 x batch images, here random pixels, so
no input pipeline is involved) through encoder and projection head, computes NT-Xent, and
takes gradients with respect to all trainable weights inside a ``tf.function`` (no optimizer
update, no data loading). It is run for each encoder, precision (float32 or mixed_bfloat16)
and with/without XLA (``jit_compile``), and a markdown table of the measured throughput is
printed.

    .venv/bin/python benchmarks/bare_step.py
    .venv/bin/python benchmarks/bare_step.py --encoders small_cnn --batch_size 128 --steps 5

"views/s" counts every image that goes through the network (2 per source image);
"images/s" counts source images (batch_size per step). Timings are medians over ``--steps``
steps after ``--warmup_steps`` untimed ones (tracing and XLA compilation happen there); the
configurations of one encoder are timed in turns, one step each, so that they share the load.

Other processes using the CPU at the same time slow everything down. The last column is the
highest 1-minute load average seen while an encoder's rows were measured: about 2 when this
benchmark runs alone on a 2-core machine (it keeps both cores busy), more when something else
runs too. Quote numbers with the machine and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf.losses import nt_xent_loss  # noqa: E402
from simclr_tf.models import build_encoder, build_projection_head  # noqa: E402


def forward_backward_step(
    encoder: keras.Model,
    head: keras.Model,
    jit_compile: bool = False,
    temperature: float = 0.5,
    concatenate_views: bool = False,
):
    """A compiled forward + backward of encoder, head and NT-Xent on two batches of views.

    With ``concatenate_views`` both views go through the networks as one batch of 2N, as the
    training loop does (BatchNorm sees both views); otherwise as two batches of N.
    """
    weights = encoder.trainable_variables + head.trainable_variables

    @tf.function(jit_compile=jit_compile)
    def step(view1: tf.Tensor, view2: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            if concatenate_views:
                z = head(encoder(tf.concat([view1, view2], 0), training=True), training=True)
                z1, z2 = tf.split(z, 2)
            else:
                z1 = head(encoder(view1, training=True), training=True)
                z2 = head(encoder(view2, training=True), training=True)
            loss, _ = nt_xent_loss(z1, z2, temperature)
        gradients = tape.gradient(loss, weights)
        # Reduce every gradient to one number so that no work can be skipped.
        return loss + tf.add_n([tf.reduce_sum(g) for g in gradients]) * 0.0

    return step


def make_step(encoder_name: str, precision: str, jit_compile: bool, image_size: int):
    """Builds encoder and head under ``precision`` and returns a compiled training step."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        encoder = build_encoder(encoder_name, image_size)
        head = build_projection_head(encoder.output_shape[-1])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return forward_backward_step(encoder, head, jit_compile)


def measure(
    encoder_name: str,
    configurations: list[tuple[str, bool]],
    batch_size: int,
    image_size: int,
    steps: int,
    warmup_steps: int,
) -> dict[tuple[str, bool], float]:
    """Median seconds per step of each (precision, jit_compile) configuration of an encoder.

    The configurations are timed in turns (one step of each, ``steps`` times), so that a change
    in the load of the machine affects all of them alike.
    """
    shape = (batch_size, image_size, image_size, 3)
    view1 = tf.random.stateless_uniform(shape, seed=(1, 2))
    view2 = tf.random.stateless_uniform(shape, seed=(3, 4))
    step_functions = {
        configuration: make_step(encoder_name, *configuration, image_size)
        for configuration in configurations
    }
    for step in step_functions.values():
        for _ in range(warmup_steps):
            step(view1, view2).numpy()
    durations = {configuration: [] for configuration in configurations}
    for _ in range(steps):
        for configuration, step in step_functions.items():
            start = time.perf_counter()
            step(view1, view2).numpy()
            durations[configuration].append(time.perf_counter() - start)
    return {configuration: statistics.median(d) for configuration, d in durations.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["small_cnn", "resnet18"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--jit", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup_steps", type=int, default=2)
    args = parser.parse_args()

    print(
        f"Bare step (encoder + head + NT-Xent, forward + backward), batch {args.batch_size} "
        f"(2 x {args.batch_size} views), {args.image_size}x{args.image_size}, "
        f"{os.cpu_count()} CPU threads, TF {tf.__version__}, Keras {keras.__version__}, "
        f"median of {args.steps} steps.\n"
    )
    print("| encoder | precision | jit_compile | s/step | images/s | views/s | load |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for encoder_name in args.encoders:
        configurations = [(p, jit == "on") for p in args.precisions for jit in args.jit]
        load_before = os.getloadavg()[0]
        seconds = measure(
            encoder_name,
            configurations,
            args.batch_size,
            args.image_size,
            args.steps,
            args.warmup_steps,
        )
        load = max(load_before, os.getloadavg()[0])
        for (precision, jit_compile), step_seconds in seconds.items():
            print(
                f"| {encoder_name} | {precision} | {'on' if jit_compile else 'off'} | "
                f"{step_seconds:.3f} | {args.batch_size / step_seconds:.0f} | "
                f"{2 * args.batch_size / step_seconds:.0f} | {load:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
