"""Training throughput on this machine: bare step, full step, input pipeline, and FLOP/s.

For each encoder (32x32 images), precision and ``jit_compile`` setting it measures

* **bare step**: a ``tf.function`` forward + backward of encoder, projection head and NT-Xent
  on the two views of a batch (concatenated into one batch of 2N, as the training step does),
  on fixed float views: no augmentation, no optimizer update, no data, no metrics
  (``bare_step.forward_backward_step``, on the same models as the full step);
* **full step**: ``simclr_tf.train.Pretrainer.train_step`` on a fixed uint8 batch, as training
  runs it: two augmented views made on the device, forward, backward, optimizer update
  (AdamW), online linear probe, metrics returned to Python;

and prints images per second (source images: every image is seen as two views), the ratio full
/ bare, and the achieved training GFLOP/s. FLOPs are counted from the layers (2 x multiply-adds
of every convolution and dense layer, forward; training counted as 3 x forward), and compared
with the largest FLOP/s this machine reaches on a big matrix product in the same precision
(``peak`` table), a practical ceiling; the theoretical peak needs the clock frequency, which
this virtual machine does not expose.

The **input pipeline alone** is timed too: the tf.data pipeline that feeds the loop (shuffled
uint8 batches from the 50,000 x 32 x 32 x 3 array of CIFAR-10's size) and the batched
augmentation (two views, XLA-compiled, as inside the step). Both must be much faster than the
full step, so that they are never the bottleneck.

    .venv/bin/python benchmarks/throughput.py
    .venv/bin/python benchmarks/throughput.py --encoders small_cnn --jit off --steps 3
    .venv/bin/python benchmarks/throughput.py --thread_sweep

``--thread_sweep`` reruns the small-CNN bf16 steps in fresh processes with several intra-/
inter-op thread settings (they can only be set before TensorFlow starts) and prints which is
fastest. Timings are medians over ``--steps`` steps after ``--warmup_steps`` untimed ones
(tracing, XLA compilation); bare and full steps of a configuration are timed in turns so that
both see the same load. The ``load`` column is the 1-minute load average: about 2 when this
runs alone on 2 cores. Quote numbers with the machine and the load.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bare_step import forward_backward_step  # noqa: E402

from simclr_tf import augment, runtime, train  # noqa: E402
from simclr_tf.config import preset  # noqa: E402
from simclr_tf.data.sources import ArrayImages  # noqa: E402

THREAD_SETTINGS = ((0, 0), (2, 1), (2, 2), (1, 2), (1, 1))


def forward_flops(model: keras.Model, image_size: int | None = None) -> int:
    """FLOPs (2 x multiply-adds) of one example through the model's Conv2D and Dense layers.

    BatchNorm, ReLU, pooling and the loss add a few percent of memory-bound work and are not
    counted, as is usual for FLOP counts of convolutional networks. ``image_size`` other than
    the model's declared input side scales every convolution's output area by
    ``(image_size / declared)**2`` (exact when the strides divide both sizes, as 24 and 32 px
    do for the encoders here).
    """
    area_scale = 1.0
    if image_size is not None and len(model.input_shape) == 4:
        area_scale = (image_size / model.input_shape[1]) ** 2
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            height, width, out_channels = layer.output.shape[1:]
            kernel_h, kernel_w, in_channels, _ = layer.kernel.shape
            multiply_adds = height * width * out_channels * kernel_h * kernel_w * in_channels
            total += 2 * multiply_adds * area_scale
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return int(total)


def matmul_peak(precision: str, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a ``size x size`` matrix product in float32 or bfloat16 (median)."""
    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    a = tf.cast(tf.random.stateless_normal((size, size), seed=(0, 1)), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), seed=(0, 2)), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    product(a, b).numpy()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        durations.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(durations) / 1e9


def time_in_turns(functions: dict[str, callable], steps: int, warmup_steps: int) -> dict:
    """Median seconds of each zero-argument function, called in turns."""
    for function in functions.values():
        for _ in range(warmup_steps):
            function()
    durations = {name: [] for name in functions}
    for _ in range(steps):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            durations[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in durations.items()}


def measure_steps(
    encoder: str,
    precision: str,
    jit_compile: bool,
    batch_size: int,
    steps: int,
    warmup: int,
    view_size_ratio: float,
) -> dict[str, float]:
    """Seconds per bare and full step, and training FLOPs per source image."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8))
    labels = tf.constant(rng.integers(0, 10, batch_size), tf.int32)
    with tempfile.TemporaryDirectory() as out_dir:
        config = preset(
            "cpu",
            dataset="cifar10",
            encoder=encoder,
            precision=precision,
            jit_compile=jit_compile,
            batch_size=batch_size,
            view_size_ratio=view_size_ratio,
            out_dir=out_dir,
            verbose=0,
        )
        trainer = train.Pretrainer(config, num_examples=50_000, num_classes=10)
    shape = (batch_size, config.view_size, config.view_size, 3)
    view1 = tf.random.stateless_uniform(shape, seed=(1, 2))
    view2 = tf.random.stateless_uniform(shape, seed=(3, 4))
    bare = forward_backward_step(
        trainer.encoder,
        trainer.projection_head,
        jit_compile=jit_compile,
        temperature=config.temperature,
        concatenate_views=True,
    )
    seconds = time_in_turns(
        {
            "bare": lambda: bare(view1, view2).numpy(),
            "full": lambda: trainer.train_step(images, labels),
        },
        steps,
        warmup,
    )
    per_view = forward_flops(trainer.encoder, config.view_size) + forward_flops(
        trainer.projection_head
    )
    seconds["train_flops_per_image"] = 2 * 3 * per_view
    return seconds


def input_pipeline(batch_size: int, batches: int) -> dict[str, float]:
    """Images per second of the tf.data feed alone and of the augmentation alone."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as out_dir:
        config = preset("cpu", dataset="cifar10", batch_size=batch_size, out_dir=out_dir)
        trainer = train.Pretrainer(config, num_examples=len(pixels), num_classes=None)
        source = ArrayImages(pixels)
        dataset = trainer.epoch_batches(source, epoch=0)
        iterator = iter(dataset)
        next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        feed = batches * batch_size / (time.perf_counter() - start)
    batch = tf.constant(pixels[:batch_size])
    augment_config = config.augment_config()
    seconds = time_in_turns(
        {"augment": lambda: [v.numpy() for v in augment.two_views(batch, 0, 1, augment_config)]},
        steps=10,
        warmup_steps=2,
    )
    return {"feed": feed, "augment": batch_size / seconds["augment"]}


def thread_sweep(script: str) -> None:
    """Reruns the small-CNN bf16 steps under each thread setting in a fresh process."""
    print("| intra_op | inter_op | bare images/s | full images/s | load |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for intra, inter in THREAD_SETTINGS:
        output = subprocess.run(
            [
                sys.executable,
                script,
                "--encoders=small_cnn",
                "--precisions=mixed_bfloat16",
                "--jit=off",
                "--skip_peak",
                "--skip_pipeline",
                "--steps=5",
                f"--intra_op_threads={intra}",
                f"--inter_op_threads={inter}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = [line for line in output.splitlines() if line.startswith("| small_cnn")][0]
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        print(
            f"| {intra or 'default'} | {inter or 'default'} | {cells[4]} | {cells[5]} | "
            f"{cells[-1]} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["small_cnn", "resnet18"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--jit", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument(
        "--batch_size",
        type=int,
        default=preset("cpu").batch_size,
        help="Images per step (default: the cpu preset's).",
    )
    parser.add_argument(
        "--view_size_ratios",
        nargs="+",
        type=float,
        default=[preset("cpu").view_size_ratio],
        help="Training view side / image side (default: the cpu preset's); 1.0 = 32x32 views.",
    )
    parser.add_argument("--steps", type=int, default=4, help="Timed steps per configuration.")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--intra_op_threads", type=int, default=0, help="0: TensorFlow's choice.")
    parser.add_argument("--inter_op_threads", type=int, default=0, help="0: TensorFlow's choice.")
    parser.add_argument("--thread_sweep", action="store_true")
    parser.add_argument("--skip_peak", action="store_true")
    parser.add_argument("--skip_pipeline", action="store_true")
    args = parser.parse_args()
    for name in ("batch_size", "steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1; received {getattr(args, name)}.")
    if args.thread_sweep:
        thread_sweep(os.path.abspath(__file__))
        return
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    views = ", ".join(f"{round(32 * ratio)}x{round(32 * ratio)}" for ratio in args.view_size_ratios)
    print(
        f"{runtime.cpu_name()}; batch {args.batch_size} (2 x {args.batch_size} views of "
        f"{views} from 32x32 images), "
        f"{os.cpu_count()} CPU threads, intra/inter-op threads "
        f"{args.intra_op_threads}/{args.inter_op_threads} "
        f"(0 = TensorFlow's choice), TF {tf.__version__}, Keras {keras.__version__}, median of "
        f"{args.steps} steps.\n"
    )
    peaks = {}
    if not args.skip_peak:
        print("| precision | 2048x2048 matmul GFLOP/s |")
        print("| --- | ---: |")
        for precision in args.precisions:
            peaks[precision] = matmul_peak(precision)
            print(f"| {precision} | {peaks[precision]:.0f} |", flush=True)
        print()
    if not args.skip_pipeline:
        pipeline = input_pipeline(args.batch_size, batches=50)
        print("| input pipeline | images/s |")
        print("| --- | ---: |")
        print(f"| tf.data feed (shuffled uint8 batches) | {pipeline['feed']:.0f} |")
        print(f"| two-view augmentation (batched, XLA) | {pipeline['augment']:.0f} |\n", flush=True)

    print(
        "| encoder | views | precision | jit_compile | bare images/s | full images/s "
        "| full / bare | GFLOP/train image | full GFLOP/s | % of matmul | load |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    full_rates = {}
    for encoder, ratio, precision, jit in itertools.product(
        args.encoders, args.view_size_ratios, args.precisions, args.jit
    ):
        view = f"{round(32 * ratio)} px"
        seconds = measure_steps(
            encoder, precision, jit == "on", args.batch_size, args.steps, args.warmup_steps, ratio
        )
        bare = args.batch_size / seconds["bare"]
        full = args.batch_size / seconds["full"]
        full_rates[encoder, view, precision, jit] = full
        gflop = seconds["train_flops_per_image"] / 1e9
        peak = f"{100 * full * gflop / peaks[precision]:.0f}" if precision in peaks else ""
        print(
            f"| {encoder} | {view} | {precision} | {jit} | {bare:.0f} | {full:.0f} | "
            f"{full / bare:.2f} | {gflop:.2f} | {full * gflop:.0f} | {peak} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    for (encoder, view, precision, jit), rate in full_rates.items():
        if precision == "mixed_bfloat16" and (encoder, view, "float32", jit) in full_rates:
            ratio = rate / full_rates[encoder, view, "float32", jit]
            print(
                f"full step {encoder}, {view} views, jit {jit}: "
                f"mixed_bfloat16 / float32 = {ratio:.2f}x"
            )


if __name__ == "__main__":
    main()
