"""Evaluation data: the bundled sample, full CIFAR-10, or a folder of images, as arrays.

Every protocol works on uint8 images ``[N, H, W, 3]`` and int64 labels ``[N]`` (``None`` when a
folder has no class subfolders) for a training and a test split. CIFAR-10 and the sample come
with both splits. A folder either holds ``train/`` and ``test/`` subfolders (each with one
folder per class, or only images), or is split here: 20 % of each class (or of the images, when
unlabelled) goes to the test split, chosen with a seed.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from simclr_tf.evaluation.linear_probe import split_train_validation

DATASETS = ("sample", "cifar10", "folder")
FOLDER_TEST_FRACTION = 0.2

Split = tuple[np.ndarray, np.ndarray | None]


def load_evaluation_data(
    dataset: str,
    data_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[Split, Split]:
    """Training and test images (uint8 ``[N, H, W, 3]``) and labels (int64 ``[N]`` or None).

    Args:
        dataset: "sample", "cifar10" or "folder".
        data_dir: the CIFAR-10 folder (else ``SIMCLR_DATA_DIR``), or the image folder.
        image_size: ``(height, width)`` images of a folder are resized to.
        seed: seed of the train/test split of a folder without ``train/`` and ``test/``.

    Raises:
        ValueError: for an unknown ``dataset`` or a folder without ``data_dir``.
        FileNotFoundError: if the data cannot be found.
    """
    if dataset == "sample":
        from simclr_tf.data.sample import load_sample

        return load_sample()
    if dataset == "cifar10":
        from simclr_tf.data.cifar10 import load_cifar10

        return load_cifar10(data_dir or os.environ.get("SIMCLR_DATA_DIR"))
    if dataset != "folder":
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; received {dataset!r}.")
    if not data_dir:
        raise ValueError("dataset='folder' needs data_dir: pass --data_dir=PATH/TO/IMAGES.")
    if image_size is None:
        raise ValueError("dataset='folder' needs the encoder's image size to resize the images.")
    return _load_folder(data_dir, image_size, seed)


def _load_folder(data_dir: str, image_size: tuple[int, int], seed: int) -> tuple[Split, Split]:
    from simclr_tf.data.image_folder import list_image_folder, load_image_folder

    train_dir, test_dir = os.path.join(data_dir, "train"), os.path.join(data_dir, "test")
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        train = list_image_folder(train_dir)
        test = list_image_folder(test_dir, train.labeled, train.class_names or None)
    else:
        listing = list_image_folder(data_dir)
        index = np.arange(len(listing.file_paths))
        if listing.labeled:
            _, test_index = split_train_validation(listing.labels, FOLDER_TEST_FRACTION, seed)
        else:
            test_index = np.sort(np.random.default_rng(seed).permutation(index)[: len(index) // 5])
        in_test = np.isin(index, test_index)

        def part(mask: np.ndarray):
            return dataclasses.replace(
                listing,
                file_paths=tuple(np.asarray(listing.file_paths)[mask].tolist()),
                labels=None if not listing.labeled else tuple(np.asarray(listing.labels)[mask]),
            )

        train, test = part(~in_test), part(in_test)

    splits = []
    for listing in (train, test):
        stream = load_image_folder(listing, image_size, shuffle_files=False).batch(256)
        images, labels = [], []
        for element in stream:
            if listing.labeled:
                images.append(element[0].numpy())
                labels.append(element[1].numpy())
            else:
                images.append(element.numpy())
        splits.append((np.concatenate(images), np.concatenate(labels) if labels else None))
    return splits[0], splits[1]
