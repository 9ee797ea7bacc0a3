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
   and writes the TensorBoard Embedding Projector files;
5. prints a summary with every path.

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

import numpy as np

from simclr_tf import train
from simclr_tf.config import SimCLRConfig

DEFAULT_PROTOCOLS = ("linear", "knn", "random_init", "quality")


def run_main_job(
    config: SimCLRConfig,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    command: str | None = None,
) -> dict[str, Any]:
    """Pretrains (or resumes), evaluates and plots; returns the evaluation results.

    Args:
        config: the pretraining configuration; ``resume`` is forced on so that finished or
            interrupted work in ``config.out_dir`` is continued rather than refused.
        protocols: evaluation protocols (see :mod:`simclr_tf.evaluate`).
        command: the command line to record with the results.

    Returns:
        The results dict of :func:`simclr_tf.evaluate.evaluate_encoder`, plus ``"paths"`` (the
        files written) and ``"seconds"`` (wall time of each stage).
    """
    from simclr_tf import evaluate

    config = config.replace(resume=True).validate()
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    result = train.pretrain(config)
    seconds["pretrain"] = time.perf_counter() - start

    start = time.perf_counter()
    data = evaluate.load_evaluation_data(config.dataset, config.data_dir, None, config.seed)
    results = evaluate.evaluate_encoder(
        result.encoder_path,
        dataset=config.dataset,
        protocols=protocols,
        data=data,
        out_dir=os.path.join(config.out_dir, "evaluation"),
        command=command,
        seed=config.seed,
        log=print if config.verbose else None,
    )
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    paths = draw_plots(config, result.encoder_path, data)
    seconds["plots"] = time.perf_counter() - start
    paths.update(
        run_dir=config.out_dir,
        encoder=result.encoder_path,
        results=os.path.join(config.out_dir, "evaluation", "results.md"),
        metrics=os.path.join(config.out_dir, "metrics.csv"),
        tensorboard=os.path.join(config.out_dir, "logs"),
    )
    results["paths"] = paths
    results["seconds"] = seconds
    return results


def draw_plots(config: SimCLRConfig, encoder_path: str, data: Any) -> dict[str, str]:
    """Training curves, t-SNE, nearest neighbours and projector files for a finished run."""
    import matplotlib.pyplot as plt

    from simclr_tf import viz
    from simclr_tf.data import CIFAR10_CLASSES
    from simclr_tf.evaluate import extract_features

    plots = os.path.join(config.out_dir, "plots")
    os.makedirs(plots, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = data
    class_names = list(CIFAR10_CLASSES) if config.dataset != "folder" else None
    train_features = extract_features(encoder_path, x_train)
    test_features = extract_features(encoder_path, x_test)
    paths = {
        "training_curves": os.path.join(plots, "training_curves.png"),
        "neighbours": os.path.join(plots, "nearest_neighbours.png"),
    }
    viz.plot_training_curves(os.path.join(config.out_dir, "metrics.csv"), paths["training_curves"])
    # Queries from the test split, neighbours from the training split: what the encoder
    # retrieves for images it never saw.
    queries = np.random.default_rng(config.seed).choice(len(x_test), size=8, replace=False)
    viz.plot_retrieval_grid(
        x_test[queries],
        test_features[queries],
        x_train,
        train_features,
        paths["neighbours"],
        query_labels=None if y_test is None else y_test[queries],
        gallery_labels=y_train,
        class_names=class_names,
    )
    if y_test is not None:
        paths["tsne"] = os.path.join(plots, "tsne.png")
        viz.plot_tsne(test_features, y_test, paths["tsne"], class_names, seed=config.seed)
    paths["projector"] = viz.export_projector(
        test_features,
        os.path.join(config.out_dir, "logs"),
        labels=y_test,
        images=x_test,
        class_names=class_names,
        seed=config.seed,
    )
    plt.close("all")
    return {name: str(path) for name, path in paths.items()}


def format_summary(results: dict[str, Any]) -> str:
    """The closing summary of the main job: headline numbers and where everything is."""
    from simclr_tf.evaluate import format_results_table

    seconds = results["seconds"]
    lines = [
        "",
        format_results_table(results),
        "",
        "Time: "
        + ", ".join(f"{stage} {value / 60:.1f} min" for stage, value in seconds.items())
        + f" (total {sum(seconds.values()) / 60:.1f} min)",
        "",
        "Files:",
    ]
    width = max(len(name) for name in results["paths"])
    lines += [f"  {name:<{width}}  {path}" for name, path in results["paths"].items()]
    lines.append(
        f"\nBrowse the logs and the embedding projector: tensorboard --logdir "
        f"{results['paths']['tensorboard']}"
    )
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
    protocols = [name.strip() for name in parser.parse_args(args).protocols.split(",")]
    command = shlex.join(["python", "-m", "simclr_tf.pipeline", *args])
    try:
        results = run_main_job(config, protocols, command=command)
    except (FileExistsError, FileNotFoundError, ValueError, train.TrainingDivergedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
