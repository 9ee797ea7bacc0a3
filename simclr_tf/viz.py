"""Plotting helpers of the project: the figures the notebooks show and ``imgs/`` keeps.

Every function here draws with matplotlib's object API (``fig, axes = plt.subplots(...)``,
then methods on ``fig`` and ``axes``), never with the global "current axes" state, so it works
the same under the non-interactive Agg backend of a server or CI as in a notebook. Each one
returns its ``matplotlib.figure.Figure`` (a notebook displays it) and, when given ``path``,
also saves it there as a PNG (creating the folder).

* :func:`plot_view_pairs` -- original images above pairs of their augmented views, as SimCLR
  sees them (``imgs/augmented_views.png``).
* :func:`plot_tsne` -- a t-SNE map of representations, one colour per class.
* :func:`export_projector` -- vectors, labels and a sprite sheet for TensorBoard's Embedding
  Projector (:func:`make_sprite` builds the sheet).
* :func:`plot_retrieval_grid` -- query images and their nearest neighbours
  (:func:`nearest_neighbours`).
* :func:`plot_training_curves` -- loss and accuracies per epoch of a run's ``metrics.csv``
  (:func:`read_metrics`).
* :func:`plot_label_efficiency` -- accuracy against labels per class, with error bars
  (:mod:`simclr_tf.evaluate.label_efficiency`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from simclr_tf.data.sampling import balanced_indices
from simclr_tf.runs import read_metrics
from simclr_tf.similarity import normalize as l2_normalize_rows


def _as_image_batch(images: Any, name: str) -> np.ndarray:
    """A batch ``[N, H, W, C]`` (C = 1 or 3) as a float array in [0, 1] ready for imshow."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must be a batch of images [N, H, W, 3] (or [N, H, W, 1]); received shape "
            f"{array.shape}."
        )
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _save(fig: Figure, path: str | os.PathLike | None, dpi: int = 150) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")


def plot_view_pairs(
    images: Any,
    views1: Any,
    views2: Any,
    titles: Sequence[str] | None = None,
    max_images: int = 8,
    path: str | os.PathLike | None = None,
    image_inches: float = 1.3,
) -> Figure:
    """Draws each original image above pairs of its two augmented views.

    One column per image. The first row shows the originals; then every pair of views takes
    two rows ("view 1", "view 2"). Several pairs per image show how varied the augmentation
    is: pass views with a leading pair axis.

    Args:
        images: originals ``[N, H, W, 3]``, uint8 or float in [0, 1] (arrays or tensors).
        views1: first views ``[N, h, w, 3]``, or ``[P, N, h, w, 3]`` for P pairs per image.
        views2: second views, the same shape as ``views1``.
        titles: optional column titles (e.g. class names), one per image.
        max_images: draw at most this many columns (the first ones).
        path: if given, the PNG is saved there.
        image_inches: side of one image in the figure, in inches.

    Returns:
        The figure.

    Raises:
        ValueError: if the shapes do not match, naming the argument.
    """
    views1, views2 = np.asarray(views1), np.asarray(views2)
    if views1.shape != views2.shape:
        raise ValueError(
            f"views1 and views2 must have the same shape; received {views1.shape} and "
            f"{views2.shape}."
        )
    if views1.ndim == 4:
        views1, views2 = views1[None], views2[None]
    if views1.ndim != 5:
        raise ValueError(
            f"views1 must be [N, h, w, 3] or [P, N, h, w, 3]; received shape {views1.shape}."
        )
    originals = _as_image_batch(images, "images")
    if views1.shape[1] != len(originals):
        raise ValueError(
            f"views1 has {views1.shape[1]} images per pair but images has {len(originals)}; "
            "pass the views of exactly these images."
        )
    if titles is not None and len(titles) != len(originals):
        raise ValueError(
            f"titles has {len(titles)} entries but images has {len(originals)}; give one per image."
        )
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1; received max_images={max_images}.")
    columns = min(len(originals), max_images)
    rows: list[tuple[str, np.ndarray]] = [("original", originals[:columns])]
    for pair in range(views1.shape[0]):
        suffix = f" ({pair + 1})" if views1.shape[0] > 1 else ""
        rows.append((f"view 1{suffix}", _as_image_batch(views1[pair], "views1")[:columns]))
        rows.append((f"view 2{suffix}", _as_image_batch(views2[pair], "views2")[:columns]))

    fig, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(image_inches * columns + 0.8, image_inches * len(rows)),
        squeeze=False,
    )
    for row, (label, batch) in enumerate(rows):
        for column in range(columns):
            ax = axes[row, column]
            image = batch[column]
            ax.imshow(
                image[..., 0] if image.shape[-1] == 1 else image,
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(label, fontsize=10)
            if row == 0 and titles is not None:
                ax.set_title(str(titles[column]), fontsize=10)
    fig.tight_layout(h_pad=0.3, w_pad=0.3)
    _save(fig, path)
    return fig


# --------------------------------------------------------------------------------------------
# Seeing the embedding: t-SNE, the TensorBoard projector, nearest neighbours, training curves
# --------------------------------------------------------------------------------------------
#
# A representation is a cloud of points in D dimensions; these functions make it visible.
# t-SNE squeezes the cloud into a 2-D map that keeps neighbours together, so classes the encoder
# separates show up as islands of one colour. The TensorBoard Embedding Projector lets you
# browse the same points interactively in 3-D (PCA, t-SNE, UMAP) with each point's image.
# Nearest-neighbour retrieval answers the most concrete question: which training images does
# the encoder consider most similar to a query? Training curves show how pretraining went.


def _class_colours(num_classes: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [cmap(index % cmap.N) for index in range(num_classes)]


def tsne_embedding(
    features: np.ndarray, perplexity: float = 30.0, seed: int = 0, pca_dims: int = 50
) -> np.ndarray:
    """2-D t-SNE coordinates of feature vectors (scikit-learn), after PCA to ``pca_dims``.

    The features are L2-normalised first, so distances are those of the cosine similarity the
    contrastive loss uses; PCA to 50 dimensions removes noise and makes t-SNE faster.

    Args:
        features: float ``[N, D]`` with ``N >= 5``.
        perplexity: t-SNE's effective number of neighbours; clipped below ``N / 3``.
        seed: seed of PCA and t-SNE.
        pca_dims: dimensions kept by the PCA (skipped when ``D`` is smaller).

    Returns:
        float32 ``[N, 2]``.

    Raises:
        ValueError: if there are fewer than 5 points.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 5:
        raise ValueError(
            f"features must be [N, D] with N >= 5 for t-SNE; received shape {features.shape}."
        )
    features = l2_normalize_rows(features)
    # One thread: on a busy 2-core machine scikit-learn's OpenMP threads spin while waiting
    # for a core, and t-SNE of 2,000 points measured 4x slower with two threads than with one.
    with threadpool_limits(limits=1):
        if features.shape[1] > pca_dims and len(features) > pca_dims:
            features = PCA(pca_dims, random_state=seed).fit_transform(features)
        perplexity = min(perplexity, (len(features) - 1) / 3.0)
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(features).astype(np.float32)


def plot_tsne(
    features: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    max_points: int = 2000,
    perplexity: float = 30.0,
    seed: int = 0,
    title: str = "t-SNE of the representation h",
) -> Figure:
    """Scatter plot of a t-SNE map of the features, one colour per class.

    Args:
        features: float ``[N, D]`` representations (e.g. of the test set).
        labels: int ``[N]`` class of each point.
        path: PNG file to write, or ``None``.
        class_names: legend text of each label; ``None`` shows the label numbers.
        max_points: at most this many points (a class-balanced, seeded subsample); t-SNE
            took about 15 s for 2,000 points on this project's CPU.
        perplexity: t-SNE perplexity.
        seed: seed of the subsample, PCA and t-SNE.
        title: figure title.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: if ``features`` and ``labels`` do not match.
    """
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(features):
        raise ValueError(
            f"labels has {len(labels)} entries but features has {len(features)} rows; they "
            "must match."
        )
    chosen = balanced_indices(labels, len(labels), max_points, seed)
    points = tsne_embedding(np.asarray(features)[chosen], perplexity, seed)
    labels = labels[chosen]
    classes = np.unique(labels)
    colours = _class_colours(int(classes.max()) + 1)
    fig, axes = plt.subplots(figsize=(7.5, 6.5))
    for label in classes:
        mask = labels == label
        name = class_names[label] if class_names is not None else str(label)
        axes.scatter(*points[mask].T, s=6, color=colours[label], label=name, alpha=0.8)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"{title} ({len(labels):,} points)")
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, frameon=False)
    _save(fig, path)
    return fig


def make_sprite(images: np.ndarray) -> np.ndarray:
    """Tiles images into the square "sprite" sheet the Embedding Projector shows points with.

    Args:
        images: uint8 ``[N, H, W, 3]`` (float in [0, 1] is converted).

    Returns:
        uint8 ``[S * H, S * W, 3]`` with ``S = ceil(sqrt(N))``; image ``i`` sits in row
        ``i // S``, column ``i % S``; unused cells are white.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    count, height, width, channels = images.shape
    side = int(np.ceil(np.sqrt(count)))
    sheet = np.full((side * height, side * width, channels), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, side)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return sheet


def export_projector(
    features: np.ndarray,
    log_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    images: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    max_points: int = 5000,
    seed: int = 0,
    tensor_name: str = "representation_h",
) -> str:
    """Writes an Embedding Projector set-up for TensorBoard: vectors, labels and a sprite.

    Open it with ``tensorboard --logdir LOG_DIR`` and choose the "Projector" tab. Files written
    in ``log_dir``: ``embeddings.tsv`` (one vector per line), ``metadata.tsv`` (a header line,
    then label and class name per point), ``sprite.png`` (the images, when given) and
    ``projector_config.pbtxt``, which ties them together.

    Args:
        features: float ``[N, D]``.
        log_dir: folder to write into (created if needed); it can be a run's ``logs/`` folder.
        labels: optional int ``[N]`` labels.
        images: optional uint8 ``[N, H, W, 3]`` shown as thumbnails; at most 8192 px per side
            of the sprite, so at most ``(8192 // H) ** 2`` points are kept.
        class_names: optional name of each label.
        max_points: at most this many points (class-balanced, seeded subsample).
        seed: seed of the subsample.
        tensor_name: name of the embedding in the projector's menu.

    Returns:
        The path of ``projector_config.pbtxt``.

    Raises:
        ValueError: if the arrays do not have the same number of rows.
    """
    from tensorboard.plugins import projector

    features = np.asarray(features, dtype=np.float32)
    for name, array in (("labels", labels), ("images", images)):
        if array is not None and len(array) != len(features):
            raise ValueError(
                f"{name} has {len(array)} entries but features has {len(features)} rows; they "
                "must match."
            )
    if images is not None:
        max_points = min(max_points, (8192 // max(np.shape(images)[1:3])) ** 2)
    label_array = None if labels is None else np.asarray(labels).reshape(-1)
    chosen = balanced_indices(label_array, len(features), max_points, seed)
    log_dir = os.fspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    np.savetxt(
        os.path.join(log_dir, "embeddings.tsv"), features[chosen], fmt="%.6g", delimiter="\t"
    )

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.tensor_path = "embeddings.tsv"
    embedding.tensor_shape.extend([len(chosen), features.shape[1]])
    if label_array is not None:
        with open(os.path.join(log_dir, "metadata.tsv"), "w", encoding="utf-8") as handle:
            handle.write("label\tclass\n")
            for label in label_array[chosen]:
                name = class_names[label] if class_names is not None else str(label)
                handle.write(f"{int(label)}\t{name}\n")
        embedding.metadata_path = "metadata.tsv"
    if images is not None:
        from matplotlib.image import imsave

        selected = np.asarray(images)[chosen]
        imsave(os.path.join(log_dir, "sprite.png"), make_sprite(selected))
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend([selected.shape[2], selected.shape[1]])
    projector.visualize_embeddings(log_dir, config)
    return os.path.join(log_dir, "projector_config.pbtxt")


def nearest_neighbours(
    query_features: np.ndarray, gallery_features: np.ndarray, k: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` gallery items most similar (cosine) to each query.

    Args:
        query_features: float ``[Q, D]``.
        gallery_features: float ``[N, D]``.
        k: neighbours per query (clipped to ``N``).

    Returns:
        ``(indices, similarities)``, int64 and float32 ``[Q, k]``, most similar first.
    """
    similarity = l2_normalize_rows(query_features) @ l2_normalize_rows(gallery_features).T
    k = min(int(k), similarity.shape[1])
    indices = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return indices.astype(np.int64), np.take_along_axis(similarity, indices, axis=1)


def plot_retrieval_grid(
    query_images: np.ndarray,
    query_features: np.ndarray,
    gallery_images: np.ndarray,
    gallery_features: np.ndarray,
    path: str | os.PathLike | None = None,
    k: int = 8,
    query_labels: np.ndarray | None = None,
    gallery_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "Nearest neighbours in the representation space (cosine similarity)",
) -> Figure:
    """One row per query image: the query, then its ``k`` nearest gallery images.

    With labels, each neighbour is framed green when its class matches the query's and red
    otherwise, and the query's class name is shown.

    Args:
        query_images: uint8 ``[Q, H, W, 3]`` (e.g. a few test images).
        query_features: float ``[Q, D]`` their representations.
        gallery_images: uint8 ``[N, H, W, 3]`` (e.g. the training images).
        gallery_features: float ``[N, D]``.
        path: PNG file to write, or ``None``.
        k: neighbours shown per query.
        query_labels, gallery_labels: optional int labels, to mark right and wrong neighbours.
        class_names: optional name of each label.
        title: figure title.

    Returns:
        The matplotlib ``Figure``.
    """
    query_images = _as_image_batch(query_images, "query_images")
    gallery_images = _as_image_batch(gallery_images, "gallery_images")
    for name, images, features in (
        ("query", query_images, query_features),
        ("gallery", gallery_images, gallery_features),
    ):
        if len(images) != len(features):
            raise ValueError(
                f"{name}_images has {len(images)} images but {name}_features has "
                f"{len(features)} rows; they must match."
            )
    indices, similarities = nearest_neighbours(query_features, gallery_features, k)
    rows, columns = len(indices), indices.shape[1] + 1
    fig, grid = plt.subplots(
        rows,
        columns,
        figsize=(1.1 * columns, 1.3 * rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    labelled = query_labels is not None and gallery_labels is not None

    def name(label) -> str:
        return class_names[label] if class_names is not None else str(label)

    for row in range(rows):
        axes = grid[row, 0]
        axes.imshow(query_images[row], interpolation="nearest")
        axes.set_title(f"{name(query_labels[row])} (query)" if labelled else "query", fontsize=7)
        for column, (index, similarity) in enumerate(
            zip(indices[row], similarities[row], strict=True), start=1
        ):
            axes = grid[row, column]
            axes.imshow(gallery_images[index], interpolation="nearest")
            axes.set_title(f"{similarity:.2f}", fontsize=7)
            if labelled:
                right = gallery_labels[index] == query_labels[row]
                for spine in axes.spines.values():
                    spine.set_edgecolor("tab:green" if right else "tab:red")
                    spine.set_linewidth(2.5)
        for axes in grid[row]:
            axes.set_xticks([])
            axes.set_yticks([])
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return fig


_CURVE_PANELS = (
    ("loss", "NT-Xent loss"),
    ("contrastive_accuracy", "Contrastive accuracy\n(positive ranked first)"),
    ("probe_accuracy", "Online linear probe accuracy"),
)


def plot_training_curves(
    metrics: str | os.PathLike | dict[str, np.ndarray],
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Loss, contrastive accuracy and online-probe accuracy per epoch of a pretraining run.

    When the run logged them, a fourth panel shows alignment and uniformity (label-free
    measures, see :mod:`simclr_tf.evaluate.quality`). Panels whose column is missing or
    empty (e.g. the probe accuracy of an unlabelled run) say so instead of plotting.

    Args:
        metrics: a run directory, its ``metrics.csv``, or the dict :func:`read_metrics` returns.
        path: PNG file to write, or ``None``.
        title: figure title; by default the run directory's name.

    Returns:
        The matplotlib ``Figure``.
    """
    if not isinstance(metrics, dict):
        if title is None:
            run = os.path.abspath(os.fspath(metrics))
            title = os.path.basename(run if os.path.isdir(run) else os.path.dirname(run))
        metrics = read_metrics(metrics)
    epochs = metrics.get("epoch", np.arange(1, len(next(iter(metrics.values()))) + 1))
    quality = [
        c for c in ("alignment", "uniformity") if np.isfinite(metrics.get(c, [np.nan])).any()
    ]
    panels = len(_CURVE_PANELS) + (1 if quality else 0)
    fig, grid = plt.subplots(1, panels, figsize=(4.0 * panels, 3.4), squeeze=False)
    grid = grid[0]
    for axes, (column, label) in zip(grid, _CURVE_PANELS, strict=False):
        values = metrics.get(column)
        axes.set_title(label, fontsize=10)
        axes.set_xlabel("epoch")
        if values is None or not np.isfinite(values).any():
            axes.text(
                0.5,
                0.5,
                "not logged\n(no labels?)",
                ha="center",
                va="center",
                transform=axes.transAxes,
                color="0.4",
            )
            continue
        axes.plot(epochs, values, marker="o", markersize=3)
        axes.grid(alpha=0.3)
    if quality:
        axes = grid[-1]
        axes.set_title("Alignment and uniformity\n(lower is better)", fontsize=10)
        axes.set_xlabel("epoch")
        for column in quality:
            axes.plot(epochs, metrics[column], marker="o", markersize=3, label=column)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_label_efficiency(
    curves: dict[str, dict[str, Any]],
    path: str | os.PathLike | None = None,
    title: str | None = "Accuracy against labels per class",
) -> Figure:
    """Test accuracy against labelled images per class, one line per method, mean +- s.e.

    Args:
        curves: ``{method name: curve}``, curves as
            :func:`simclr_tf.evaluate.label_efficiency.probe_curve` returns them. The point
            with every label (``labels_per_class`` 0) is drawn as a dashed horizontal line.
        path: PNG file to write, or ``None``.
        title: figure title, or ``None``.

    Returns:
        The matplotlib ``Figure``.
    """
    fig, axes = plt.subplots(figsize=(6.4, 5.6))
    counts: set[int] = set()
    for index, (name, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        points = sorted(
            (p for p in curve["points"].values() if p["labels_per_class"] > 0),
            key=lambda p: p["labels_per_class"],
        )
        counts.update(p["labels_per_class"] for p in points)
        if points:
            axes.errorbar(
                [p["labels_per_class"] for p in points],
                [100 * p["mean"] for p in points],
                yerr=[100 * p["stderr"] for p in points],
                marker="o",
                markersize=4,
                capsize=3,
                color=colour,
                label=name,
            )
        everything = curve["points"].get("0")
        if everything is not None:
            axes.axhline(
                100 * everything["mean"],
                color=colour,
                linestyle="--",
                linewidth=1,
                label=f"{name}, all labels" if points else name,
            )
    axes.set_xscale("log")
    if counts:
        axes.set_xticks(sorted(counts), [str(count) for count in sorted(counts)])
        axes.minorticks_off()
    axes.set_xlabel("labelled images per class")
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3, which="both")
    # Below the axes: inside, the legend of five or more methods hides their curves.
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        axes.set_title(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return fig
