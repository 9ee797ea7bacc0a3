"""The main job behind ``make train``: pretrain, export, evaluate, draw, summarise.

    python -m simclr_tf.pipeline --preset=cpu --dataset=sample --out_dir=runs/main

takes every flag of ``python -m simclr_tf.train`` and, in one go:

1. pretrains an encoder (or continues the run already in ``--out_dir``: completed work is
   reused, never thrown away; a different architecture in the same folder is refused);
2. exports it as a SavedModel (``RUN_DIR/encoder``);
3. evaluates the exported model on the data set's held-out test split: linear probe, weighted
   kNN, label-free quality, and the same architecture with random weights as the baseline the
   learned features must beat;
4. draws the training curves, a t-SNE of the test representations, a nearest-neighbour grid,
   and writes the TensorBoard Embedding Projector files (``RUN_DIR/plots``), from the features
   the evaluation extracted;
5. prints a summary with every path, and how the linear probe compares with the pretrained
   encoder in the repository (:mod:`simclr_tf.pretrained`) on the same evaluation.

``RUN_DIR/evaluation/results.md`` and ``results.json`` keep the numbers with the command that
produced them.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from simclr_tf import pretrained, train
from simclr_tf.cli import run_command
from simclr_tf.config import SimCLRConfig

DEFAULT_PROTOCOLS = ("linear", "knn", "retrieval", "random_init", "quality")


def run_main_job(
    config: SimCLRConfig,
    protocols: str | Sequence[str] = DEFAULT_PROTOCOLS,
    command: str | None = None,
) -> dict[str, Any]:
    """Pretrains (or resumes), evaluates and plots; returns the evaluation results.

    Args:
        config: the pretraining configuration; ``resume`` is forced on so that finished or
            interrupted work in ``config.out_dir`` is continued rather than refused.
        protocols: evaluation protocols (see :mod:`simclr_tf.evaluate`), a sequence of names
            or comma-separated text; checked before pretraining starts.
        command: the command line to record with the results.

    Returns:
        The results dict of :func:`simclr_tf.evaluate.evaluate_encoder`, plus ``"paths"`` (the
        files written) and ``"seconds"`` (wall time of each stage).

    Raises:
        ValueError: for an invalid config or protocol list, before pretraining starts.
    """
    from simclr_tf import evaluate

    protocols = evaluate.validate_protocols(protocols)
    config = config.replace(resume=True).validate()
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    result = train.pretrain(config)
    seconds["pretrain"] = time.perf_counter() - start

    start = time.perf_counter()
    data = evaluate.load_evaluation_data(
        config.dataset, config.data_dir, config.image_size, config.seed
    )
    results = evaluate.evaluate_encoder(
        result.encoder_path,
        dataset=config.dataset,
        protocols=protocols,
        data=data,
        out_dir=os.path.join(config.out_dir, "evaluation"),
        figures_dir=os.path.join(config.out_dir, "plots"),
        command=command,
        seed=config.seed,
        log=print if config.verbose else None,
    )
    seconds["evaluate"] = time.perf_counter() - start
    paths = dict(results.pop("figures"))
    paths.update(
        run_dir=config.out_dir,
        encoder=result.encoder_path,
        results=os.path.join(config.out_dir, "evaluation", "results.md"),
        metrics=os.path.join(config.out_dir, "metrics.csv"),
        tensorboard=os.path.join(config.out_dir, "logs"),
    )
    results["paths"] = paths
    results["seconds"] = seconds
    linear = results["protocols"].get("linear", {}).get("top1")
    results["pretrained_comparison"] = pretrained.comparison_line(
        config.dataset, config.image_size, linear
    )
    return results


def format_summary(results: dict[str, Any]) -> str:
    """The closing summary of the main job: headline numbers and where everything is."""
    from simclr_tf.evaluate import format_results_table

    seconds = results["seconds"]
    lines = [
        "",
        format_results_table(results),
        "",
        *([results["pretrained_comparison"], ""] if results.get("pretrained_comparison") else []),
        "Time: "
        + ", ".join(f"{stage} {value / 60:.1f} min" for stage, value in seconds.items())
        + f" (total {sum(seconds.values()) / 60:.1f} min)",
        "",
        "Files:",
    ]
    width = max(len(name) for name in results["paths"])
    lines += [f"  {name:<{width}}  {path}" for name, path in results["paths"].items()]
    lines.append(f"\nBrowse the logs: tensorboard --logdir {results['paths']['tensorboard']}")
    if "projector" in results["paths"]:
        projector = os.path.dirname(results["paths"]["projector"])
        lines.append(f"Browse the embedding projector: tensorboard --logdir {projector}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = train.build_parser()
    parser.prog = "python -m simclr_tf.pipeline"
    parser.description = (
        "The main job: pretrain (or continue the run in --out_dir), export the encoder, "
        "evaluate it against random weights, draw the plots and print a summary."
    )
    parser.add_argument(
        "--protocols",
        default=",".join(DEFAULT_PROTOCOLS),
        help="Comma-separated evaluation protocols (see python -m simclr_tf.evaluate --help).",
    )
    args = sys.argv[1:] if argv is None else list(argv)
    config = train.config_from_args(args, parser)
    protocols = parser.parse_args(args).protocols
    command = shlex.join(["python", "-m", "simclr_tf.pipeline", *args])

    def body() -> int:
        print(format_summary(run_main_job(config, protocols, command=command)))
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
