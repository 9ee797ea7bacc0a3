"""Evaluate a pretrained encoder: linear probe, kNN, few-label fine-tuning, label-free quality.

Pretraining gives an encoder ``f``; this module measures how useful its representation
``h = f(x)`` is, with the protocols of the SimCLR paper and of the papers that followed it:

* ``linear``: logistic regression on frozen, standardised features; its regularisation chosen
  on a validation split of the training set, never on the test set (section 4.1 of the paper).
* ``knn``: weighted k-nearest-neighbour vote on cosine similarities, k = 200, temperature 0.1
  (Wu et al., 2018). No training, no hyper-parameter chosen on data.
* ``finetune``: with 1 % and 10 % of the training labels, fine-tune a copy of the encoder plus a
  linear head, next to the same architecture trained from scratch on the same labels, and the
  linear probe on the same labels (section 6 of the paper).
* ``random_init``: the same architecture with random weights, frozen, under the linear probe and
  kNN (with all labels and with each label fraction): what the architecture gives for free.
* ``quality``: alignment and uniformity (Wang & Isola, 2020), the per-dimension standard
  deviation of normalised embeddings and the effective rank, which flag collapse. No labels.

The encoder is either a Keras model in memory or the folder of an exported SavedModel (its
image size comes from the export's metadata). Data: the bundled CIFAR-10 sample, the full
CIFAR-10, or a folder of images (``train/`` and ``test/`` subfolders with one folder per class,
or one folder per class that is split 80/20, seeded).

Command line (results go to ``--out`` as ``results.json`` and ``results.md``; ``--figures`` adds
a t-SNE map, a nearest-neighbour grid, Embedding Projector files and the training curves)::

    python -m simclr_tf.evaluate --encoder runs/simclr/encoder --dataset cifar10 \\
        --protocols linear,knn,quality
    python -m simclr_tf.evaluate --random_encoder small_cnn --dataset sample --figures

Python::

    from simclr_tf.evaluate import evaluate_encoder, format_results_table
    results = evaluate_encoder("runs/simclr/encoder", dataset="sample")
    print(format_results_table(results))

The building blocks live in ``simclr_tf.evaluate`` and are re-exported here.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from simclr_tf.augment import AugmentConfig
from simclr_tf.config import DATASETS, SimCLRConfig
from simclr_tf.data.sampling import Split, class_balanced_subset, split_train_validation
from simclr_tf.data.sources import load_splits as load_evaluation_data
from simclr_tf.evaluate.features import (
    FeatureEncoder,
    extract_dataset_features,
    extract_features,
)
from simclr_tf.evaluate.figures import class_names_for, save_embedding_figures
from simclr_tf.evaluate.finetune import (
    FinetuneOptions,
    keras_copy,
    train_classifier,
)
from simclr_tf.evaluate.knn import DEFAULT_K, DEFAULT_TEMPERATURE, knn_accuracy, knn_predict
from simclr_tf.evaluate.linear import (
    DEFAULT_C_VALUES,
    choose_regularization,
    linear_probe,
)
from simclr_tf.evaluate.quality import (
    alignment,
    effective_rank,
    embedding_std,
    two_view_quality,
    uniformity,
)
from simclr_tf.evaluate.report import format_results_table, save_results

__all__ = [
    "DATASETS",
    "DEFAULT_PROTOCOLS",
    "PROTOCOLS",
    "FeatureEncoder",
    "FinetuneOptions",
    "alignment",
    "choose_regularization",
    "class_balanced_subset",
    "effective_rank",
    "embedding_std",
    "evaluate_encoder",
    "extract_dataset_features",
    "extract_features",
    "format_results_table",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "load_evaluation_data",
    "main",
    "save_embedding_figures",
    "save_results",
    "split_train_validation",
    "train_classifier",
    "uniformity",
]

PROTOCOLS = ("linear", "knn", "finetune", "random_init", "quality")
DEFAULT_PROTOCOLS = ("linear", "knn", "quality")
LABELED_PROTOCOLS = ("linear", "knn", "finetune", "random_init")
DEFAULT_LABEL_FRACTIONS = (0.01, 0.1)
QUALITY_IMAGES = 2048


def _timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _quality(encoder: FeatureEncoder, images: np.ndarray, features: np.ndarray, seed: int):
    """Alignment on two augmented views, the other measures on plain test features."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(len(images))[: min(QUALITY_IMAGES, len(images))])
    run_config = encoder.metadata.get("config") or {}
    if run_config:
        # The run's own augmentation (crop area, view size, colour strength), as its
        # metrics.csv measured it.
        augment_config = SimCLRConfig.from_dict(run_config, ignore_unknown=True).augment_config()
        preset = run_config.get("augment", "cifar")
    else:
        size = encoder.image_size or images.shape[1:3]
        preset = "cifar" if max(size) <= 32 else "imagenet"
        augment_config = AugmentConfig.preset(preset)
    h = features[chosen]
    return {
        **two_view_quality(encoder, images[chosen], augment_config, seed),
        "effective_rank": float(effective_rank(h)),
        "reference_std": float(1.0 / np.sqrt(h.shape[1])),
        "max_rank": int(min(h.shape)),
        "num_images": int(len(chosen)),
        "augment": preset,
    }


def evaluate_encoder(
    encoder: keras.Model | str | os.PathLike,
    dataset: str = "sample",
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    data_dir: str | None = None,
    data: tuple[Split, Split] | None = None,
    label_fractions: Sequence[float] = DEFAULT_LABEL_FRACTIONS,
    knn_k: int = DEFAULT_K,
    knn_temperature: float = DEFAULT_TEMPERATURE,
    c_values: Sequence[float] = DEFAULT_C_VALUES,
    finetune_options: FinetuneOptions | None = None,
    batch_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    command: str | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs the chosen evaluation protocols and returns every number they measured.

    Args:
        encoder: a Keras encoder (float images in [0, 1] -> ``h``) or an export folder.
        dataset: "sample", "cifar10" or "folder" (used to load data unless ``data`` is given).
        protocols: any of "linear", "knn", "finetune", "random_init", "quality".
        data_dir: CIFAR-10 folder or image folder, as for :func:`load_evaluation_data`.
        data: ``((x_train, y_train), (x_test, y_test))`` already in memory; overrides loading.
        label_fractions: label fractions of the "finetune" and "random_init" protocols.
        knn_k: neighbours of the kNN vote.
        knn_temperature: temperature of the kNN vote weights.
        c_values: grid of inverse L2 strengths for the linear probes.
        finetune_options: recipe of fine-tuning and the supervised baseline.
        batch_size: images per forward pass during feature extraction.
        cache_dir: folder for cached features (keyed by encoder weights and data set).
        out_dir: if given, ``results.json`` and ``results.md`` are written there.
        figures_dir: if given, the embedding figures of the encoder (t-SNE, retrieval grid,
            Embedding Projector files, and the training curves of the run around an exported
            encoder) are written there; see :func:`save_embedding_figures`.
        command: the command line to record; defaults to this process's ``sys.argv``.
        seed: seed of every split, subset, initialisation and augmentation.
        log: called with a line of progress text; ``None`` is silent.

    Returns:
        The results dict: ``encoder``, ``dataset``, ``command``, ``num_train``, ``num_test``,
        ``feature_dim``, ``feature_seconds`` and ``protocols`` (one entry per protocol).

    Raises:
        ValueError: for an unknown protocol or data set, or labelled protocols on unlabelled
            data (the message names them).
        FileNotFoundError: if the encoder folder or the data cannot be found.
    """
    log = log or (lambda line: None)
    protocols = tuple(dict.fromkeys(protocols))
    unknown = [name for name in protocols if name not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(
            f"protocols must be a non-empty list of {', '.join(PROTOCOLS)}; received {protocols}."
        )
    feature_encoder = FeatureEncoder(encoder)
    if data is None:
        data = load_evaluation_data(dataset, data_dir, feature_encoder.image_size, seed)
    (x_train, y_train), (x_test, y_test) = data
    labeled = y_train is not None and y_test is not None
    needs_labels = [name for name in protocols if name in LABELED_PROTOCOLS]
    if needs_labels and not labeled:
        raise ValueError(
            f"protocols {', '.join(needs_labels)} need labels, but dataset={dataset!r} has none. "
            "Use a folder with one subfolder per class, or protocols=['quality']."
        )
    num_classes = int(max(y_train.max(), y_test.max()) + 1) if labeled else 0

    def features_of(model: FeatureEncoder, images: np.ndarray, split: str) -> np.ndarray:
        cache = None
        if cache_dir is not None:
            cache = os.path.join(cache_dir, f"{dataset}-{split}-{model.fingerprint()}.npz")
        return extract_features(model, images, batch_size, cache)

    start = time.perf_counter()
    train_features = features_of(feature_encoder, x_train, "train")
    test_features = features_of(feature_encoder, x_test, "test")
    feature_seconds = time.perf_counter() - start
    log(f"features: {train_features.shape} + {test_features.shape} in {feature_seconds:.1f} s")

    subsets = {}
    if labeled:
        subsets = {str(f): class_balanced_subset(y_train, f, seed) for f in label_fractions}
    results: dict[str, Any] = {}
    linear_args = {"c_values": tuple(c_values), "seed": seed}
    if "linear" in protocols:
        results["linear"] = linear_probe(
            train_features, y_train, test_features, y_test, **linear_args
        )
        log(f"linear probe: {results['linear']['top1']:.4f}")
    if "knn" in protocols:
        results["knn"] = _knn(
            train_features, y_train, test_features, y_test, knn_k, knn_temperature, num_classes
        )
        log(f"kNN: {results['knn']['top1']:.4f}")
    if "quality" in protocols:
        results["quality"], seconds = _timed(_quality, feature_encoder, x_test, test_features, seed)
        results["quality"]["seconds"] = seconds
        log(f"quality: {results['quality']}")
    if "finetune" in protocols:
        options = finetune_options or FinetuneOptions()
        fractions = {}
        for fraction, subset in subsets.items():
            entry: dict[str, Any] = {"num_labels": int(len(subset))}
            entry["linear"] = linear_probe(
                train_features[subset], y_train[subset], test_features, y_test, **linear_args
            )
            for key, pretrained in (("finetune", True), ("supervised", False)):
                model = keras_copy(feature_encoder, pretrained=pretrained, seed=seed)
                entry[key] = train_classifier(
                    model,
                    x_train[subset],
                    y_train[subset],
                    x_test,
                    y_test,
                    options,
                    num_classes,
                    seed,
                )
                log(f"{key} with {fraction} of the labels: {entry[key]['top1']:.4f}")
            fractions[fraction] = entry
        results["finetune"] = {"fractions": fractions, "options": options.to_dict()}
    if "random_init" in protocols:
        random_encoder = FeatureEncoder(keras_copy(feature_encoder, pretrained=False, seed=seed))
        random_train = extract_features(random_encoder, x_train, batch_size)
        random_test = extract_features(random_encoder, x_test, batch_size)
        entry = {
            "linear": linear_probe(random_train, y_train, random_test, y_test, **linear_args),
            "knn": _knn(
                random_train, y_train, random_test, y_test, knn_k, knn_temperature, num_classes
            ),
            "fractions": {
                fraction: {
                    "num_labels": int(len(subset)),
                    "linear": linear_probe(
                        random_train[subset], y_train[subset], random_test, y_test, **linear_args
                    ),
                }
                for fraction, subset in subsets.items()
            },
        }
        results["random_init"] = entry
        log(f"random init: linear {entry['linear']['top1']:.4f}, kNN {entry['knn']['top1']:.4f}")

    figures = {}
    if figures_dir is not None:
        run_dir = os.path.dirname(feature_encoder.path) if feature_encoder.path else None
        figures, seconds = _timed(
            save_embedding_figures,
            figures_dir,
            x_train,
            train_features,
            y_train,
            x_test,
            test_features,
            y_test,
            class_names_for(dataset, data_dir, num_classes) if labeled else None,
            run_dir,
            seed,
        )
        log(f"figures: {', '.join(figures.values())} in {seconds:.1f} s")

    report = {
        "encoder": feature_encoder.path or f"Keras model {feature_encoder.keras_model.name!r}",
        "dataset": dataset,
        "command": command if command is not None else shlex.join([sys.executable, *sys.argv]),
        "num_train": int(len(x_train)),
        "num_test": int(len(x_test)),
        "num_classes": num_classes,
        "feature_dim": int(train_features.shape[1]),
        "feature_seconds": feature_seconds,
        "seed": seed,
        "protocols": results,
        "figures": figures,
    }
    if out_dir is not None:
        save_results(report, out_dir)
    return report


def _knn(train_features, train_labels, test_features, test_labels, k, temperature, num_classes):
    top1, seconds = _timed(
        knn_accuracy,
        train_features,
        train_labels,
        test_features,
        test_labels,
        k,
        temperature,
        num_classes,
    )
    return {"top1": top1, "k": int(k), "temperature": float(temperature), "seconds": seconds}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simclr_tf.evaluate",
        description="Evaluate a pretrained SimCLR encoder (linear probe, kNN, few-label "
        "fine-tuning, label-free quality) and write results.json and results.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--encoder", help="Exported encoder folder, e.g. RUN_DIR/encoder.")
    source.add_argument(
        "--random_encoder",
        metavar="NAME",
        help="Evaluate a randomly initialised encoder of this architecture instead "
        "(resnet18, resnet34, resnet50, small_cnn): the baseline without any training.",
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
        "--out",
        default=None,
        help="Folder for results.json and results.md (default: RUN_DIR/evaluation next to the "
        "encoder, or runs/evaluation-random-NAME).",
    )
    parser.add_argument(
        "--label_fractions", default="0.01,0.1", help="Label fractions for finetune/random_init."
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
        "training curves) into OUT/figures.",
    )
    parser.add_argument("--batch_size", type=int, default=256, help="Images per forward pass.")
    parser.add_argument("--cache_dir", default=None, help="Folder to cache extracted features in.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random choice.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point: evaluates, prints the markdown table, writes the results.

    Returns:
        The results dict of :func:`evaluate_encoder`.
    """
    args = _parse_args(argv)
    if args.encoder is not None:
        encoder: Any = args.encoder
        out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.encoder)), "evaluation")
    else:
        from simclr_tf.models import build_encoder

        keras.utils.set_random_seed(args.seed)
        encoder = build_encoder(
            args.random_encoder, args.image_size, representation_dim=args.representation_dim
        )
        out = args.out or os.path.join("runs", f"evaluation-random-{args.random_encoder}")
    command = shlex.join(
        ["python", "-m", "simclr_tf.evaluate", *(sys.argv[1:] if argv is None else argv)]
    )
    results = evaluate_encoder(
        encoder,
        dataset=args.dataset,
        protocols=[name.strip() for name in args.protocols.split(",") if name.strip()],
        data_dir=args.data_dir,
        label_fractions=[float(f) for f in args.label_fractions.split(",") if f.strip()],
        knn_k=args.knn_k,
        knn_temperature=args.knn_temperature,
        finetune_options=FinetuneOptions(epochs=args.finetune_epochs),
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        out_dir=out,
        figures_dir=os.path.join(out, "figures") if args.figures else None,
        command=command,
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_results_table(results))
    print(f"Results written to {out}/", file=sys.stderr)
    return results
