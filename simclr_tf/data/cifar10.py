"""CIFAR-10: 60,000 colour images of 32x32 pixels in 10 classes (Krizhevsky, 2009).

The data set is distributed as ``cifar-10-python.tar.gz``; extracted, it is a folder
``cifar-10-batches-py/`` with five training batches (``data_batch_1`` ... ``data_batch_5``) and
one test batch (``test_batch``) of 10,000 images each. Every batch is a pickled dict written by
Python 2, so its keys are byte strings: ``b"data"`` is a uint8 array of shape [10000, 3072] whose
rows hold the red plane, then the green plane, then the blue plane of one image (each 32x32,
row-major), and ``b"labels"`` is a list of 10,000 class indices in 0..9.

:func:`load_cifar10` finds the data (an argument, then the ``SIMCLR_DATA_DIR`` environment
variable, then the Keras download), reads the pickles with a restricted unpickler (see
:mod:`simclr_tf.data.safe_pickle`), checks everything it read and returns the images in the
usual channels-last layout [N, 32, 32, 3].
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path

import numpy as np

from simclr_tf.data.safe_pickle import load_pickle
from simclr_tf.data.sampling import Split

__all__ = [
    "BATCHES_FOLDER",
    "CIFAR10_CLASSES",
    "DATA_DIR_ENV_VAR",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "find_cifar10_batches",
    "load_cifar10",
    "read_cifar10_batch",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""Class names, indexed by label: ``CIFAR10_CLASSES[3] == "cat"``."""

DATA_DIR_ENV_VAR = "SIMCLR_DATA_DIR"
BATCHES_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGES_PER_BATCH = 10_000
IMAGE_SHAPE = (32, 32, 3)
_PIXELS_PER_IMAGE = 32 * 32 * 3


def find_cifar10_batches(data_dir: str | os.PathLike, *, argument: str = "data_dir") -> Path:
    """Returns the folder holding the six batch files, given it or its parent.

    Args:
        data_dir: a folder that is ``cifar-10-batches-py/`` or contains it.
        argument: how the caller received ``data_dir``, for error messages.

    Returns:
        The path of the folder that holds ``data_batch_1`` ... ``test_batch``.

    Raises:
        FileNotFoundError: if ``data_dir`` does not exist, is a file, or lacks batch files
            (the message lists the missing ones).
    """
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{argument}={os.fspath(data_dir)!r} does not exist. Point it at the folder that "
            f"contains {BATCHES_FOLDER}/ (extracted from cifar-10-python.tar.gz)."
        )
    if not root.is_dir():
        hint = (
            " Extract the archive first (tar xzf FILE) and pass the folder."
            if (root.name.endswith((".tar.gz", ".tgz", ".tar")))
            else ""
        )
        raise FileNotFoundError(
            f"{argument}={os.fspath(data_dir)!r} is a file, not a folder. Pass the folder that "
            f"contains {BATCHES_FOLDER}/ or is it.{hint}"
        )
    folder = root / BATCHES_FOLDER if (root / BATCHES_FOLDER).is_dir() else root
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{argument}={os.fspath(data_dir)!r}: {folder} lacks the CIFAR-10 batch file(s) "
            f"{', '.join(missing)}. Expected all of {', '.join((*TRAIN_BATCHES, TEST_BATCH))} "
            f"in {BATCHES_FOLDER}/ (the python version of CIFAR-10)."
        )
    return folder


def _get_key(batch: dict, key: str, source: str) -> object:
    """``batch[key]`` for byte-string keys (Python 2 files) or str keys (Python 3 files)."""
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    found = ", ".join(reprlib.repr(k) for k in list(batch)[:10])
    raise ValueError(f"{source}: no key b{key!r} in the batch dict (keys found: {found}).")


def _labels_array(raw_labels: object) -> np.ndarray | None:
    """``raw_labels`` as an integer array, or None when it is not a list of ints or an integer
    array. The type of every entry is checked first: ``np.asarray`` of a list that holds one
    large byte string many times would copy the string once per entry."""
    if isinstance(raw_labels, np.ndarray):
        labels = raw_labels
    elif isinstance(raw_labels, (list, tuple)) and all(type(x) is int for x in raw_labels):
        try:
            labels = np.asarray(raw_labels, dtype=np.int64)
        except OverflowError:
            return None
    else:
        return None
    return labels if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) else None


def _describe(value: object) -> str:
    """What ``value`` is, in a few words, for error messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(x).__name__ for x in value})
        return f"{type(value).__name__} of {len(value)} ({', '.join(kinds) or 'empty'})"
    return type(value).__name__


def read_cifar10_batch(path: str | os.PathLike) -> Split:
    """Reads and checks one CIFAR-10 batch file.

    Args:
        path: a batch file such as ``.../cifar-10-batches-py/data_batch_1``.

    Returns:
        ``(images, labels)``: uint8 [N, 32, 32, 3] and int64 [N].

    Raises:
        UnsafePickleError: if the pickle tries to reach a global other than numpy's array
            reconstruction, or to build more than a batch needs (see
            :func:`~simclr_tf.data.safe_pickle.load_pickle`).
        ValueError: naming the file and key when the file is truncated or the content is not
            a CIFAR-10 batch (not a dict, missing key, wrong dtype or shape, label count or
            range).
    """
    source = os.fspath(path)
    batch = load_pickle(source, encoding="bytes")
    if not isinstance(batch, dict):
        raise ValueError(
            f"{source}: expected a pickled dict with keys b'data' and b'labels', got "
            f"{type(batch).__name__}."
        )
    data = _get_key(batch, "data", source)
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == _PIXELS_PER_IMAGE
    ):
        raise ValueError(
            f"{source}, key b'data': expected a uint8 array of shape (N, {_PIXELS_PER_IMAGE}), "
            f"got {_describe(data)}."
        )
    raw_labels = _get_key(batch, "labels", source)
    labels = _labels_array(raw_labels)
    if labels is None:
        raise ValueError(
            f"{source}, key b'labels': expected a flat list of integers, got "
            f"{_describe(raw_labels)}."
        )
    if len(labels) != len(data):
        raise ValueError(
            f"{source}: {len(data)} images in b'data' but {len(labels)} entries in b'labels'; "
            "expected one label per image."
        )
    bad = np.flatnonzero((labels < 0) | (labels >= len(CIFAR10_CLASSES)))
    if bad.size:
        raise ValueError(
            f"{source}, key b'labels': labels must be in 0..9; {bad.size} are not, the first is "
            f"labels[{bad[0]}] = {labels[bad[0]]}."
        )
    # Each row is R plane, G plane, B plane: [N, 3, 32, 32] -> channels last [N, 32, 32, 3].
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _read_split(folder: Path, names: tuple[str, ...]) -> Split:
    images, labels = [], []
    for name in names:
        batch_images, batch_labels = read_cifar10_batch(folder / name)
        if len(batch_images) != IMAGES_PER_BATCH:
            raise ValueError(
                f"{folder / name}: expected {IMAGES_PER_BATCH:,} images, got "
                f"{len(batch_images):,}. The file is truncated or not from CIFAR-10."
            )
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def _check_split(images: np.ndarray, labels: np.ndarray, expected: int, what: str) -> Split:
    """Checks one split returned by Keras and returns it as uint8 [N, 32, 32, 3], int64 [N]."""
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.dtype != np.uint8 or images.shape != (expected, *IMAGE_SHAPE):
        raise ValueError(
            f"{what}: expected uint8 images of shape ({expected}, 32, 32, 3), got "
            f"{images.dtype} {images.shape}."
        )
    if labels.shape != (expected,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{what}: expected {expected} integer labels, got {labels.dtype} {labels.shape}."
        )
    if labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
        raise ValueError(
            f"{what}: labels must be in 0..9, got min {labels.min()} and max {labels.max()}."
        )
    return images, labels.astype(np.int64)


def _load_with_keras() -> tuple[Split, Split]:
    """The Keras cache or download (``~/.keras/datasets``; the archive's hash is checked)."""
    import keras

    what = "keras.datasets.cifar10.load_data()"
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:  # Keras raises a bare Exception when the download fails.
        raise FileNotFoundError(
            "CIFAR-10 not found: no data_dir was given, SIMCLR_DATA_DIR is not set, and "
            f"{what} failed ({type(exc).__name__}: {exc}). Point at a local copy of the python "
            "version of CIFAR-10 (a folder that contains cifar-10-batches-py/ or is it): "
            "load_cifar10(data_dir='/path/to/cifar10') or export SIMCLR_DATA_DIR=/path/to/cifar10."
        ) from exc
    train = _check_split(x_train, y_train, 5 * IMAGES_PER_BATCH, f"{what} training split")
    test = _check_split(x_test, y_test, IMAGES_PER_BATCH, f"{what} test split")
    return train, test


def load_cifar10(data_dir: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Loads the full CIFAR-10 data set, like ``keras.datasets.cifar10.load_data()``.

    The data is looked for, in order: in ``data_dir``; in the folder named by the
    ``SIMCLR_DATA_DIR`` environment variable; in the Keras cache, downloading it there if
    needed. A folder may contain ``cifar-10-batches-py/`` or be it. Labels are returned flat
    ([N], int64), not as Keras's [N, 1] uint8 column, so that they index ``CIFAR10_CLASSES``
    directly.

    Args:
        data_dir: folder with the python version of CIFAR-10, or None to use the
            environment variable or Keras.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images [50000, 32, 32, 3] and
        [10000, 32, 32, 3], int64 labels [50000] and [10000] in 0..9.

    Raises:
        FileNotFoundError: if ``data_dir`` (or ``SIMCLR_DATA_DIR``) does not hold the six batch
            files, or if neither is given and the Keras download fails (for example offline).
        UnsafePickleError: if a batch file is a pickle that tries to call code.
        ValueError: naming the file, key, expected and received value when the data is not
            CIFAR-10 as published (shape, dtype, label range, 10,000 images per batch).
    """
    if data_dir is not None:
        folder = find_cifar10_batches(data_dir, argument="data_dir")
    elif os.environ.get(DATA_DIR_ENV_VAR):
        folder = find_cifar10_batches(os.environ[DATA_DIR_ENV_VAR], argument=DATA_DIR_ENV_VAR)
    else:
        return _load_with_keras()
    return _read_split(folder, TRAIN_BATCHES), _read_split(folder, (TEST_BATCH,))
