"""What the training loop costs on top of the bare computation.

Compares, for one encoder and each precision:

* **bare step**: a ``tf.function`` forward + backward of the same encoder, head and NT-Xent
  on the same batch as the loop computes it (the two views of N images concatenated into one
  batch of 2N, as SimCLR does so that BatchNorm sees both views, at the preset's view size),
  on fixed random views: no
  augmentation, no optimizer update, no data pipeline, no metrics;
* **training loop**: ``simclr_tf.train.Pretrainer.fit`` on random uint8 images, as a user runs
  it: data pipeline, augmentation of two views on the device, forward, backward, optimizer
  update, online probe, metrics, logs, a checkpoint and the quality metrics at every epoch end.
  Its throughput is the ``images_per_second`` the loop itself reports in ``metrics.csv`` (wall
  time between steps), averaged over the epochs after the second: the first includes tracing,
  the end of the first the first call of the quality metrics (one-time costs).

    .venv/bin/python benchmarks/train_loop_overhead.py
    .venv/bin/python benchmarks/train_loop_overhead.py --encoder resnet18 --images 2048

Run it on a quiet machine: the last column is the 1-minute load average (about 2 when this
runs alone on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bare_step import forward_backward_step  # noqa: E402

from simclr_tf import runtime, train  # noqa: E402
from simclr_tf.config import preset  # noqa: E402


def bare_images_per_second(trainer: train.Pretrainer, steps: int) -> float:
    """Source images per second of forward + backward alone, on the trainer's own models."""
    batch_size, view_size = trainer.config.batch_size, trainer.config.view_size
    shape = (batch_size, view_size, view_size, 3)
    view1 = tf.random.stateless_uniform(shape, seed=(1, 2))
    view2 = tf.random.stateless_uniform(shape, seed=(3, 4))
    step = forward_backward_step(
        trainer.encoder,
        trainer.projection_head,
        temperature=trainer.config.temperature,
        concatenate_views=True,
    )
    for _ in range(2):
        step(view1, view2).numpy()
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step(view1, view2).numpy()
        durations.append(time.perf_counter() - start)
    return batch_size / statistics.median(durations)


def measure(
    encoder: str, precision: str, batch_size: int, images: int, epochs: int, steps: int
) -> tuple[float, float]:
    """(bare step, training loop) source images per second for one configuration."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=images)
    with tempfile.TemporaryDirectory() as out_dir:
        config = preset(
            "cpu",
            encoder=encoder,
            precision=precision,
            batch_size=batch_size,
            epochs=epochs,
            checkpoint_every=0,
            verbose=0,
            out_dir=out_dir,
        )
        trainer = train.Pretrainer(config, num_examples=images, num_classes=10)
        rows = trainer.fit(pixels, labels)
        bare = bare_images_per_second(trainer, steps)
    # Epoch 1 includes tracing and the end of epoch 1 the first (eager) call of the quality
    # metrics: one-time costs. Later epochs show the steady state of a long run.
    return bare, statistics.mean(row["images_per_second"] for row in rows[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="small_cnn")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument(
        "--batch_size",
        type=int,
        default=preset("cpu").batch_size,
        help="Images per step (default: the cpu preset's).",
    )
    parser.add_argument("--images", type=int, default=12800, help="Images per epoch.")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="Timed bare steps.")
    args = parser.parse_args()

    print(
        f"{runtime.cpu_name()}; {args.encoder}, batch {args.batch_size}, 32x32 images, "
        f"{preset('cpu').view_size}x{preset('cpu').view_size} views, "
        f"{os.cpu_count()} CPU threads, "
        f"TF {tf.__version__}; loop: {args.epochs} epochs of {args.images} images.\n"
    )
    print("| precision | bare step images/s | training loop images/s | loop / bare | load |")
    print("| --- | ---: | ---: | ---: | ---: |")
    results = {}
    for precision in args.precisions:
        bare, loop = measure(
            args.encoder, precision, args.batch_size, args.images, args.epochs, args.steps
        )
        results[precision] = loop
        print(
            f"| {precision} | {bare:.0f} | {loop:.0f} | {loop / bare:.2f} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    if "float32" in results and "mixed_bfloat16" in results:
        ratio = results["mixed_bfloat16"] / results["float32"]
        print(f"\nTraining loop, mixed_bfloat16 / float32: {ratio:.2f}x")


if __name__ == "__main__":
    main()
