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

import hashlib
import json
import os
from collections.abc import Iterable
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
            FileNotFoundError: if a path holds no export.
            TypeError: for anything else.
        """
        if isinstance(encoder, FeatureEncoder):
            self.__dict__.update(encoder.__dict__)
            return
        self.keras_model: keras.Model | None = None
        self.path: str | None = None
        self.metadata: dict[str, Any] = {}
        if isinstance(encoder, str | os.PathLike):
            from simclr_tf.export import read_export_metadata

            self.path = os.path.abspath(os.fspath(encoder))
            if not os.path.isdir(self.path):
                raise FileNotFoundError(
                    f"encoder={os.fspath(encoder)!r} does not exist: pass the folder of an "
                    "exported encoder, e.g. RUN_DIR/encoder written by python -m simclr_tf.train."
                )
            self.metadata = read_export_metadata(self.path)
            self._saved_model = tf.saved_model.load(self.path)
            height, width = self.metadata["image_size"]
            self.image_size: tuple[int, int] | None = (int(height), int(width))
            self._serve = self._saved_model.serve
        elif isinstance(encoder, keras.Model):
            self.keras_model = encoder
            try:
                shape = tuple(encoder.input_shape[1:3])
            except (AttributeError, ValueError):  # a subclassed model that was never built
                shape = (None, None)
            self.image_size = shape if None not in shape else None
            self._serve = tf.function(
                lambda images: encoder(tf.cast(images, tf.float32) / 255.0, training=False),
                reduce_retracing=True,
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
        return cached[0]
    encoder = FeatureEncoder(encoder)
    features = None
    for start in range(0, count, batch_size):
        batch = encoder(images[start : start + batch_size])
        if features is None:
            features = np.empty((count, batch.shape[1]), dtype=np.float32)
        features[start : start + len(batch)] = batch
    if features is None:
        raise ValueError("images is empty: there is nothing to encode.")
    _write_cache(cache_path, features, None)
    return features


def extract_dataset_features(
    encoder: keras.Model | str | os.PathLike | FeatureEncoder,
    dataset: Iterable,
    cache_path: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Representations (and labels, if any) of a batched ``tf.data.Dataset`` or other iterable.

    Args:
        encoder: a Keras encoder, an export folder, or a :class:`FeatureEncoder`.
        dataset: yields image batches ``[B, H, W, 3]``, or ``(images, labels)`` pairs.
        cache_path: optional ``.npz`` file, as for :func:`extract_features` (the row count of an
            iterable is unknown beforehand, so an existing cache is trusted as is).

    Returns:
        ``(features, labels)``: float32 ``[N, D]`` and int64 ``[N]``, or ``None`` for labels when
        the data set yields images only.
    """
    cached = _read_cache(cache_path, None)
    if cached is not None:
        return cached
    encoder = FeatureEncoder(encoder)
    feature_blocks: list[np.ndarray] = []
    label_blocks: list[np.ndarray] = []
    for element in dataset:
        if isinstance(element, tuple | list):
            images, labels = element[0], element[1]
            label_blocks.append(np.asarray(labels).astype(np.int64).reshape(-1))
        else:
            images = element
        feature_blocks.append(encoder(images))
    if not feature_blocks:
        raise ValueError("dataset is empty: there is nothing to encode.")
    features = np.concatenate(feature_blocks)
    labels = np.concatenate(label_blocks) if label_blocks else None
    _write_cache(cache_path, features, labels)
    return features, labels


def _read_cache(
    cache_path: str | os.PathLike | None, count: int | None
) -> tuple[np.ndarray, np.ndarray | None] | None:
    if cache_path is None or not os.path.isfile(cache_path):
        return None
    with np.load(cache_path) as cache:
        features = cache["features"]
        labels = cache["labels"] if "labels" in cache.files else None
    if count is not None and len(features) != count:
        return None
    return features, labels


def _write_cache(
    cache_path: str | os.PathLike | None, features: np.ndarray, labels: np.ndarray | None
) -> None:
    if cache_path is None:
        return
    cache_path = os.fspath(cache_path)
    os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
    arrays = {"features": features} if labels is None else {"features": features, "labels": labels}
    partial = f"{cache_path}.partial.npz"
    np.savez(partial, **arrays)
    os.replace(partial, cache_path)
