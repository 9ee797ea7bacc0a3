"""Label efficiency on CIFAR-10: SimCLR features against training from scratch, 1 to all labels.

For 1, 2, 5, 10, 20, 50 and 100 labelled images per class (seeded class-balanced draws, the
same draws for every method) and for all 50,000 labels, measures test accuracy on the 10,000
CIFAR-10 test images of:

* the linear probe on the frozen pretrained encoder (``--encoder``, default the bundled
  ``pretrained/cifar10-cpu``) and on the same architecture with random weights;
* the pretrained encoder fine-tuned end to end, and the same network trained from scratch
  (``simclr_tf.evaluate.finetune.train_classifier``: SGD, cosine decay, crop and flip, at
  least ``--min_steps`` steps per draw).

    SIMCLR_DATA_DIR=../shared/datasets/cifar10 .venv/bin/python benchmarks/label_efficiency.py \\
        --out benchmarks/results/<machine>/label_efficiency.json

Writes the curves (mean and standard error over the draws) as JSON and a figure
(``--figure``, default beside the JSON). ``--quick N`` checks the script on N training images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from simclr_tf import data, pretrained, runtime, viz  # noqa: E402
from simclr_tf.evaluate import (  # noqa: E402
    ALL_LABELS,
    LABELS_PER_CLASS,
    FeatureEncoder,
    FinetuneOptions,
    extract_features,
    keras_copy,
    probe_curve,
    training_curve,
)


def _table(curves: dict[str, dict]) -> str:
    counts = [str(n) for n in (*LABELS_PER_CLASS, ALL_LABELS)]
    header = "| Method | " + " | ".join("all" if c == "0" else c for c in counts) + " |"
    lines = [header, "|---" * (len(counts) + 1) + "|"]
    for name, curve in curves.items():
        cells = []
        for count in counts:
            point = curve["points"].get(count)
            cells.append(
                "" if point is None else f"{100 * point['mean']:.1f} ± {100 * point['stderr']:.1f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default=None, help="Export folder or .keras file.")
    parser.add_argument("--data_dir", default=None, help="CIFAR-10 folder (or SIMCLR_DATA_DIR).")
    parser.add_argument("--probe_draws", type=int, default=5)
    parser.add_argument("--train_draws", type=int, default=3)
    parser.add_argument("--min_steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/label_efficiency.json")
    parser.add_argument("--figure", default=None, help="PNG (default: beside --out).")
    parser.add_argument("--quick", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = data.load_cifar10(args.data_dir)
    if args.quick:
        x_train, y_train = x_train[: args.quick], y_train[: args.quick]
        x_test, y_test = x_test[: args.quick // 5], y_test[: args.quick // 5]
    counts = [n for n in LABELS_PER_CLASS if n * 10 <= len(y_train) // 2]

    if args.encoder is None or args.encoder.endswith(".keras"):
        import keras

        model = (
            pretrained.load_encoder()
            if args.encoder is None
            else keras.models.load_model(args.encoder, compile=False)
        )
        encoder = FeatureEncoder(model)
    else:
        encoder = FeatureEncoder(args.encoder)
    random_encoder = FeatureEncoder(keras_copy(encoder, pretrained=False, seed=args.seed))
    features = {}
    for name, model in (("pretrained", encoder), ("random", random_encoder)):
        features[name] = (extract_features(model, x_train), extract_features(model, x_test))
    print(f"features extracted in {time.perf_counter() - start:.0f} s", flush=True)

    curves: dict[str, dict] = {}
    probe_counts = (*counts, ALL_LABELS)
    for name, label in (("pretrained", "SimCLR, linear probe"), ("random", "Random, linear probe")):
        train_features, test_features = features[name]
        curves[label] = probe_curve(
            train_features,
            y_train,
            test_features,
            y_test,
            probe_counts,
            args.probe_draws,
            args.seed,
        )
        print(label, "done", f"{time.perf_counter() - start:.0f} s", flush=True)
    options = FinetuneOptions()
    for label, copy_weights in (("SimCLR, fine-tuned", True), ("Supervised from scratch", False)):
        curves[label] = training_curve(
            lambda seed, copy_weights=copy_weights: keras_copy(encoder, copy_weights, seed),
            x_train,
            y_train,
            x_test,
            y_test,
            counts,
            args.train_draws,
            args.seed,
            options,
            args.min_steps,
        )
        print(label, "done", f"{time.perf_counter() - start:.0f} s", flush=True)

    document = {
        "encoder": args.encoder or f"pretrained/{pretrained.DEFAULT_NAME}",
        "command": " ".join([sys.executable, *sys.argv]),
        "date": time.strftime("%Y-%m-%d"),
        "cpu": runtime.cpu_name(),
        "cpu_count": os.cpu_count(),
        "quick_check": bool(args.quick),
        "num_train": len(y_train),
        "num_test": len(y_test),
        "seconds": time.perf_counter() - start,
        "curves": curves,
        "table": _table(curves),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, default=float)
    figure = args.figure or os.path.splitext(args.out)[0] + ".png"
    viz.plot_label_efficiency(curves, figure, title="CIFAR-10: accuracy against labels per class")
    print(document["table"])
    print(f"wrote {args.out} and {figure}")
    return document


if __name__ == "__main__":
    main()
