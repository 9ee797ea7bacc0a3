"""The bundled CIFAR-10 sample: a small, class-balanced subset that ships with the repository.

Pretraining on the full 50,000 images takes hours on a CPU, so notebooks, tests and quick
experiments use a fixed subset instead. It is *stratified* (every class has the same number of
images) and *deterministic* (the images are drawn with a seeded random generator), so every run
on every machine sees exactly the same data.

To fit as many images as possible into a 10 MB file, each image is stored as a lossless WebP
(the pixels come back bit for bit). On CIFAR-10 that costs about 1.8 KB per image, against
2.3 KB for PNG and 2.8 KB for zlib-compressed raw arrays (``scripts/make_sample.py
--compare_formats`` measures this). The file is an ordinary ``.npz`` that needs no pickle:

* ``x_train_webp`` / ``x_test_webp``: uint8 [total_bytes], all encoded images, back to back;
* ``x_train_offsets`` / ``x_test_offsets``: int64 [N + 1], image ``i`` is
  ``webp[offsets[i]:offsets[i + 1]]``;
* ``y_train`` / ``y_test``: int64 [N] labels in 0..9;
* ``train_index`` / ``test_index``: int64 [N], where each image sits in the arrays returned by
  :func:`~simclr_tf.data.cifar10.load_cifar10` on the copy it was drawn from;
* ``class_names``: str [10]; ``seed``: the seed of the selection.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from simclr_tf.data.cifar10 import CIFAR10_CLASSES, IMAGE_SHAPE
from simclr_tf.data.sampling import Split, stratified_indices

__all__ = [
    "DEFAULT_SAMPLE_PATH",
    "decode_webp_images",
    "encode_webp_images",
    "load_sample",
    "save_sample",
    "stratified_indices",
]

DEFAULT_SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "cifar10_sample.npz"
"""``data/cifar10_sample.npz`` at the root of the repository."""

_WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]  # OpenCV: quality above 100 means lossless.


def encode_webp_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encodes RGB images as lossless WebP, concatenated into one byte array.

    Args:
        images: uint8 [N, H, W, 3] RGB images.

    Returns:
        ``(encoded, offsets)``: uint8 [total_bytes] and int64 [N + 1]; image ``i`` is
        ``encoded[offsets[i]:offsets[i + 1]]``.
    """
    chunks = []
    for image in images:
        ok, encoded = cv2.imencode(".webp", np.ascontiguousarray(image[..., ::-1]), _WEBP_LOSSLESS)
        if not ok:
            raise RuntimeError("OpenCV failed to encode an image as WebP.")
        chunks.append(encoded.reshape(-1))
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(chunk) for chunk in chunks])
    encoded = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    return encoded, offsets


def decode_webp_images(
    encoded: np.ndarray, offsets: np.ndarray, what: str = "images"
) -> np.ndarray:
    """Inverse of :func:`encode_webp_images`.

    Args:
        encoded: uint8 [total_bytes] concatenated WebP files.
        offsets: int64 [N + 1] start of every image, then the end of the last one.
        what: name of the array, for error messages.

    Returns:
        uint8 [N, H, W, 3] RGB images.

    Raises:
        ValueError: naming the first image that does not decode to the expected shape.
    """
    images = np.empty((len(offsets) - 1, *IMAGE_SHAPE), dtype=np.uint8)
    for i in range(len(images)):
        bgr = cv2.imdecode(encoded[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape != IMAGE_SHAPE:
            got = "undecodable bytes" if bgr is None else f"shape {bgr.shape}"
            raise ValueError(f"{what}[{i}]: expected a {IMAGE_SHAPE} WebP image, got {got}.")
        images[i] = bgr[..., ::-1]
    return images


def save_sample(
    path: str | os.PathLike,
    train: Split,
    test: Split,
    *,
    train_index: np.ndarray,
    test_index: np.ndarray,
    seed: int,
) -> None:
    """Writes a sample file in the format :func:`load_sample` reads.

    Args:
        path: the ``.npz`` file to write.
        train: ``(images, labels)``, uint8 [N, 32, 32, 3] and int [N].
        test: the same for the test split.
        train_index: int [N], where each training image sits in the full data set.
        test_index: int [M], the same for the test images.
        seed: the seed the subset was drawn with.
    """
    arrays: dict[str, np.ndarray] = {}
    for split, (images, labels), index in (
        ("train", train, train_index),
        ("test", test, test_index),
    ):
        encoded, offsets = encode_webp_images(images)
        arrays[f"x_{split}_webp"] = encoded
        arrays[f"x_{split}_offsets"] = offsets
        arrays[f"y_{split}"] = np.asarray(labels, dtype=np.int64)
        arrays[f"{split}_index"] = np.asarray(index, dtype=np.int64)
    arrays["class_names"] = np.array(CIFAR10_CLASSES)
    arrays["seed"] = np.array(seed, dtype=np.int64)
    with open(path, "wb") as handle:  # np.savez would append ".npz" to a path without it.
        np.savez(handle, **arrays)


def load_sample(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Loads the bundled CIFAR-10 sample (see ``data/README.md``).

    Args:
        path: a sample file written by ``scripts/make_sample.py``; None means
            ``data/cifar10_sample.npz`` in the repository.

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` as :func:`load_cifar10` returns them: uint8
        images [N, 32, 32, 3] and int64 labels [N] in 0..9 (``CIFAR10_CLASSES[label]`` is the
        class name). The bundled file holds 450 training and 100 test images per class.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the key when the file is not a valid sample.
    """
    path = DEFAULT_SAMPLE_PATH if path is None else Path(path)
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"No CIFAR-10 sample at {os.fspath(path)!r}. Pass path= to a file written by "
            "scripts/make_sample.py, or regenerate the bundled one with "
            "`python scripts/make_sample.py --data_dir /path/to/cifar10`."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)} is not a readable .npz file: {exc}") from exc
    with archive:
        keys = ("x_train_webp", "x_train_offsets", "y_train", "x_test_webp", "x_test_offsets")
        missing = [key for key in (*keys, "y_test", "class_names") if key not in archive.files]
        if missing:
            raise ValueError(
                f"{os.fspath(path)} is not a CIFAR-10 sample: missing key(s) {', '.join(missing)}."
            )
        names = tuple(str(name) for name in archive["class_names"])
        if names != CIFAR10_CLASSES:
            raise ValueError(
                f"{os.fspath(path)}, key 'class_names': expected {CIFAR10_CLASSES}, got {names}."
            )
        splits = []
        for split in ("train", "test"):
            offsets = archive[f"x_{split}_offsets"]
            labels = archive[f"y_{split}"].astype(np.int64)
            if len(labels) != len(offsets) - 1:
                raise ValueError(
                    f"{os.fspath(path)}: {len(offsets) - 1} images in x_{split} but "
                    f"{len(labels)} labels in y_{split}."
                )
            if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
                raise ValueError(f"{os.fspath(path)}, key 'y_{split}': labels must be in 0..9.")
            images = decode_webp_images(
                archive[f"x_{split}_webp"], offsets, what=f"{os.fspath(path)}: x_{split}"
            )
            splits.append((images, labels))
    return splits[0], splits[1]
