"""Where a run's images come from: the one place that turns a data set name into images.

``dataset`` is one of :data:`simclr_tf.config.DATASETS`:

* ``"sample"`` -- the bundled CIFAR-10 subset (4,500 training and 1,000 test images);
* ``"cifar10"`` -- the full CIFAR-10, from ``data_dir``, else ``SIMCLR_DATA_DIR``, else the
  Keras download;
* ``"folder"`` -- your own images under ``data_dir`` (labelled by subfolder or not), resized to
  ``image_size``.

Two views of the same data:

* :func:`training_images` gives pretraining a :class:`TrainingImages`: images that can be visited
  in any order, so that the order of epoch ``e`` depends only on ``(seed, e)`` and a resumed
  run sees exactly the images an uninterrupted one would. Arrays stay in memory
  (:class:`ArrayImages`); a folder is streamed from disk (:class:`FolderImages`).
* :func:`load_splits` gives evaluation a training and a test split as arrays. CIFAR-10 and the
  sample come with both; a folder either holds ``train/`` and ``test/`` subfolders or is split
  here (20 % of each class, or of the images when unlabelled, seeded).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from simclr_tf.config import DATASETS
from simclr_tf.data.cifar10 import load_cifar10
from simclr_tf.data.image_folder import (
    MAX_IMAGE_PIXELS,
    ImageFolder,
    list_image_folder,
    load_image_folder,
)
from simclr_tf.data.sample import load_sample
from simclr_tf.data.sampling import Split, split_train_validation

__all__ = [
    "FOLDER_TEST_FRACTION",
    "ArrayImages",
    "FolderImages",
    "TrainingImages",
    "load_splits",
    "training_images",
]

FOLDER_TEST_FRACTION = 0.2


class TrainingImages:
    """Training images that can be visited in any given order (for exact resumes).

    Attributes:
        num_examples: number of images.
        num_classes: number of classes, or ``None`` when the images carry no labels.
    """

    num_examples: int
    num_classes: int | None

    def in_order(self, order: np.ndarray) -> tf.data.Dataset:
        """A dataset of ``(uint8 image [H, W, 3], int32 label)`` in the given index order
        (label 0 for every image when there are no labels)."""
        raise NotImplementedError

    def first(self, count: int) -> np.ndarray:
        """The first ``count`` images as a uint8 array ``[count, H, W, 3]``."""
        raise NotImplementedError


class ArrayImages(TrainingImages):
    """Images held in memory as a uint8 array ``[N, H, W, 3]``, with optional labels ``[N]``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.images = images
        self.labels = None if labels is None else np.asarray(labels, np.int32).reshape(-1)
        self.num_examples = len(images)
        self.num_classes = None if labels is None else int(self.labels.max()) + 1

    def in_order(self, order: np.ndarray) -> tf.data.Dataset:
        labels = np.zeros(len(order), np.int32) if self.labels is None else self.labels[order]
        return tf.data.Dataset.from_tensor_slices((self.images[order], labels))

    def first(self, count: int) -> np.ndarray:
        return self.images[:count]


def _reordered(listing: ImageFolder, order: np.ndarray) -> ImageFolder:
    return dataclasses.replace(
        listing,
        file_paths=tuple(listing.file_paths[i] for i in order),
        labels=None if listing.labels is None else tuple(listing.labels[i] for i in order),
    )


def _with_int32_labels(dataset: tf.data.Dataset, labeled: bool) -> tf.data.Dataset:
    if not labeled:
        return dataset.map(lambda image: (image, tf.constant(0, tf.int32)))
    return dataset.map(lambda image, label: (image, tf.cast(label, tf.int32)))


class FolderImages(TrainingImages):
    """A folder of image files (see :func:`simclr_tf.data.list_image_folder`), streamed from
    disk and resized to ``image_size``; labelled when it has one subfolder per class."""

    def __init__(
        self,
        path: str | os.PathLike | ImageFolder,
        image_size: int,
        max_pixels: int | None = MAX_IMAGE_PIXELS,
    ) -> None:
        if isinstance(path, ImageFolder):
            self.listing = path
        else:
            self.listing = list_image_folder(path, max_pixels=max_pixels)
        self.image_size = image_size
        self.num_examples = len(self.listing.file_paths)
        self.num_classes = len(self.listing.class_names) if self.listing.labeled else None

    def in_order(self, order: np.ndarray) -> tf.data.Dataset:
        listing = _reordered(self.listing, order)
        dataset = load_image_folder(listing, self.image_size, shuffle_files=False)
        return _with_int32_labels(dataset, listing.labeled)

    def first(self, count: int) -> np.ndarray:
        dataset = self.in_order(np.arange(min(count, self.num_examples)))
        return np.stack([image.numpy() for image, _ in dataset])

    def to_arrays(self, batch_size: int = 256) -> Split:
        """Every image and label of the folder, decoded into memory (for evaluation)."""
        images, labels = [], []
        for batch_images, batch_labels in self.in_order(np.arange(self.num_examples)).batch(
            batch_size
        ):
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy().astype(np.int64))
        if not images:
            height, width = np.broadcast_to(self.image_size, 2)
            return np.zeros((0, height, width, 3), np.uint8), None
        return np.concatenate(images), (np.concatenate(labels) if self.listing.labeled else None)


def _check_dataset(dataset: str, data_dir: str | os.PathLike | None) -> None:
    if dataset not in DATASETS:
        raise ValueError(
            f"dataset must be one of {', '.join(DATASETS)}; received dataset={dataset!r}."
        )
    if dataset == "folder" and not data_dir:
        raise ValueError("dataset='folder' needs data_dir: pass --data_dir=PATH/TO/IMAGES.")


def _array_splits(dataset: str, data_dir: str | os.PathLike | None) -> tuple[Split, Split]:
    if dataset == "sample":
        return load_sample()
    return load_cifar10(data_dir or os.environ.get("SIMCLR_DATA_DIR"))


def training_images(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    image_size: int = 32,
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> TrainingImages:
    """The pretraining images of a data set: the training split, or the whole folder.

    Args:
        dataset: one of :data:`simclr_tf.config.DATASETS`.
        data_dir: the CIFAR-10 folder (optional) or the image folder (required for "folder").
        image_size: side that folder images are resized to.
        max_pixels: folder images with more pixels are skipped with a warning; ``None`` for
            no limit.

    Returns:
        A :class:`TrainingImages`.

    Raises:
        ValueError: for an unknown ``dataset`` or a folder without ``data_dir``.
        FileNotFoundError: if the data cannot be found.
    """
    _check_dataset(dataset, data_dir)
    if dataset == "folder":
        return FolderImages(data_dir, image_size, max_pixels)
    (images, labels), _ = _array_splits(dataset, data_dir)
    return ArrayImages(images, labels)


def _split_folder(listing: ImageFolder, seed: int) -> tuple[ImageFolder, ImageFolder]:
    index = np.arange(len(listing.file_paths))
    if listing.labeled:
        _, test_index = split_train_validation(listing.labels, FOLDER_TEST_FRACTION, seed)
    else:
        count = int(len(index) * FOLDER_TEST_FRACTION)
        test_index = np.sort(np.random.default_rng(seed).permutation(index)[:count])
    in_test = np.isin(index, test_index)
    return _reordered(listing, index[~in_test]), _reordered(listing, index[in_test])


def load_splits(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[Split, Split]:
    """Training and test images (uint8 ``[N, H, W, 3]``) and labels (int64 ``[N]`` or None).

    Args:
        dataset: one of :data:`simclr_tf.config.DATASETS`.
        data_dir: the CIFAR-10 folder (else ``SIMCLR_DATA_DIR``), or the image folder.
        image_size: side (or ``(height, width)``) that images of a folder are resized to.
        seed: seed of the train/test split of a folder without ``train/`` and ``test/``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``.

    Raises:
        ValueError: for an unknown ``dataset``, a folder without ``data_dir`` or without
            ``image_size``.
        FileNotFoundError: if the data cannot be found.
    """
    _check_dataset(dataset, data_dir)
    if dataset != "folder":
        return _array_splits(dataset, data_dir)
    if image_size is None:
        raise ValueError("dataset='folder' needs the encoder's image size to resize the images.")
    train_dir, test_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, "test")
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        train = list_image_folder(train_dir)
        test = list_image_folder(test_dir, train.labeled, train.class_names or None)
    else:
        train, test = _split_folder(list_image_folder(data_dir), seed)
    return FolderImages(train, image_size).to_arrays(), FolderImages(test, image_size).to_arrays()
