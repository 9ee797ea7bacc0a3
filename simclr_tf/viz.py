"""Plotting helpers of the project: the figures the notebooks show and ``imgs/`` keeps.

Every function here draws with matplotlib's object API (``fig, axes = plt.subplots(...)``,
then methods on ``fig`` and ``axes``), never with the global "current axes" state, so it works
the same under the non-interactive Agg backend of a server or CI as in a notebook. Each one
returns its ``matplotlib.figure.Figure`` (a notebook displays it) and, when given ``path``,
also saves it there as a PNG (creating the folder).

* :func:`plot_view_pairs` -- original images above pairs of their augmented views, as SimCLR
  sees them (``imgs/augmented_views.png``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


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
