"""How good a representation does a fixed amount of wall-clock time buy on full CIFAR-10?

Pretrains on the 50,000 CIFAR-10 training images for ``--minutes`` of wall-clock time on this
machine (``--clock cpu``: of this process's CPU time, for a machine shared with other work),
then evaluates the encoder's representation ``h`` on the 10,000 test images with the project's
protocols (``simclr_tf.evaluate``): linear-probe top-1 (logistic regression on frozen,
standardised features, ``C`` chosen on a validation split of the training set) and weighted
kNN top-1 (k=200, T=0.1).

    SIMCLR_DATA_DIR=../shared/datasets/cifar10 .venv/bin/python benchmarks/cifar10_budget.py \\
        --minutes 30
    .venv/bin/python benchmarks/cifar10_budget.py --minutes 5 --set batch_size=128 --set lr=1e-3

How the budget is spent. The clock starts when the script starts, so loading the data, building
the models and tracing the training step all count. The learning-rate schedule (warm-up then
cosine decay to zero) needs its length in advance, so the script first times a few training
steps of a throwaway copy of the models, run through the training loop itself (data pipeline
and per-step logs included), then sizes the real run to end at the budget:
``steps = (budget left - tracing - epoch ends) / seconds per step``. Should the run still be
slower than estimated, it stops at the budget (after the step that crosses it) with the
learning rate not quite at zero; the output says so. Evaluation happens after the budget and
is not counted.

The recipe is ``--preset`` (default ``cpu``, the project's documented CPU recipe) with any
``--set field=value`` overrides, and the exact configuration is printed and saved with the
results in ``--out_dir`` (``budget.json``). Run it on a quiet machine: the throughput, hence the
number of epochs reached, drops with every other process on the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The budget's clocks: wall-clock seconds, or this process's CPU seconds (all cores summed),
# which other processes on the machine barely change.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
START = {name: clock() for name, clock in CLOCKS.items()}

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf import data, runtime  # noqa: E402
from simclr_tf.config import SimCLRConfig, preset  # noqa: E402
from simclr_tf.data.sources import ArrayImages  # noqa: E402
from simclr_tf.evaluate import evaluate_encoder  # noqa: E402
from simclr_tf.train import Pretrainer  # noqa: E402

# Steps timed to size the schedule, through the training loop itself: the median of
# CALIBRATION_STEPS after the first step (tracing) and CALIBRATION_WARMUP_STEPS more (the first
# steps after tracing run slower).
CALIBRATION_STEPS = 30
CALIBRATION_WARMUP_STEPS = 2
# Seconds an epoch end costs (checkpoint + quality metrics), and the one-time extra of the
# first epoch (first call of the quality metrics, first checkpoint), measured here.
EPOCH_END_SECONDS = 1.5
FIRST_EPOCH_SECONDS = 8.0
SAFETY = 0.98


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``["lr=1e-3", "encoder=small_cnn"]`` -> typed values of the config's fields."""
    fields = SimCLRConfig().to_dict()
    overrides: dict[str, object] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or name not in fields:
            raise ValueError(
                f"--set expects FIELD=VALUE with a config field; received {pair!r}. "
                f"Fields: {', '.join(fields)}."
            )
        default = fields[name]
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {name} expects true or false; received {text!r}.")
            overrides[name] = text.lower() in ("true", "1")
        elif isinstance(default, int):
            overrides[name] = int(text)
        elif isinstance(default, float):
            overrides[name] = float(text)
        else:
            overrides[name] = text
    return overrides


def seconds_per_step(
    config: SimCLRConfig,
    images: np.ndarray,
    labels: np.ndarray,
    make_trainer: Callable[..., Any] = Pretrainer,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple:
    """Times steps of a throwaway run through its ``fit``, so that the data pipeline and the
    per-step logging count as they will in the real run; returns (median s/step, seconds to
    the end of the first step, tracing included).

    ``make_trainer(config, num_examples, num_classes)`` builds the run (SimCLR's
    ``Pretrainer`` by default; the pretext comparison passes its own). ``clock`` measures
    the seconds (wall clock by default; ``time.process_time`` for CPU time).
    """
    count = 1 + CALIBRATION_WARMUP_STEPS + CALIBRATION_STEPS
    images, labels = images[: count * config.batch_size], labels[: count * config.batch_size]
    ticks: list[float] = []
    with tempfile.TemporaryDirectory() as out_dir:
        probe_config = config.replace(verbose=0, epochs=1, steps=0, out_dir=out_dir)
        probe = make_trainer(probe_config, len(images), int(labels.max()) + 1)
        start = clock()
        probe.fit(ArrayImages(images, labels), callbacks=[lambda *_: ticks.append(clock())])
    durations = np.diff(ticks)[CALIBRATION_WARMUP_STEPS:]
    return float(np.median(durations)), ticks[0] - start


def planned_steps(
    config: SimCLRConfig, per_step: float, tracing: float, num_examples: int, seconds_left: float
) -> int:
    """Steps that fill ``seconds_left`` after tracing and the epoch ends (with a margin)."""
    steps_per_epoch = num_examples // config.batch_size
    left = seconds_left - tracing
    epochs_estimate = left / (per_step * steps_per_epoch)
    left -= EPOCH_END_SECONDS * math.ceil(epochs_estimate) + FIRST_EPOCH_SECONDS
    return max(1, int(SAFETY * left / per_step))


def fit_until(
    trainer: Any,
    source: ArrayImages,
    deadline: float,
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, float]]:
    """``trainer.fit(source)``, stopped after the step at which ``clock()`` passes ``deadline``."""

    def stop_at_deadline(step: int, metrics: dict[str, float]) -> None:
        if clock() >= deadline:
            trainer.stop_training = True

    return trainer.fit(source, callbacks=[stop_at_deadline])


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="The budget.")
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="What --minutes counts: wall-clock time (default) or this process's CPU time, "
        "which other processes on the machine barely change.",
    )
    parser.add_argument("--preset", default="cpu", help="Config preset (default: cpu).")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="Config override."
    )
    parser.add_argument("--data_dir", default=None, help="CIFAR-10 folder (or SIMCLR_DATA_DIR).")
    parser.add_argument("--out_dir", default=None, help="Default: runs/budget-<minutes>min.")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        raise ValueError(f"--minutes must be > 0; received --minutes={args.minutes}.")
    budget = args.minutes * 60.0
    clock, start = CLOCKS[args.clock], START[args.clock]
    out_dir = args.out_dir or f"runs/budget-{args.minutes:g}min"
    if os.path.exists(out_dir):
        raise FileExistsError(f"{out_dir!r} exists; remove it or pass another --out_dir.")

    (x_train, y_train), (x_test, y_test) = data.load_cifar10(args.data_dir)
    config = preset(args.preset, dataset="cifar10", **parse_overrides(args.set))
    per_step, tracing = seconds_per_step(config, x_train, y_train, clock=clock)
    steps_per_epoch = len(x_train) // config.batch_size
    steps = planned_steps(config, per_step, tracing, len(x_train), budget - (clock() - start))
    config = config.replace(
        steps=steps,
        epochs=math.ceil(steps / steps_per_epoch),
        out_dir=os.path.join(out_dir, "run"),
        verbose=2,
        checkpoint_every=0,
    )
    print(runtime.device_summary())
    print(
        f"Calibration: {per_step:.3f} s/step ({config.batch_size / per_step:.0f} img/s), "
        f"tracing {tracing:.1f} s; planned {steps} steps = {steps / steps_per_epoch:.2f} epochs "
        f"in the {budget / 60:g}-minute {args.clock} budget ({clock() - start:.0f} s used so far)."
    )
    print("Config:", json.dumps(config.to_dict(), sort_keys=True), flush=True)

    pretrainer = Pretrainer(config, len(x_train), int(y_train.max()) + 1)
    train_start = time.perf_counter()
    rows = fit_until(pretrainer, ArrayImages(x_train, y_train), start + budget, clock=clock)
    wall = time.perf_counter() - START["wall"]
    used = clock() - start
    train_seconds = time.perf_counter() - train_start
    steps_done = int(pretrainer.step.numpy())
    print(
        f"Pretraining done: {steps_done}/{steps} steps, {steps_done / steps_per_epoch:.2f} epochs, "
        f"{wall / 60:.2f} min wall, {used / 60:.2f} min {args.clock} (budget {budget / 60:g})"
        + (" - stopped at the budget before the schedule ended" if steps_done < steps else ""),
        flush=True,
    )

    report = evaluate_encoder(
        pretrainer.encoder,
        dataset="cifar10",
        protocols=("linear", "knn"),
        data=((x_train, y_train), (x_test, y_test)),
        command=" ".join([sys.executable, *sys.argv]),
        seed=config.seed,
    )
    result = {
        "minutes": args.minutes,
        "clock": args.clock,
        f"{args.clock}_seconds_used": used,
        "wall_seconds_pretraining": wall,
        "train_loop_seconds": train_seconds,
        "steps": steps_done,
        "planned_steps": steps,
        "epochs": steps_done / steps_per_epoch,
        "images_per_second": steps_done * config.batch_size / train_seconds,
        "loop_images_per_second_last_epoch": rows[-1]["images_per_second"] if rows else None,
        "calibration_seconds_per_step": per_step,
        "linear_top1": report["protocols"]["linear"]["top1"],
        "knn_top1": report["protocols"]["knn"]["top1"],
        "linear_c": report["protocols"]["linear"].get("c"),
        "final_loss": rows[-1]["loss"] if rows else None,
        "load_average": os.getloadavg(),
        "tensorflow": tf.__version__,
        "cpu": runtime.cpu_name(),
        "cpu_count": os.cpu_count(),
        "config": config.to_dict(),
        "preset": args.preset,
        "overrides": args.set,
    }
    with open(os.path.join(out_dir, "budget.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, default=float)
    # The checkpoints are only needed to resume, which a budget run never does.
    shutil.rmtree(os.path.join(config.out_dir, "checkpoints"), ignore_errors=True)
    print(
        f"RESULT minutes={args.minutes:g} linear_top1={result['linear_top1']:.4f} "
        f"knn_top1={result['knn_top1']:.4f} epochs={result['epochs']:.2f} "
        f"img/s={result['images_per_second']:.0f} overrides={args.set}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
