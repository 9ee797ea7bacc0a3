"""``python -m simclr_tf.evaluate``: evaluate an exported encoder, or a random one, from a shell.

    python -m simclr_tf.evaluate --encoder runs/simclr/encoder --dataset cifar10 \\
        --protocols linear,knn,quality --out_dir runs/simclr/evaluation
    python -m simclr_tf.evaluate --random_encoder small_cnn --dataset sample --figures

Every argument is checked before any work starts, and the encoder folder is opened before the
data is loaded. A mistake (a missing or damaged encoder, an unknown protocol, a value out of
range, unreadable data) is one message on stderr that says what was wrong and how to fix it, with
exit status 2 and nothing written; results are written only once every protocol has run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from simclr_tf.cli import run_command
from simclr_tf.config import DATASETS, ENCODERS
from simclr_tf.evaluate.evaluator import evaluate_encoder
from simclr_tf.evaluate.features import DEFAULT_BATCH_SIZE, FeatureEncoder
from simclr_tf.evaluate.finetune import FinetuneOptions
from simclr_tf.evaluate.knn import DEFAULT_K, DEFAULT_TEMPERATURE
from simclr_tf.evaluate.options import DEFAULT_LABEL_FRACTIONS, EvaluationOptions
from simclr_tf.evaluate.registry import DEFAULT_PROTOCOLS, PROTOCOLS, validate_protocols
from simclr_tf.evaluate.report import format_results_table

__all__ = ["UsageError", "build_parser", "main", "parse_fractions"]

PROG = "python -m simclr_tf.evaluate"


class UsageError(ValueError):
    """A command line that :mod:`argparse` refused (unknown flag, bad value, missing choice)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the usage and exit; main() reports it and returns 2 instead.
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m simclr_tf.evaluate``; it raises :class:`UsageError`."""
    parser = _Parser(
        prog=PROG,
        description="Evaluate a pretrained SimCLR encoder (linear probe, kNN, few-label "
        "fine-tuning, label-free quality) and write results.json and results.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--encoder", help="Exported encoder folder, e.g. RUN_DIR/encoder.")
    source.add_argument(
        "--random_encoder",
        metavar="NAME",
        choices=ENCODERS,
        help="Evaluate a randomly initialised encoder of this architecture instead "
        f"({', '.join(ENCODERS)}): the baseline without any training.",
    )
    parser.add_argument(
        "--image_size", type=int, default=32, help="Image side for --random_encoder."
    )
    parser.add_argument(
        "--representation_dim",
        type=int,
        default=0,
        help="Width of h for --random_encoder (0: the encoder's own; see the training flag).",
    )
    parser.add_argument("--dataset", default="sample", choices=DATASETS, help="Evaluation data.")
    parser.add_argument(
        "--data_dir",
        default=None,
        help="CIFAR-10 folder (default: SIMCLR_DATA_DIR) or the image folder for --dataset=folder.",
    )
    parser.add_argument(
        "--protocols",
        default=",".join(DEFAULT_PROTOCOLS),
        help=f"Comma-separated protocols among {', '.join(PROTOCOLS)}.",
    )
    parser.add_argument(
        "--out_dir",
        "--out",
        dest="out_dir",
        default=None,
        help="Folder for results.json and results.md (default: RUN_DIR/evaluation next to the "
        "encoder, or runs/evaluation-random-NAME). --out is the same flag.",
    )
    parser.add_argument(
        "--label_fractions",
        default=",".join(str(fraction) for fraction in DEFAULT_LABEL_FRACTIONS),
        help="Comma-separated label fractions in (0, 1] for finetune and random_init.",
    )
    parser.add_argument("--knn_k", type=int, default=DEFAULT_K, help="Neighbours of the kNN vote.")
    parser.add_argument(
        "--knn_temperature", type=float, default=DEFAULT_TEMPERATURE, help="kNN temperature."
    )
    parser.add_argument(
        "--finetune_epochs", type=int, default=FinetuneOptions.epochs, help="Fine-tuning epochs."
    )
    parser.add_argument(
        "--figures",
        action="store_true",
        help="Also write the embedding figures (t-SNE, retrieval grid, Embedding Projector, "
        "training curves) into OUT_DIR/figures.",
    )
    parser.add_argument(
        "--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="Images per forward pass."
    )
    parser.add_argument("--cache_dir", default=None, help="Folder to cache extracted features in.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random choice.")
    return parser


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.01,0.1"`` -> ``(0.01, 0.1)``; blanks between commas are skipped.

    Raises:
        ValueError: if a part is not a number.
    """
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            "label_fractions must be comma-separated numbers in (0, 1], e.g. 0.01,0.1; "
            f"received label_fractions={text!r}."
        ) from None


def _options(args: argparse.Namespace) -> EvaluationOptions:
    return EvaluationOptions(
        label_fractions=parse_fractions(args.label_fractions),
        knn_k=args.knn_k,
        knn_temperature=args.knn_temperature,
        finetune_options=FinetuneOptions(epochs=args.finetune_epochs),
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        seed=args.seed,
    )


def _encoder_and_out_dir(args: argparse.Namespace) -> tuple[Any, str]:
    """The encoder (opened or built, which checks it) and the folder for the results."""
    if args.encoder is not None:
        encoder: Any = FeatureEncoder(args.encoder)
        out_dir = args.out_dir or os.path.join(os.path.dirname(encoder.path), "evaluation")
    else:
        from simclr_tf.models import build_encoder, initialize_weights

        encoder = build_encoder(
            args.random_encoder, args.image_size, representation_dim=args.representation_dim
        )
        initialize_weights(encoder, args.seed)
        out_dir = args.out_dir or os.path.join("runs", f"evaluation-random-{args.random_encoder}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(
            f"out_dir={out_dir!r} is a file; pass a folder (new or existing) for the results."
        )
    return encoder, out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: evaluates, prints the markdown table, writes the results.

    Args:
        argv: the flags; ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 when the results were written, 2 for a user error (reported on
        stderr as one message, with nothing written).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        protocols = validate_protocols(args.protocols)
        options = _options(args)
    except UsageError as error:
        print(f"{parser.format_usage()}{PROG}: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def body() -> int:
        encoder, out_dir = _encoder_and_out_dir(args)
        results = evaluate_encoder(
            encoder,
            dataset=args.dataset,
            protocols=protocols,
            data_dir=args.data_dir,
            options=options,
            out_dir=out_dir,
            figures_dir=os.path.join(out_dir, "figures") if args.figures else None,
            command=shlex.join(["python", "-m", "simclr_tf.evaluate", *argv]),
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
        print(format_results_table(results))
        print(f"Results written to {out_dir}/", file=sys.stderr)
        return 0

    return run_command(body)
