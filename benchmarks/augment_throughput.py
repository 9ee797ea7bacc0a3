"""Throughput of the SimCLR augmentation on this machine, batched and one image at a time.

For each image size it times ``simclr_tf.augment.two_views`` on a batch of random uint8
images, in these set-ups:

* ``batched, XLA inside`` -- the default: ``AugmentConfig.jit_compile=True`` compiles the
  augmentation with XLA as its own cluster, called from a plain ``tf.function`` (as in a
  training step that is not compiled);
* ``batched, caller jit`` -- ``AugmentConfig.jit_compile=False`` inside a
  ``tf.function(jit_compile=True)`` (a training step compiled as a whole);
* ``batched, no XLA`` -- ``AugmentConfig.jit_compile=False`` in a plain ``tf.function``: one
  TensorFlow kernel per operation;
* ``batched, HSV hue`` (32 px only) -- the default set-up with ``hue_method="hsv"``;
* ``per-image tf.data.map`` -- the reference point: the same operations applied to one image
  at a time in ``Dataset.map(num_parallel_calls=AUTOTUNE)``, then batched.

Sizes use the paper's recipes: ``cifar`` (colour strength 0.5, no blur) at 32 px,
``imagenet`` (strength 1.0, blur) at larger sizes. "images/s" counts source images, each of
which gets two views (so views/s is twice as much). Batched timings are medians over
``--steps`` calls after a warm-up call (tracing and XLA compilation happen there; the
compile time is printed separately); the batched set-ups of one size are timed in turns, one
call each, so that they share whatever else the machine is doing.

Finally, for the "augmentation is a small part of a training step" check, it times one
forward and backward pass of ``build_encoder("small_cnn", 32)`` plus projection head and
NT-Xent on the two views of a 32 px batch (float32 and mixed_bfloat16, no XLA), and reports
the augmentation's share of augmentation + step.

    .venv/bin/python benchmarks/augment_throughput.py                  # about 2-3 minutes
    .venv/bin/python benchmarks/augment_throughput.py --sizes 32 --steps 20

Other processes using the CPU slow everything down; the load average is printed with the
table. Quote numbers with the machine and the load. The "CPU ms / 1000 images" column (CPU
time of this process, all threads) depends much less on other processes than images/s does:
on an otherwise idle machine, images/s is about 1000 / (CPU ms per 1000 images) times the
number of cores the set-up keeps busy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf import augment  # noqa: E402
from simclr_tf.augment import AugmentConfig, two_views  # noqa: E402

DEFAULT_BATCH = {32: 512, 96: 128, 224: 32}
DEFAULT_SETUP = "batched, XLA inside (default)"


def preset_for(size: int) -> str:
    return "cifar" if size <= 32 else "imagenet"


def batched_setups(size: int) -> dict[str, tuple[AugmentConfig, bool]]:
    """name -> (config, outer jit_compile)."""
    preset = preset_for(size)
    setups = {
        DEFAULT_SETUP: (AugmentConfig.preset(preset), False),
        "batched, caller jit_compile=True": (
            AugmentConfig.preset(preset, jit_compile=False),
            True,
        ),
        "batched, no XLA": (AugmentConfig.preset(preset, jit_compile=False), False),
    }
    if size <= 32:
        setups["batched, XLA inside, HSV hue"] = (
            AugmentConfig.preset(preset, hue_method="hsv"),
            False,
        )
    return setups


def time_batched(size: int, batch: int, steps: int) -> dict[str, tuple[float, float, float]]:
    """name -> (images per second, CPU seconds per image, first-call seconds), in turns."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    functions, compile_seconds, times, cpu_times = {}, {}, {}, {}
    for name, (config, outer_jit) in batched_setups(size).items():

        @tf.function(jit_compile=outer_jit)
        def views(images, step, config=config):
            first, second = two_views(images, 0, step, config)
            # Reduce every pixel of both views, so that no work can be skipped.
            return tf.reduce_sum(first) + tf.reduce_sum(second)

        start = time.perf_counter()
        views(images, tf.constant(0, tf.int64)).numpy()
        compile_seconds[name] = time.perf_counter() - start
        functions[name], times[name], cpu_times[name] = views, [], []
    for step in range(1, steps + 1):
        for name, views in functions.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            views(images, tf.constant(step, tf.int64)).numpy()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
    return {
        name: (
            batch / statistics.median(times[name]),
            statistics.median(cpu_times[name]) / batch,
            compile_seconds[name],
        )
        for name in functions
    }


def augment_one_image(image: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """One view of one ``[H, W, 3]`` uint8 image, written the per-image way.

    The same operations and parameter ranges as ``simclr_tf.augment``, but as one would write
    them for ``Dataset.map``: per-image ``tf.image`` kernels (``crop_and_resize``,
    ``adjust_hue``, ...), and ``tf.cond`` / ``tf.switch_case`` to skip what is not applied.
    """
    size = image.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 12)

    def uniform(index, low=0.0, high=1.0):
        return tf.random.stateless_uniform([], seeds[index], low, high)

    view = tf.image.convert_image_dtype(image, tf.float32)
    box = augment.sample_crop_boxes(
        seeds[0], 1, size, size, config.crop_area, config.crop_aspect, config.crop_attempts
    )
    view = tf.image.crop_and_resize(view[None], box, [0], [size, size])[0]
    view = tf.cond(uniform(1) < config.flip_prob, lambda: view[:, ::-1], lambda: view)

    def gray(x):
        return tf.reduce_sum(x * tf.constant(augment.GRAY_WEIGHTS), axis=-1, keepdims=True)

    def jitter(x):
        b, c, s = config.brightness_range, config.contrast_range, config.saturation_range
        factors = [uniform(2, max(0, 1 - b), 1 + b), uniform(3, max(0, 1 - c), 1 + c)]
        factors.append(uniform(4, max(0, 1 - s), 1 + s))
        hue = uniform(5, -config.hue_range, config.hue_range)
        operations = [
            lambda x: x * factors[0],
            lambda x: factors[1] * x + (1 - factors[1]) * tf.reduce_mean(gray(x)),
            lambda x: factors[2] * x + (1 - factors[2]) * gray(x),
            lambda x: tf.image.adjust_hue(x, hue),
        ]
        order = tf.argsort(tf.random.stateless_uniform([4], seeds[6]))
        for stage in range(4):
            branches = [lambda op=op, x=x: tf.clip_by_value(op(x), 0.0, 1.0) for op in operations]
            x = tf.switch_case(order[stage], branches)
        return x

    view = tf.cond(uniform(7) < config.color_prob, lambda: jitter(view), lambda: view)
    view = tf.cond(
        uniform(8) < config.grayscale_prob, lambda: tf.tile(gray(view), [1, 1, 3]), lambda: view
    )
    kernel_size = config.blur_kernel_size(size)
    if config.blur_prob > 0 and kernel_size > 1:

        def blur(x):
            sigma = tf.reshape(uniform(9, *config.blur_sigma), [1])
            return augment.gaussian_blur(x[None], sigma, kernel_size)[0]

        view = tf.cond(uniform(10) < config.blur_prob, lambda: blur(view), lambda: view)
    return view


def time_per_image_map(size: int, batch: int, num_images: int) -> tuple[float, float]:
    """(images per second, CPU seconds per image) of the image-by-image tf.data pipeline."""
    config = AugmentConfig.preset(preset_for(size), jit_compile=False)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (num_images, size, size, 3), dtype=np.uint8)

    def two_views_of_one(index, image):
        seed = tf.stack([tf.constant(0, tf.int64), index])
        seeds = tf.random.experimental.stateless_split(seed, 2)
        return augment_one_image(image, seeds[0], config), augment_one_image(
            image, seeds[1], config
        )

    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .enumerate()
        .map(two_views_of_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in dataset.take(2):  # warm-up: tracing and the autotuner's first guesses
        pass
    start, cpu_start = time.perf_counter(), time.process_time()
    count = 0
    for first, _ in dataset:
        count += int(first.shape[0])
    return count / (time.perf_counter() - start), (time.process_time() - cpu_start) / count


def time_training_step(batch: int, steps: int) -> dict[str, float]:
    """Seconds per forward+backward step of the small CPU encoder on two 32 px views."""
    from bare_step import make_step  # a sibling script: benchmarks/ is on sys.path

    rng = np.random.default_rng(2)
    view1 = tf.constant(rng.random((batch, 32, 32, 3), dtype=np.float32))
    view2 = tf.constant(rng.random((batch, 32, 32, 3), dtype=np.float32))
    results = {}
    for precision in ("float32", "mixed_bfloat16"):
        step = make_step("small_cnn", precision, False, 32)
        step(view1, view2).numpy()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step(view1, view2).numpy()
            times.append(time.perf_counter() - start)
        results[precision] = statistics.median(times)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96, 224])
    parser.add_argument(
        "--batch_sizes",
        type=int,
        nargs="+",
        default=None,
        help="One batch size per --sizes entry (default: 512 at 32 px, 128 at 96, 32 at 224).",
    )
    parser.add_argument("--steps", type=int, default=10, help="Timed calls per set-up.")
    parser.add_argument(
        "--map_batches", type=int, default=4, help="Batches the per-image tf.data.map makes."
    )
    parser.add_argument("--train_steps", type=int, default=3, help="Timed training steps.")
    args = parser.parse_args(argv)
    batches = args.batch_sizes or [DEFAULT_BATCH.get(size, 64) for size in args.sizes]
    if len(batches) != len(args.sizes):
        parser.error("give one --batch_sizes entry per --sizes entry")

    rows = []
    loads = []
    augment_seconds_32 = None
    for size, batch in zip(args.sizes, batches, strict=True):
        results = time_batched(size, batch, args.steps)
        loads.append(os.getloadavg()[0])
        map_rate, map_cpu = time_per_image_map(size, batch, batch * args.map_batches)
        loads.append(os.getloadavg()[0])
        for name, (rate, cpu, compile_seconds) in results.items():
            ratio = rate / map_rate
            rows.append((size, batch, preset_for(size), name, rate, ratio, cpu, compile_seconds))
        rows.append(
            (size, batch, preset_for(size), "per-image tf.data.map", map_rate, 1.0, map_cpu, None)
        )
        if size == 32:
            augment_seconds_32 = batch / results[DEFAULT_SETUP][0]
            batch_32 = batch

    print(
        f"\nSimCLR augmentation throughput ({os.cpu_count()} CPU cores, TensorFlow "
        f"{tf.__version__}); images/s = source images with both views made\n"
    )
    print(
        "| size | batch | preset | set-up | images/s | views/s | vs. per-image map "
        "| CPU ms / 1000 images | first call |"
    )
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for size, batch, preset, name, rate, ratio, cpu, compile_seconds in rows:
        first = "" if compile_seconds is None else f"{compile_seconds:.1f} s"
        print(
            f"| {size} | {batch} | {preset} | {name} | {rate:,.0f} | {2 * rate:,.0f} | "
            f"{ratio:.1f}x | {1e6 * cpu:,.0f} | {first} |"
        )
    print(f"\n1-minute load average while measuring: max {max(loads):.1f} (about 2 = alone).")

    if augment_seconds_32 is not None:
        step = time_training_step(batch_32, args.train_steps)
        print(f"\nAugmentation vs. training step at 32 px, batch {batch_32}:")
        print(f"  augmentation (two views, default set-up): {augment_seconds_32 * 1e3:.1f} ms")
        for precision, seconds in step.items():
            share = augment_seconds_32 / (augment_seconds_32 + seconds)
            print(
                f"  small_cnn forward+backward, {precision}: {seconds * 1e3:.0f} ms -> "
                f"augmentation is {100 * share:.1f} % of augmentation + step"
            )


if __name__ == "__main__":
    main()
