"""``python -m simclr_tf.pretext``: train a pretext-task baseline and export its encoder.

Takes SimCLR's flags (the same presets, data and optimisation) plus ``--task``, trains on one
device, and writes into ``--out_dir``: ``config.json`` (with the task), ``metrics.csv`` (one
row per epoch) and ``encoder/`` (the export :func:`simclr_tf.export.export_encoder` writes,
which ``python -m simclr_tf.evaluate --encoder`` reads). A baseline run keeps no checkpoints,
so it cannot be resumed: an interrupted or failed run removes what it wrote.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Sequence

from simclr_tf.cli import run_command
from simclr_tf.config import SimCLRConfig, build_parser, config_from_args
from simclr_tf.data.sources import training_images
from simclr_tf.export import export_encoder
from simclr_tf.pretext import TASKS, PretextTrainer, task


def _parser():
    parser = build_parser(
        prog="python -m simclr_tf.pretext",
        description="Train a pretext-task baseline (rotation, inpainting) or the supervised "
        "reference with SimCLR's encoder, data and recipe, and export the encoder.",
    )
    parser.add_argument(
        "--task", required=True, choices=tuple(TASKS), help="The objective to train with."
    )
    return parser


def _check_out_dir(path: str) -> None:
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(
            f"out_dir={path!r} exists and is not an empty folder; a pretext run cannot resume "
            "or share a folder: pass a new --out_dir or remove the old one."
        )


def _write_metrics(path: str, rows: list[dict[str, float]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


def train_baseline(config: SimCLRConfig, task_name: str) -> str:
    """Trains ``task_name`` as ``config`` says and exports the encoder; returns its folder.

    Raises:
        FileExistsError: if ``config.out_dir`` exists and is not empty.
        ValueError: for a bad task name or a configuration the task cannot train on.
    """
    objective = task(task_name)
    _check_out_dir(config.out_dir)
    source = training_images(
        config.dataset, config.data_dir, config.image_size, config.max_image_pixels or None
    )
    num_classes = source.num_classes or 0
    if objective.needs_labels and num_classes < 2:
        raise ValueError(
            f"--task={task_name} trains on the class labels, and {config.dataset!r} has none: "
            "use a labelled data set or a pretext task."
        )
    trainer = PretextTrainer(config, objective, source.num_examples, num_classes)
    created = not os.path.exists(config.out_dir)
    try:
        os.makedirs(config.out_dir, exist_ok=True)
        rows = trainer.fit(source)
        with open(os.path.join(config.out_dir, "config.json"), "w", encoding="utf-8") as handle:
            json.dump({**config.to_dict(), "pretext_task": task_name}, handle, indent=2)
        _write_metrics(os.path.join(config.out_dir, "metrics.csv"), rows)
        return export_encoder(
            trainer.encoder,
            os.path.join(config.out_dir, "encoder"),
            config.image_size,
            metadata={"config": config.to_dict(), "pretext_task": task_name},
        )
    except BaseException:
        # Nothing half-written stays behind: the run cannot be resumed anyway.
        if created:
            shutil.rmtree(config.out_dir, ignore_errors=True)
        else:
            for name in os.listdir(config.out_dir):
                target = os.path.join(config.out_dir, name)
                shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for a user error)."""
    parser = _parser()
    config = config_from_args(argv, parser)
    task_name = parser.parse_args(argv).task

    def body() -> int:
        path = train_baseline(config, task_name)
        print(
            f"Encoder exported to {path}; evaluate it with: python -m simclr_tf.evaluate "
            f"--encoder {path}"
        )
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
