"""What running several optimizer steps per call of the compiled function saves.

``Pretrainer.train_step`` runs one step per call: a Python round trip, device-to-host copies of
the metrics (``float()``) and, in ``fit``, ``step.numpy()`` and a ``steps.csv`` row, every
step. ``Pretrainer.train_steps(iterator, k)`` loops k steps inside one ``tf.function`` and
brings the k rows of metrics back in one copy. This script times, on the same model and the
same stream of batches, in turns (so that every setting sees the same load):

* ``train_step``: what ``fit`` does today, one call per step, ``step.numpy()`` and a CSV row;
* ``train_steps k``: one call per k steps, then the k CSV rows.

It prints source images per second (median over ``--rounds`` turns of ``--steps`` steps each,
after a warm-up turn per setting that includes tracing).

    .venv/bin/python benchmarks/steps_per_execution.py
    .venv/bin/python benchmarks/steps_per_execution.py --ks 1 8 --rounds 5 --steps 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf import runtime, train  # noqa: E402
from simclr_tf.config import preset  # noqa: E402
from simclr_tf.data.sources import ArrayImages  # noqa: E402
from simclr_tf.runs import RunDirectory  # noqa: E402


def endless_batches(trainer: train.Pretrainer, images: np.ndarray) -> object:
    """An iterator over the distributed batches of epoch 0, repeated forever."""
    source = ArrayImages(images)
    dataset = trainer.strategy.distribute_datasets_from_function(
        lambda context: trainer.epoch_batches(source, 0, input_context=context).repeat()
    )
    return iter(dataset)


def run_turn(trainer, iterator, run: RunDirectory, k: int | None, steps: int) -> float:
    """Seconds for ``steps`` steps: ``train_step`` per step (k None) or ``train_steps`` by k."""
    start = time.perf_counter()
    done = 0
    while done < steps:
        if k is None:
            rows = [trainer.train_step(*next(iterator))]
        else:
            rows = trainer.train_steps(iterator, min(k, steps - done))
        first = int(trainer.step.numpy()) - len(rows) + 1
        for offset, metrics in enumerate(rows):
            run.append_step(first + offset, metrics)
        done += len(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32, help="Steps per timed turn.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed turns per setting.")
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.batch_size * 64, 32, 32, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as out_dir:
        config = preset(
            args.preset, dataset="cifar10", batch_size=args.batch_size, out_dir=out_dir, verbose=0
        )
        trainer = train.Pretrainer(config, num_examples=50_000, num_classes=None)
        iterator = endless_batches(trainer, images)
        run = RunDirectory(out_dir)
        settings = {"train_step": None, **{f"train_steps k={k}": k for k in args.ks}}
        for k in settings.values():  # warm-up: tracing, XLA compilation of the augmentation
            run_turn(trainer, iterator, run, k, max(2, k or 1))
        seconds = {name: [] for name in settings}
        for _ in range(args.rounds):
            for name, k in settings.items():
                seconds[name].append(run_turn(trainer, iterator, run, k, args.steps))
    print(
        f"{runtime.cpu_name()}; preset {args.preset}, batch {args.batch_size}, "
        f"{config.precision}, TF {tf.__version__}, Keras {keras.__version__}; median of "
        f"{args.rounds} turns of {args.steps} steps, load {os.getloadavg()[0]:.1f}.\n"
    )
    print("| setting | images/s | vs train_step |")
    print("| --- | ---: | ---: |")
    base = args.batch_size * args.steps / statistics.median(seconds["train_step"])
    for name, values in seconds.items():
        rate = args.batch_size * args.steps / statistics.median(values)
        print(f"| {name} | {rate:.0f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
