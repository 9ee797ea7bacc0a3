"""SimCLR against the pretext tasks it displaced, at one compute budget each, on CIFAR-10.

Trains, in turns, SimCLR (``simclr_tf.pretrainer.Pretrainer``), rotation prediction, inpainting
(``simclr_tf.pretext``) and the supervised reference on the 50,000 CIFAR-10 training images,
each for ``--minutes`` of CPU (or wall-clock) time, all with the same encoder, initial
weights, data order, optimizer, schedule and precision (``--preset``, default ``cpu``); then
evaluates every encoder's representation ``h`` on the 10,000 test images with the same
protocols (linear probe, 200-NN). ``random`` evaluates the untrained encoder.

    SIMCLR_DATA_DIR=../shared/datasets/cifar10 .venv/bin/python benchmarks/pretext_comparison.py \\
        --minutes 30 --seeds 0 1 --out benchmarks/results/<machine>/pretext-30min.json

The budget of a method covers calibrating and tracing its step and training (as in
``cifar10_budget.py``, whose planning this script reuses); loading the data set once before
all methods, and the evaluation after each, are not counted. By default (``--clock cpu``) the
budget is CPU time of this process, every thread included, so that other work on a shared
machine slows the run down without shortening its budget (on a quiet 2-core machine a
wall-clock minute holds up to two CPU minutes; each result's ``cpu_seconds`` and
``wall_seconds`` give the ratio). ``--clock wall`` budgets wall-clock time as
``cifar10_budget.py`` does and needs a quiet machine. Methods run one after another within
a seed (in the order given), so a drift of the machine's speed shows up as a trend over the
turns rather than as a bias against one method. The results file is rewritten after every
method, so an interrupted run keeps what it finished.

``--merge FILE`` adds the results of earlier runs of this script (same budget, clock, preset,
overrides and data) to this run's summary, so that seeds run on different occasions are
summarised together; a method and seed already in a merged file is refused.

Standard errors: over seeds when there are several; with one seed, the binomial standard
error of the test accuracy (``sqrt(p (1 - p) / 10000)``), which covers the test set's
sampling only, not the run-to-run spread of training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from cifar10_budget import (  # noqa: E402
    CLOCKS,
    fit_until,
    parse_overrides,
    planned_steps,
    seconds_per_step,
)

from simclr_tf import data, pretext, runtime  # noqa: E402
from simclr_tf.config import preset  # noqa: E402
from simclr_tf.data.sources import ArrayImages  # noqa: E402
from simclr_tf.evaluate import evaluate_encoder  # noqa: E402
from simclr_tf.models import encoder_from_config, initialize_weights  # noqa: E402
from simclr_tf.pretrainer import Pretrainer  # noqa: E402

METHODS = ("simclr", "rotation", "inpainting", "supervised", "random")
LABELS = {
    "simclr": "SimCLR",
    "rotation": "Rotation prediction (RotNet)",
    "inpainting": "Inpainting (context encoder)",
    "supervised": "Supervised (all labels)",
    "random": "Random weights (no training)",
}


def trainer_factory(method: str):
    """``(config, num_examples, num_classes) -> trainer`` of a method."""
    if method == "simclr":
        return Pretrainer
    return lambda config, count, classes: pretext.PretextTrainer(
        config, pretext.task(method), count, classes
    )


def train_method(method, config, x_train, y_train, budget, clock_name="cpu"):
    """Trains one method for ``budget`` seconds of ``clock_name`` time from now; returns
    (encoder, facts)."""
    clock = CLOCKS[clock_name]
    start, wall_start = clock(), time.perf_counter()
    if method == "random":
        return initialize_weights(encoder_from_config(config), config.seed), {"steps": 0}
    make = trainer_factory(method)
    per_step, tracing = seconds_per_step(config, x_train, y_train, make, clock)
    steps = planned_steps(config, per_step, tracing, len(x_train), budget - (clock() - start))
    steps_per_epoch = len(x_train) // config.batch_size
    with tempfile.TemporaryDirectory() as out_dir:
        run_config = config.replace(
            steps=steps,
            epochs=math.ceil(steps / steps_per_epoch),
            out_dir=os.path.join(out_dir, "run"),
            verbose=2,
            checkpoint_every=0,
        )
        print(
            f"[{method}] calibration {per_step:.3f} s/step, tracing {tracing:.1f} s: "
            f"{steps} steps planned ({steps / steps_per_epoch:.2f} epochs)",
            flush=True,
        )
        trainer = make(run_config, len(x_train), int(y_train.max()) + 1)
        train_start = time.perf_counter()
        rows = fit_until(trainer, ArrayImages(x_train, y_train), start + budget, clock)
        done = int(trainer.step.numpy())
    wall = time.perf_counter() - wall_start
    return trainer.encoder, {
        "steps": done,
        "planned_steps": steps,
        "epochs": done / steps_per_epoch,
        "wall_seconds": wall,
        f"{clock_name}_seconds": clock() - start,
        "train_loop_seconds": time.perf_counter() - train_start,
        "calibration_seconds_per_step": per_step,
        "final_loss": rows[-1]["loss"] if rows else None,
        "stopped_at_budget": done < steps,
    }


def earlier_results(paths: list[str], expected: dict) -> list[dict]:
    """The result rows of earlier results files, each checked to be comparable with this run.

    Args:
        paths: results JSON files written by this script.
        expected: this run's value of every field that must match (budget, clock, preset,
            overrides, data sizes, quick check), by the results file's key.

    Returns:
        Their ``results`` rows, in file order.

    Raises:
        ValueError: naming the file and the field when a file cannot be read or differs.
    """
    rows: list[dict] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
            found = {key: document[key] for key in expected}
            results = list(document["results"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"--merge {path}: not a results file of this script ({type(exc).__name__}: {exc})."
            ) from exc
        for key, value in expected.items():
            if found[key] != value:
                raise ValueError(
                    f"--merge {path}: its {key} is {found[key]!r} but this run's is "
                    f"{value!r}; only runs with the same budget, clock, preset, "
                    "overrides and data are summarised together."
                )
        rows.extend(results)
    return rows


def summarize(results: list[dict], num_test: int) -> dict[str, dict]:
    """Mean linear / kNN top-1 per method, with standard errors (see the module docstring)."""
    summary = {}
    for method in dict.fromkeys(r["method"] for r in results):
        linear = np.array([r["linear_top1"] for r in results if r["method"] == method])
        knn = np.array([r["knn_top1"] for r in results if r["method"] == method])
        if len(linear) > 1:
            stderr, kind = float(linear.std(ddof=1) / math.sqrt(len(linear))), "over seeds"
        else:
            stderr, kind = float(math.sqrt(linear[0] * (1 - linear[0]) / num_test)), "binomial"
        summary[method] = {
            "linear_mean": float(linear.mean()),
            "linear_stderr": stderr,
            "stderr_kind": kind,
            "knn_mean": float(knn.mean()),
            "seeds": [r["seed"] for r in results if r["method"] == method],
        }
    if "simclr" in summary:
        for entry in summary.values():
            entry["simclr_margin"] = summary["simclr"]["linear_mean"] - entry["linear_mean"]
    return summary


def markdown_table(summary: dict[str, dict], results: list[dict]) -> str:
    lines = [
        "| Method | Linear probe | 200-NN | Epochs | SimCLR ahead by |",
        "|---|---|---|---|---|",
    ]
    for method, entry in summary.items():
        epochs = np.mean([r.get("epochs", 0.0) for r in results if r["method"] == method])
        margin = entry.get("simclr_margin")
        ahead = "" if margin is None or method == "simclr" else f"{100 * margin:.1f}"
        lines.append(
            f"| {LABELS[method]} | {100 * entry['linear_mean']:.1f} ± "
            f"{100 * entry['linear_stderr']:.1f} % | {100 * entry['knn_mean']:.1f} % | "
            f"{epochs:.1f} | {ahead} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, required=True, help="Budget of each method, in --clock minutes."
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="cpu",
        help="cpu: the budget is CPU time of this process (all its threads), so other work on "
        "the machine does not shift it; wall: wall-clock time (needs a quiet machine).",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="FILE",
        help="Results files of earlier runs (same --minutes, --clock, --preset, --set and data) "
        "whose seeds join this run's summary.",
    )
    parser.add_argument("--preset", default="cpu", help="Config preset (default: cpu).")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--data_dir", default=None, help="CIFAR-10 folder (or SIMCLR_DATA_DIR).")
    parser.add_argument(
        "--out", default=None, help="Results JSON (default runs/pretext-<M>min.json)."
    )
    parser.add_argument(
        "--quick",
        type=int,
        default=0,
        metavar="N",
        help="Check the script on the first N training and N/5 test images (not a result).",
    )
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be > 0; received --minutes={args.minutes}.")
    out = args.out or f"runs/pretext-{args.minutes:g}min.json"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    (x_train, y_train), (x_test, y_test) = data.load_cifar10(args.data_dir)
    if args.quick:
        x_train, y_train = x_train[: args.quick], y_train[: args.quick]
        x_test, y_test = x_test[: args.quick // 5], y_test[: args.quick // 5]
    expected = {
        "minutes": args.minutes,
        "clock": args.clock,
        "quick_check": bool(args.quick),
        "preset": args.preset,
        "overrides": args.set,
        "num_train": len(y_train),
        "num_test": len(y_test),
    }
    try:
        results = earlier_results(args.merge, expected)
    except ValueError as exc:
        parser.error(str(exc))
    planned = {(method, seed) for method in args.methods for seed in args.seeds}
    twice = sorted(planned & {(r["method"], r["seed"]) for r in results})
    if twice:
        parser.error(
            f"--merge already holds {', '.join(f'{m} seed {s}' for m, s in twice)}; drop those "
            "from --methods or --seeds, or the file from --merge."
        )
    print(runtime.device_summary(), flush=True)
    document: dict = {}
    for seed in args.seeds:
        for method in args.methods:
            config = preset(args.preset, dataset="cifar10", seed=seed, **parse_overrides(args.set))
            encoder, facts = train_method(
                method, config, x_train, y_train, 60.0 * args.minutes, args.clock
            )
            report = evaluate_encoder(
                encoder,
                dataset="cifar10",
                protocols=("linear", "knn"),
                data=((x_train, y_train), (x_test, y_test)),
                command=" ".join([sys.executable, *sys.argv]),
                seed=seed,
            )
            result = {
                "method": method,
                "seed": seed,
                **facts,
                "linear_top1": report["protocols"]["linear"]["top1"],
                "linear_c": report["protocols"]["linear"].get("c"),
                "knn_top1": report["protocols"]["knn"]["top1"],
                "load_average": os.getloadavg(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            results.append(result)
            print(
                f"RESULT method={method} seed={seed} linear_top1={result['linear_top1']:.4f} "
                f"knn_top1={result['knn_top1']:.4f} epochs={facts.get('epochs', 0):.2f}",
                flush=True,
            )
            summary = summarize(results, len(y_test))
            document = {
                **expected,
                "merged_from": args.merge,
                "config": config.to_dict(),
                "command": " ".join([sys.executable, *sys.argv]),
                "cpu": runtime.cpu_name(),
                "cpu_count": os.cpu_count(),
                "tensorflow": tf.__version__,
                "results": results,
                "summary": summary,
                "table": markdown_table(summary, results),
            }
            with open(out + ".tmp", "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, default=float)
            os.replace(out + ".tmp", out)
    print(document.get("table", ""))
    return document


if __name__ == "__main__":
    main()
