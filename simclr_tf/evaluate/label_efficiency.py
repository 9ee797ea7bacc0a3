"""Label efficiency: accuracy against the number of labels per class, with error bars.

The promise of pretraining on unlabelled images is that labels go further. This module
measures it the way Figure 1 of the UvA tutorial and Table 7 of the SimCLR paper do: draw
``n`` labelled images of every class (several seeded draws per ``n``), fit the classifier on
them only, test on the whole test set, and report the mean and standard error over the draws.

* :func:`probe_curve`: the linear probe of :mod:`simclr_tf.evaluate.linear` on frozen
  features (seconds per point, since the features are extracted once);
* :func:`training_curve`: a network trained end to end on the same draws
  (:func:`simclr_tf.evaluate.finetune.train_classifier`): a pretrained encoder fine-tuned, or
  the same architecture from scratch, the supervised baseline.

Both return the same structure, so that :func:`simclr_tf.viz.plot_label_efficiency` draws
any of them on one figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from simclr_tf.data.sampling import stratified_indices
from simclr_tf.evaluate.finetune import FinetuneOptions, train_classifier
from simclr_tf.evaluate.linear import DEFAULT_C_VALUES, linear_probe

LABELS_PER_CLASS = (1, 2, 5, 10, 20, 50, 100)
"""Labelled images per class of the curve (UvA tutorial 17's range, from one up)."""
ALL_LABELS = 0
"""The point of a curve that uses every labelled training image (one draw: nothing to draw)."""


def label_draws(labels: np.ndarray, per_class: int, draws: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded class-balanced draws of ``per_class`` labelled images of every class.

    Args:
        labels: integer training labels ``[N]``.
        per_class: images per class, or :data:`ALL_LABELS` for every image (one draw).
        draws: how many independent draws (>= 1).
        seed: seed of the first draw; draw ``i`` uses ``seed + i``.

    Returns:
        ``draws`` sorted int64 index arrays into ``labels`` (one array for ALL_LABELS).

    Raises:
        ValueError: if ``draws < 1`` or a class has fewer than ``per_class`` images.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1; received draws={draws!r}.")
    if per_class == ALL_LABELS:
        return [np.arange(len(labels), dtype=np.int64)]
    return [stratified_indices(labels, per_class, seed + index) for index in range(draws)]


def summarize(accuracies: Sequence[float]) -> dict[str, Any]:
    """Mean and standard error of the mean (0 for one value) of a point's accuracies."""
    values = np.asarray(accuracies, dtype=np.float64)
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"top1": [float(v) for v in values], "mean": float(values.mean()), "stderr": stderr}


def _curve(
    labels: np.ndarray,
    labels_per_class: Sequence[int],
    draws: int,
    seed: int,
    evaluate: Callable[[np.ndarray, int], float],
) -> dict[str, Any]:
    points = {}
    for per_class in labels_per_class:
        subsets = label_draws(labels, per_class, draws, seed)
        accuracies = [evaluate(subset, seed + index) for index, subset in enumerate(subsets)]
        points[str(per_class)] = {"labels_per_class": int(per_class), **summarize(accuracies)}
    return {"points": points, "draws": int(draws), "seed": int(seed)}


def probe_curve(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    labels_per_class: Sequence[int] = (*LABELS_PER_CLASS, ALL_LABELS),
    draws: int = 5,
    seed: int = 0,
    c_values: tuple[float, ...] = DEFAULT_C_VALUES,
) -> dict[str, Any]:
    """Linear-probe accuracy at each number of labels per class.

    Args:
        train_features: frozen features of every training image, float ``[N, D]``.
        train_labels: their integer labels ``[N]``.
        test_features: features of the test images ``[M, D]``.
        test_labels: their labels ``[M]``.
        labels_per_class: the points of the curve (:data:`ALL_LABELS` for every label).
        draws: seeded draws per point.
        seed: seed of the draws and of the probe's validation split.
        c_values: the probe's grid of ``C`` (chosen on a validation split of each draw).

    Returns:
        ``{"points": {str(n): {"labels_per_class", "top1": [per draw], "mean", "stderr"}},
        "draws", "seed"}``.
    """
    train_labels = np.asarray(train_labels).reshape(-1)

    def evaluate(subset: np.ndarray, draw_seed: int) -> float:
        result = linear_probe(
            train_features[subset],
            train_labels[subset],
            test_features,
            test_labels,
            c_values=c_values,
            seed=draw_seed,
        )
        return result["top1"]

    return _curve(train_labels, labels_per_class, draws, seed, evaluate)


def training_steps_options(count: int, base: FinetuneOptions, min_steps: int) -> FinetuneOptions:
    """``base`` with enough epochs that ``count`` images give at least ``min_steps`` steps.

    With one image per class an epoch is one step; a fixed number of epochs would train the
    small draws hardly at all. The epochs grow so that every point trains at least
    ``min_steps`` optimizer steps.
    """
    steps_per_epoch = max(1, count // min(base.batch_size, count))
    epochs = max(base.epochs, math.ceil(min_steps / steps_per_epoch))
    return FinetuneOptions(**{**base.to_dict(), "epochs": epochs})


def training_curve(
    make_encoder: Callable[[int], keras.Model],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    labels_per_class: Sequence[int] = LABELS_PER_CLASS,
    draws: int = 3,
    seed: int = 0,
    options: FinetuneOptions | None = None,
    min_steps: int = 200,
) -> dict[str, Any]:
    """Accuracy of a network trained end to end at each number of labels per class.

    Args:
        make_encoder: ``seed -> encoder`` giving a fresh network for every draw: a copy of the
            pretrained encoder (fine-tuning) or a randomly initialised one (from scratch).
        train_images: uint8 ``[N, H, W, 3]``.
        train_labels: integer labels ``[N]``.
        test_images: uint8 ``[M, H, W, 3]``.
        test_labels: labels ``[M]``.
        labels_per_class: the points of the curve.
        draws: seeded draws per point (each trains a network).
        seed: seed of the draws, the initialisation, data order and augmentation.
        options: the training recipe (:class:`FinetuneOptions`); its epochs are raised so
            that every point trains at least ``min_steps`` steps.
        min_steps: fewest optimizer steps of any point.

    Returns:
        The structure of :func:`probe_curve`, plus ``"options"`` (the base recipe) and
        ``"min_steps"``.
    """
    base = options or FinetuneOptions()
    train_labels = np.asarray(train_labels).reshape(-1)
    num_classes = int(max(train_labels.max(), np.max(test_labels)) + 1)

    def evaluate(subset: np.ndarray, draw_seed: int) -> float:
        result = train_classifier(
            make_encoder(draw_seed),
            train_images[subset],
            train_labels[subset],
            test_images,
            test_labels,
            options=training_steps_options(len(subset), base, min_steps),
            num_classes=num_classes,
            seed=draw_seed,
        )
        return result["top1"]

    curve = _curve(train_labels, labels_per_class, draws, seed, evaluate)
    return {**curve, "options": base.to_dict(), "min_steps": int(min_steps)}
