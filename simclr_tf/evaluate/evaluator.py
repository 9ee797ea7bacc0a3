"""``evaluate_encoder``: load the data, extract features once, run the chosen protocols, report.

The protocols themselves live in their own modules and are looked up by name in
:mod:`simclr_tf.evaluate.registry`; their knobs are an :class:`EvaluationOptions`. What is
left here is the order of the work: check everything that can be checked, load the encoder
and the data, extract the features, run each protocol on the shared
:class:`EvaluationContext`, draw the figures if asked, and write ``results.json`` and
``results.md``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from simclr_tf.data.sampling import Split
from simclr_tf.data.sources import load_splits
from simclr_tf.evaluate.features import FeatureEncoder
from simclr_tf.evaluate.figures import class_names_for, save_embedding_figures
from simclr_tf.evaluate.options import EvaluationContext, EvaluationOptions
from simclr_tf.evaluate.registry import (
    DEFAULT_PROTOCOLS,
    REGISTRY,
    require_labels,
    validate_protocols,
)
from simclr_tf.evaluate.report import save_results

__all__ = ["evaluate_encoder"]


def _silent(line: str) -> None:
    del line


def evaluate_encoder(
    encoder: keras.Model | str | os.PathLike | FeatureEncoder,
    dataset: str = "sample",
    protocols: str | Sequence[str] = DEFAULT_PROTOCOLS,
    *,
    data_dir: str | os.PathLike | None = None,
    data: tuple[Split, Split] | None = None,
    options: EvaluationOptions | None = None,
    out_dir: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    **option_changes: Any,
) -> dict[str, Any]:
    """Runs the chosen evaluation protocols and returns every number they measured.

    Args:
        encoder: a Keras encoder (float images in [0, 1] -> ``h``), an export folder, or a
            :class:`FeatureEncoder`.
        dataset: "sample", "cifar10" or "folder" (used to load data unless ``data`` is given).
        protocols: names from :data:`simclr_tf.evaluate.PROTOCOLS` ("linear", "knn",
            "finetune", "random_init", "quality"), or comma-separated text.
        data_dir: CIFAR-10 folder or image folder, as for
            :func:`simclr_tf.data.sources.load_splits` (``load_evaluation_data``).
        data: ``((x_train, y_train), (x_test, y_test))`` already in memory; overrides loading.
        options: the knobs of the protocols; ``None`` means ``EvaluationOptions()``.
        out_dir: if given, ``results.json`` and ``results.md`` are written there (each
            atomically: nothing is half-written).
        figures_dir: if given, the embedding figures of the encoder (t-SNE, retrieval grid,
            Embedding Projector files, and the training curves of the run around an exported
            encoder) are written there; see :func:`save_embedding_figures`.
        command: the command line to record; defaults to this process's ``sys.argv``.
        log: called with a line of progress text; ``None`` is silent.
        **option_changes: fields of :class:`EvaluationOptions` that replace those of
            ``options``, e.g. ``knn_k=20``, ``label_fractions=[0.1]``, ``seed=1``,
            ``cache_dir=...``, ``finetune_options=FinetuneOptions(epochs=5)``.

    Returns:
        The results dict: ``encoder``, ``dataset``, ``command``, ``num_train``, ``num_test``,
        ``num_classes``, ``feature_dim``, ``feature_seconds``, ``seed``, ``protocols`` (one
        entry per protocol) and ``figures`` (``{name: path}``).

    Raises:
        ValueError: for an unknown protocol or data set, an option out of range, a damaged
            export, or labelled protocols on unlabelled data (the message names them).
        TypeError: for a keyword that is not an option.
        FileNotFoundError: if the encoder folder or the data cannot be found.
    """
    options = (options or EvaluationOptions()).replace(**option_changes)
    protocols = validate_protocols(protocols)
    log = log or _silent
    feature_encoder = FeatureEncoder(encoder)
    if data is None:
        data = load_splits(dataset, data_dir, feature_encoder.image_size, options.seed)
    require_labels(protocols, data[0][1] is not None and data[1][1] is not None, dataset)
    context = EvaluationContext.create(feature_encoder, dataset, data, options, log)
    results = {name: REGISTRY[name].run(context) for name in protocols}
    figures = {}
    if figures_dir is not None:
        figures = _save_figures(context, figures_dir, data_dir)
    report = {
        "encoder": feature_encoder.path or f"Keras model {feature_encoder.keras_model.name!r}",
        "dataset": dataset,
        "command": command if command is not None else shlex.join([sys.executable, *sys.argv]),
        "num_train": int(len(context.x_train)),
        "num_test": int(len(context.x_test)),
        "num_classes": context.num_classes,
        "feature_dim": int(context.train_features.shape[1]),
        "feature_seconds": context.feature_seconds,
        "seed": options.seed,
        "protocols": results,
        "figures": figures,
    }
    if out_dir is not None:
        save_results(report, out_dir)
    return report


def _save_figures(
    context: EvaluationContext, figures_dir: str | os.PathLike, data_dir: str | None
) -> dict[str, str]:
    """The embedding figures, from the features already extracted; logs the time taken."""
    start = time.perf_counter()
    encoder_path = context.encoder.path
    class_names = None
    if context.labeled:
        class_names = class_names_for(context.dataset, data_dir, context.num_classes)
    figures = save_embedding_figures(
        figures_dir,
        context.x_train,
        context.train_features,
        context.y_train,
        context.x_test,
        context.test_features,
        context.y_test,
        class_names,
        os.path.dirname(encoder_path) if encoder_path else None,
        context.options.seed,
    )
    context.log(f"figures: {', '.join(figures.values())} in {time.perf_counter() - start:.1f} s")
    return figures
