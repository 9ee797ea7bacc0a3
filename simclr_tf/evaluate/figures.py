"""The embedding figures of one evaluation: t-SNE, retrieval grid, projector, training curves.

:func:`save_embedding_figures` draws, from features that were already extracted, the pictures
:mod:`simclr_tf.viz` knows how to make, into one folder:

* ``tsne.png``: t-SNE map of (a class-balanced subsample of) the test representations;
* ``retrieval.png``: one test image per class and its nearest training images;
* ``projector/``: an Embedding Projector set-up (``tensorboard --logdir OUT/projector``);
* ``training_curves.png``: the run's ``metrics.csv``, when a run directory is known.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from simclr_tf.data.sampling import one_per_class

TSNE_POINTS = 2000
PROJECTOR_POINTS = 5000
RETRIEVAL_QUERIES = 10
RETRIEVAL_NEIGHBOURS = 8


def class_names_for(dataset: str, data_dir: str | None, num_classes: int) -> list[str]:
    """Names of the labels: CIFAR-10's classes, a folder's class folders, else the numbers."""
    if dataset in ("sample", "cifar10"):
        from simclr_tf.data.cifar10 import CIFAR10_CLASSES

        return list(CIFAR10_CLASSES)
    if dataset == "folder" and data_dir:
        from simclr_tf.data.image_folder import list_image_folder

        train_dir = os.path.join(data_dir, "train")
        folder = train_dir if os.path.isdir(train_dir) else data_dir
        names = list(list_image_folder(folder).class_names)
        if len(names) >= num_classes:
            return names
    return [str(label) for label in range(num_classes)]


def save_embedding_figures(
    out_dir: str | os.PathLike,
    train_images: np.ndarray,
    train_features: np.ndarray,
    train_labels: np.ndarray | None,
    test_images: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray | None,
    class_names: Sequence[str] | None = None,
    run_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Writes the embedding figures of one encoder on one data set.

    Args:
        out_dir: folder for the figures (created if needed).
        train_images, train_features, train_labels: the retrieval gallery: uint8
            ``[N, H, W, 3]``, float ``[N, D]``, int ``[N]`` (labels may be ``None``).
        test_images, test_features, test_labels: the points shown, and the retrieval queries.
        class_names: name of each label.
        run_dir: a pretraining run directory; its ``metrics.csv`` gives the training curves.
        seed: seed of every subsample.

    Returns:
        ``{figure name: path}`` of what was written ("tsne", "retrieval", "projector",
        "training_curves"). The t-SNE needs labels to colour the points and is skipped without.
    """
    import matplotlib.pyplot as plt

    from simclr_tf import viz

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, str] = {}
    if test_labels is not None:
        path = os.path.join(out_dir, "tsne.png")
        plt.close(
            viz.plot_tsne(test_features, test_labels, path, class_names, TSNE_POINTS, seed=seed)
        )
        written["tsne"] = path
        queries = one_per_class(test_labels, RETRIEVAL_QUERIES, seed)
    else:
        queries = np.random.default_rng(seed).permutation(len(test_images))[:RETRIEVAL_QUERIES]
    path = os.path.join(out_dir, "retrieval.png")
    figure = viz.plot_retrieval_grid(
        test_images[queries],
        test_features[queries],
        train_images,
        train_features,
        path,
        k=RETRIEVAL_NEIGHBOURS,
        query_labels=None if test_labels is None else test_labels[queries],
        gallery_labels=train_labels,
        class_names=class_names,
    )
    plt.close(figure)
    written["retrieval"] = path
    written["projector"] = viz.export_projector(
        test_features,
        os.path.join(out_dir, "projector"),
        test_labels,
        test_images,
        class_names,
        PROJECTOR_POINTS,
        seed,
    )
    if run_dir is not None and os.path.isfile(os.path.join(run_dir, "metrics.csv")):
        path = os.path.join(out_dir, "training_curves.png")
        try:
            plt.close(viz.plot_training_curves(run_dir, path))
            written["training_curves"] = path
        except ValueError:  # no finished epoch yet: nothing to draw
            pass
    return written
