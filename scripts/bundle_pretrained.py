"""Puts a finished main-job run into ``pretrained/<name>/`` as the repository's pretrained encoder.

    .venv/bin/python scripts/bundle_pretrained.py --run runs/pretrained-cifar10 \\
        --command "python -m simclr_tf.pipeline --preset=cpu --dataset=cifar10 ..."

Copies the run's Keras encoder, ``config.json`` and ``metrics.csv``, draws its training
curves, takes the CIFAR-10 test results the main job measured (``evaluation/results.json``),
evaluates the encoder once more on the bundled sample's split with the protocols of
``make train`` (so that the main job can compare like with like), and writes
``results.json`` and a ``README.md`` that say what it is, how it was made and what it
measured. Refuses an encoder file over ``--max_mb`` (default 15).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from simclr_tf import evaluate, runtime, viz  # noqa: E402
from simclr_tf.pretrained import ENCODER_FILE, PRETRAINED_DIR, RESULTS_FILE  # noqa: E402
from simclr_tf.runs import read_metrics  # noqa: E402


def _protocol_numbers(results: dict) -> dict:
    protocols = results["protocols"]
    numbers = {
        "linear": protocols["linear"]["top1"],
        "knn": protocols["knn"]["top1"],
        "num_train": results["num_train"],
        "num_test": results["num_test"],
    }
    if "retrieval" in protocols:
        numbers["retrieval"] = {
            k: v for k, v in protocols["retrieval"].items() if isinstance(v, int | float)
        }
    if "random_init" in protocols:
        numbers["random_init"] = {
            k: protocols["random_init"][k]["top1"]
            for k in ("linear", "knn")
            if isinstance(protocols["random_init"].get(k), dict)
        }
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="Run directory of the main job.")
    parser.add_argument("--name", default="cifar10-cpu")
    parser.add_argument("--command", required=True, help="The command that made the run.")
    parser.add_argument("--train_minutes", type=float, default=None)
    parser.add_argument("--max_mb", type=float, default=15.0)
    args = parser.parse_args()

    source = os.path.join(args.run, "encoder", ENCODER_FILE)
    size_mb = os.path.getsize(source) / 2**20
    if size_mb > args.max_mb:
        raise SystemExit(f"{source} is {size_mb:.1f} MB, over --max_mb={args.max_mb}.")
    target = PRETRAINED_DIR / args.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target / ENCODER_FILE)
    for name in ("config.json", "metrics.csv"):
        shutil.copyfile(os.path.join(args.run, name), target / name)
    metrics = read_metrics(os.path.join(args.run, "metrics.csv"))
    viz.plot_training_curves(metrics, target / "training_curves.png", title=args.name)
    train_minutes = args.train_minutes or float(metrics["seconds"].sum()) / 60.0

    with open(os.path.join(args.run, "evaluation", "results.json"), encoding="utf-8") as handle:
        cifar10 = _protocol_numbers(json.load(handle))
    sample_data = evaluate.load_evaluation_data("sample", None, 32, 0)
    sample = _protocol_numbers(
        evaluate.evaluate_encoder(
            str(os.path.join(args.run, "encoder")),
            dataset="sample",
            protocols=("linear", "knn"),
            data=sample_data,
            seed=0,
        )
    )
    with open(target / "config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    # The run's own paths mean nothing on another machine: record those of the command.
    for flag in ("data_dir", "out_dir"):
        given = re.search(rf"--{flag}[= ](\S+)", args.command)
        config[flag] = given.group(1) if given else None
    with open(target / "config.json", "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    steps = int(metrics["step"][-1])
    epochs = steps / (50_000 // config["batch_size"])
    summary = f"{steps:,} steps ({epochs:.1f} epochs) on 50,000 CIFAR-10 images"
    document = {
        "summary": summary,
        "command": args.command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{runtime.cpu_name()}, {os.cpu_count()} cores, {platform.machine()}",
        "train_minutes": round(train_minutes, 1),
        "steps": steps,
        "epochs": round(epochs, 2),
        "encoder_mb": round(size_mb, 2),
        "cifar10": cifar10,
        "sample": sample,
    }
    with open(target / RESULTS_FILE, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    random_linear = cifar10.get("random_init", {}).get("linear", float("nan"))
    rows = [
        f"| CIFAR-10 test (10,000 images; probe on 50,000) | {100 * cifar10['linear']:.1f} % "
        f"| {100 * cifar10['knn']:.1f} % | {100 * random_linear:.1f} % |",
        f"| Bundled sample's split (what `make train` measures) | {100 * sample['linear']:.1f} % "
        f"| {100 * sample['knn']:.1f} % | |",
    ]
    table = "\n".join(rows)
    readme = f"""# Pretrained encoder: `{args.name}`

A SimCLR encoder trained with this repository's `cpu` preset: {summary},
in {train_minutes:.0f} minutes of training on {document["machine"]} ({document["date"]}).

    encoder = simclr_tf.pretrained.load_encoder()   # float [B, 32, 32, 3] in [0, 1] -> h [B, 1024]

Made by (then bundled with `scripts/bundle_pretrained.py`):

    {args.command}

| Evaluation (frozen `h`) | Linear probe | 200-NN | Random weights, linear |
|---|---|---|---|
{table}

Files: `encoder.keras` ({size_mb:.1f} MB, Keras 3), `config.json` (the run's configuration),
`metrics.csv` and `training_curves.png` (one row per epoch), `results.json` (everything above).
"""
    (target / "README.md").write_text(readme, encoding="utf-8")
    print(readme)


if __name__ == "__main__":
    main()
