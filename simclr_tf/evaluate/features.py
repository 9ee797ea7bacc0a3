"""Running a frozen encoder over a data set: feature extraction in batches, with a disk cache.

Every evaluation protocol starts the same way: compute the representation ``h = f(x)`` of each
training and test image once, then work on those vectors. The encoder can be

* an in-memory Keras model (float images in [0, 1] -> ``h``), e.g. straight after training, or
* the path of an exported SavedModel (``RUN_DIR/encoder``, see :mod:`simclr_tf.export`), whose
  ``serve`` endpoint takes uint8 pixels. Its image size comes from the export's metadata.

:class:`FeatureEncoder` hides the difference. Images go through it one batch at a time and the
features are written into one preallocated ``[N, D]`` array, so the only full-size arrays in
memory are the uint8 images and their features. Images whose size differs from the encoder's
are resized (bilinear) batch by batch.

Features can be cached as ``.npz`` files keyed by a fingerprint of the encoder's weights, so
that running several protocols, or the same protocol twice, pays for the forward passes once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

DEFAULT_BATCH_SIZE = 256


class FeatureEncoder:
    """A frozen encoder as a function from uint8 image batches to float32 features.

    Attributes:
        image_size: ``(height, width)`` the encoder expects, or ``None`` when any size works.
        keras_model: the Keras encoder (float images in [0, 1] -> ``h``) when there is one in
            memory, else ``None``.
        path: folder of the SavedModel when loaded from disk, else ``None``.
        metadata: the export's ``simclr_tf.json`` (empty for in-memory models).
    """

    def __init__(self, encoder: keras.Model | str | os.PathLike | FeatureEncoder):
        """Wraps an in-memory Keras encoder, or loads an exported SavedModel.

        Args:
            encoder: a Keras model (float ``[B, H, W, 3]`` in [0, 1] -> ``[B, D]``), the folder
                of an export written by :func:`simclr_tf.export.export_encoder`, or another
                ``FeatureEncoder`` (shared, not copied).

        Raises:
            FileNotFoundError: if a path does not exist or holds no export.
            NotADirectoryError: if a path is a file.
            ValueError: if the export's ``simclr_tf.json`` or SavedModel is damaged.
            TypeError: for anything else.
        """
        if isinstance(encoder, FeatureEncoder):
            self.__dict__.update(encoder.__dict__)
            return
        self.keras_model: keras.Model | None = None
        self.path: str | None = None
        self.metadata: dict[str, Any] = {}
        if isinstance(encoder, str | os.PathLike):
            self.path = os.path.abspath(os.fspath(encoder))
            self.metadata = read_metadata(encoder)
            height, width = self.metadata["image_size"]
            self.image_size: tuple[int, int] | None = (int(height), int(width))
            self._saved_model = _load_saved_model(self.path)
            self._serve = self._saved_model.serve
        elif isinstance(encoder, keras.Model):
            self.keras_model = encoder
            try:
                shape = tuple(encoder.input_shape[1:3])
            except (AttributeError, ValueError):  # a subclassed model that was never built
                shape = (None, None)
            self.image_size = shape if None not in shape else None
            # A partial, not a lambda: TensorFlow counts the tracings of every tf.function made
            # from one code object together, and warns of "excessive retracing" once a
            # notebook has wrapped five encoders; a partial is its own key.
            self._serve = tf.function(
                functools.partial(_scaled_call, encoder), reduce_retracing=True, autograph=False
            )
        else:
            raise TypeError(
                "encoder must be a keras.Model or the path of an exported encoder; received "
                f"{type(encoder).__name__}."
            )

    def __call__(self, images: np.ndarray | tf.Tensor) -> np.ndarray:
        """Features of one batch.

        Args:
            images: ``[B, H, W, 3]``, uint8 pixels, or float in [0, 1]. Resized to
                ``image_size`` when it differs.

        Returns:
            float32 ``[B, D]``.
        """
        return self._serve(self._prepare(images)).numpy().astype(np.float32, copy=False)

    def _prepare(self, images: np.ndarray | tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [B, H, W, 3]; received shape {images.shape}.")
        resize = self.image_size is not None and tuple(images.shape[1:3]) != self.image_size
        if images.dtype != tf.uint8 and not resize:
            images = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
        if resize:
            if images.dtype == tf.uint8:
                images = tf.cast(images, tf.float32) / 255.0
            images = tf.image.resize(images, self.image_size, antialias=True)
            images = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
        return images

    def fingerprint(self) -> str:
        """A short hash of the encoder's weights (and architecture), to key feature caches."""
        digest = hashlib.sha1()
        if self.keras_model is not None:
            digest.update(json.dumps(self.keras_model.get_config(), default=str).encode())
            for weight in self.keras_model.weights:
                digest.update(np.ascontiguousarray(np.asarray(weight.numpy())).tobytes())
        else:
            for root, _, files in sorted(os.walk(self.path)):
                for name in sorted(files):
                    with open(os.path.join(root, name), "rb") as handle:
                        for block in iter(lambda h=handle: h.read(1 << 20), b""):
                            digest.update(block)
        return digest.hexdigest()[:16]


def _scaled_call(encoder: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """``encoder`` in inference on uint8 ``images [B, H, W, 3]`` scaled to [0, 1]."""
    return encoder(tf.cast(images, tf.float32) / 255.0, training=False)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Checks that ``path`` is an exported encoder and returns its ``simclr_tf.json``.

    Cheap: the SavedModel itself is not loaded, so a command can check its ``--encoder``
    before any work.

    Args:
        path: the folder written by :func:`simclr_tf.export.export_encoder`.

    Returns:
        The metadata dict; its ``image_size`` is a pair of positive integers.

    Raises:
        FileNotFoundError: if ``path`` does not exist, or holds no SavedModel or no metadata.
        NotADirectoryError: if ``path`` is a file.
        ValueError: if ``simclr_tf.json`` is not JSON or has no valid ``image_size``.
    """
    from simclr_tf.export import METADATA_FILE, read_export_metadata

    folder = os.fspath(path)
    fix = (
        "pass the folder of an exported encoder, e.g. RUN_DIR/encoder from python -m "
        "simclr_tf.train"
    )
    if not os.path.exists(folder):
        raise FileNotFoundError(f"encoder={folder!r} does not exist: {fix}.")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"encoder={folder!r} is a file, not a folder: {fix}.")
    metadata_path = os.path.join(folder, METADATA_FILE)
    try:
        metadata = read_export_metadata(folder)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{metadata_path} is not valid JSON ({error}); export the encoder again "
            "(simclr_tf.export.export_encoder) or restore the file."
        ) from None
    size = metadata.get("image_size") if isinstance(metadata, dict) else None
    if not (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(isinstance(side, int) and side > 0 for side in size)
    ):
        raise ValueError(
            f"{metadata_path} must be a JSON object whose image_size is [height, width] in "
            f"pixels; received image_size={size!r}. Export the encoder again."
        )
    return metadata


def _load_saved_model(path: str):
    try:
        return tf.saved_model.load(path)
    except Exception as error:  # TF raises OSError, IndexError, OpError..., by damaged file
        raise ValueError(
            f"The SavedModel at {path!r} could not be loaded ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); it is damaged or incomplete. "
            "Export the encoder again, or copy the whole folder anew."
        ) from None


def check_features(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Checks the features and labels a classifier on frozen features is given.

    Args:
        train_features: float ``[N_train, D]``, non-empty.
        train_labels: one integer label per training row.
        test_features: float ``[N_test, D]``, non-empty, as wide as ``train_features``.
        test_labels: one integer label per test row, or ``None`` when there are none.

    Returns:
        The four as float32 features and int64 label vectors (``None`` stays ``None``).

    Raises:
        ValueError: for an empty or non-2-D feature array, a label count that does not match
            the rows, or features of different widths (the message names the array).
    """
    arrays = {"train": (train_features, train_labels), "test": (test_features, test_labels)}
    checked = []
    for split, (features, labels) in arrays.items():
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(
                f"{split}_features must be a non-empty 2-D array [N, D]; received shape "
                f"{features.shape}."
            )
        if labels is not None:
            labels = np.asarray(labels).astype(np.int64).reshape(-1)
            if labels.shape[0] != features.shape[0]:
                raise ValueError(
                    f"{split}_labels has {labels.shape[0]} entries but {split}_features has "
                    f"{features.shape[0]} rows; they must match."
                )
        checked += [features, labels]
    if checked[0].shape[1] != checked[2].shape[1]:
        raise ValueError(
            f"train_features have {checked[0].shape[1]} dimensions but test_features have "
            f"{checked[2].shape[1]}; both must come from the same encoder."
        )
    return tuple(checked)


def extract_features(
    encoder: keras.Model | str | os.PathLike | FeatureEncoder,
    images: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_path: str | os.PathLike | None = None,
) -> np.ndarray:
    """Representations of an array of images, computed batch by batch.

    Args:
        encoder: a Keras encoder, an export folder, or a :class:`FeatureEncoder`.
        images: uint8 ``[N, H, W, 3]`` (or float in [0, 1]).
        batch_size: images per forward pass (> 0).
        cache_path: optional ``.npz`` file. If it exists and holds ``N`` rows its features are
            returned without running the encoder; otherwise they are computed and saved there.

    Returns:
        float32 ``[N, D]``.

    Raises:
        ValueError: if ``images`` is not ``[N, H, W, 3]`` or ``batch_size`` is not positive.
    """
    if np.ndim(images) != 4 or np.shape(images)[-1] != 3:
        raise ValueError(f"images must be [N, H, W, 3]; received shape {np.shape(images)}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be > 0; received batch_size={batch_size!r}.")
    count = len(images)
    cached = _read_cache(cache_path, count)
    if cached is not None:
        return cached
    encoder = FeatureEncoder(encoder)
    features = None
    for start in range(0, count, batch_size):
        batch = encoder(images[start : start + batch_size])
        if features is None:
            features = np.empty((count, batch.shape[1]), dtype=np.float32)
        features[start : start + len(batch)] = batch
    if features is None:
        raise ValueError("images is empty: there is nothing to encode.")
    _write_cache(cache_path, features)
    return features


def _read_cache(cache_path: str | os.PathLike | None, count: int) -> np.ndarray | None:
    """The cached features if ``cache_path`` holds ``count`` rows, else ``None``."""
    if cache_path is None or not os.path.isfile(cache_path):
        return None
    with np.load(cache_path) as cache:
        features = cache["features"]
    return features if len(features) == count else None


def _write_cache(cache_path: str | os.PathLike | None, features: np.ndarray) -> None:
    """Writes the cache atomically: a temporary file, then a rename."""
    if cache_path is None:
        return
    cache_path = os.fspath(cache_path)
    os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
    partial = f"{cache_path}.partial.npz"
    np.savez(partial, features=features)
    os.replace(partial, cache_path)
