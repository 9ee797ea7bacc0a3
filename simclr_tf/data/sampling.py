"""Per-class sampling of labelled arrays: balanced subsets, train/validation splits.

Every function here draws, for each class in turn (in increasing label order), a seeded random
choice of that class's examples, so the same seed always picks the same images and every class
is represented as the caller asks. They differ only in how many examples of a class they keep:

* :func:`stratified_indices` -- exactly ``per_class`` of every class (the bundled sample);
* :func:`class_balanced_subset` -- a fraction of every class, at least one (few-label fine-tuning);
* :func:`split_train_validation` -- a stratified validation part, the rest for fitting;
* :func:`balanced_indices` -- at most ``max_items`` items, equally many per class (figures);
* :func:`one_per_class` -- one random example of each class (retrieval queries).

A *split* is a pair ``(images, labels)``: uint8 images ``[N, H, W, 3]`` and int64 labels ``[N]``,
or ``None`` for unlabelled images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Split = tuple[np.ndarray, np.ndarray | None]
"""``(images, labels)``: uint8 ``[N, H, W, 3]`` and int64 ``[N]`` (``None`` when unlabelled)."""

DEFAULT_VALIDATION_FRACTION = 0.1


def per_class_choice(
    labels: np.ndarray, count: Callable[[int], int], seed: int = 0
) -> list[np.ndarray]:
    """Draws ``count(class size)`` distinct examples of every class, without replacement.

    Args:
        labels: int class labels ``[N]``.
        count: how many examples to keep from a class of the given size (0 to the size).
        seed: seed of the random choice.

    Returns:
        One int64 index array per class, in increasing label order; within a class the indices
        are in the random order they were drawn.
    """
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.choice(members, size=count(len(members)), replace=False))
    return [np.asarray(indices, dtype=np.int64) for indices in chosen]


def _sorted(chosen: list[np.ndarray]) -> np.ndarray:
    if not chosen:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def stratified_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Picks ``per_class`` random examples of every class, reproducibly.

    Args:
        labels: int [N] class labels.
        per_class: how many examples to take from each class (> 0).
        seed: seed of the random choice.

    Returns:
        int64 [num_classes * per_class] indices into ``labels``, in increasing order (so the
        subset keeps the classes interleaved as they are in the data set).

    Raises:
        ValueError: if ``per_class`` is not positive or a class has fewer examples.
    """
    if per_class <= 0:
        raise ValueError(f"per_class must be > 0; received per_class={per_class!r}.")
    labels = np.asarray(labels).reshape(-1)
    classes, sizes = np.unique(labels, return_counts=True)
    if len(sizes) and sizes.min() < per_class:
        label = classes[np.argmin(sizes)]
        raise ValueError(
            f"per_class={per_class} but class {label} has only {sizes.min()} examples; "
            "lower per_class."
        )
    return _sorted(per_class_choice(labels, lambda size: per_class, seed))


def class_balanced_subset(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a seeded subset holding ``fraction`` of the images of every class.

    Args:
        labels: integer labels ``[N]``.
        fraction: share of each class to keep, in ``(0, 1]``; at least one image per class.
        seed: seed of the selection; the same seed always gives the same subset.

    Returns:
        Sorted int64 indices into ``labels``.

    Raises:
        ValueError: if ``fraction`` is outside ``(0, 1]``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; received fraction={fraction!r}.")
    return _sorted(per_class_choice(labels, lambda size: max(1, int(round(fraction * size))), seed))


def split_train_validation(
    labels: np.ndarray, validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Splits training indices into a fitting part and a class-stratified validation part.

    Args:
        labels: integer labels of the training images, ``[N]``.
        validation_fraction: share of the images held out for validation, in ``(0, 1)``.
        seed: seed of the random split.

    Returns:
        ``(fit_indices, validation_indices)``, two sorted int64 arrays that partition
        ``range(N)``. Every class with at least two images keeps at least one in each part.

    Raises:
        ValueError: if ``validation_fraction`` is outside ``(0, 1)``.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be in (0, 1); received "
            f"validation_fraction={validation_fraction!r}."
        )
    labels = np.asarray(labels).reshape(-1)

    def count(size: int) -> int:
        return max(0, min(max(int(round(validation_fraction * size)), 1), size - 1))

    validation_indices = _sorted(per_class_choice(labels, count, seed))
    fit_mask = np.ones(len(labels), dtype=bool)
    fit_mask[validation_indices] = False
    return np.flatnonzero(fit_mask).astype(np.int64), validation_indices


def balanced_indices(
    labels: np.ndarray | None, count: int, max_items: int, seed: int = 0
) -> np.ndarray:
    """Sorted indices of at most ``max_items`` of ``count`` items, equally many per class.

    Args:
        labels: int labels ``[count]``, or ``None`` to draw uniformly.
        count: number of items.
        max_items: the most indices to return; all items when ``count <= max_items``.
        seed: seed of the random choice.

    Returns:
        Sorted int64 indices.
    """
    if count <= max_items:
        return np.arange(count, dtype=np.int64)
    if labels is None:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(count, size=max_items, replace=False)).astype(np.int64)
    per_class = max(1, max_items // len(np.unique(labels)))
    return _sorted(per_class_choice(labels, lambda size: min(size, per_class), seed))


def one_per_class(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """One random example of each of the first ``count`` classes (in label order).

    Returns:
        int64 indices ``[min(count, num_classes)]``, in class order.
    """
    chosen = per_class_choice(labels, lambda size: 1, seed)
    return np.asarray([indices[0] for indices in chosen[:count]], dtype=np.int64)
