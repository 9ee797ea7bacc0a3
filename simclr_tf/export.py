"""Export the trained encoder f as a TensorFlow SavedModel.

Only the encoder is exported: the projection head g exists to make the contrastive task work
and is thrown away after pretraining (section 4.2 of the paper shows ``h`` transfers better than
``z``). The SavedModel is written with Keras' own ``model.export`` and needs neither Keras nor
``simclr_tf`` to be used:

    import tensorflow as tf
    encoder = tf.saved_model.load("runs/simclr/encoder")
    h = encoder.serve(images)        # images: uint8 [N, H, W, 3] -> h: float32 [N, D]

Serving signature (also registered as ``serving_default`` for TF-Serving)::

    serve(images: tf.uint8 [None, H, W, 3]) -> tf.float32 [None, D]
    signatures["serving_default"](images=...) -> {"output_0": tf.float32 [None, D]}

Pixels are raw 0..255 RGB values: the scaling to [0, 1] that training used is baked into the
graph, so callers never need to know it. ``H`` and ``W`` are fixed to the training size; the
batch dimension is free. A ``simclr_tf.json`` file beside ``saved_model.pb`` records the image
size, the representation width and the training configuration.

The export is written to a temporary folder next to the target and renamed into place at the
end, so an interrupted export never leaves a half-written model at the target path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import keras

METADATA_FILE = "simclr_tf.json"


def build_serving_model(encoder: keras.Model, image_size: int | tuple[int, int]) -> keras.Model:
    """Wraps ``encoder`` into a model that takes uint8 pixels and returns ``h``.

    Args:
        encoder: a model mapping float images in [0, 1], ``[B, H, W, 3]``, to ``h``, ``[B, D]``.
        image_size: the side (or ``(height, width)``) of the images the encoder was trained on.

    Returns:
        A Keras model: uint8 ``[B, H, W, 3]`` -> float32 ``[B, D]``.

    Raises:
        ValueError: if ``image_size`` is not positive.
    """
    height, width = _image_hw(image_size)
    images = keras.Input(shape=(height, width, 3), dtype="uint8", name="images")
    pixels = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="to_unit_range")(images)
    representation = encoder(pixels, training=False)
    representation = keras.layers.Activation("linear", dtype="float32", name="representation")(
        representation
    )
    return keras.Model(images, representation, name="simclr_encoder")


def export_encoder(
    encoder: keras.Model,
    path: str | os.PathLike,
    image_size: int | tuple[int, int],
    overwrite: bool = True,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Writes ``encoder`` as a SavedModel whose ``serve`` endpoint maps uint8 images to ``h``.

    Args:
        encoder: the trained base encoder (float images in [0, 1] -> ``h``).
        path: target folder; created, or replaced when ``overwrite`` is true.
        image_size: training image side, or ``(height, width)``.
        overwrite: replace an existing export at ``path``. With ``False`` an existing folder
            raises instead.
        metadata: extra JSON-serialisable facts to record in ``simclr_tf.json`` (for example
            the training configuration).

    Returns:
        The export folder, as a string.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
        ValueError: if ``image_size`` is not positive.
    """
    target = os.path.abspath(os.fspath(path))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"An export already exists at {target!r}; pass overwrite=True or choose another path."
        )
    height, width = _image_hw(image_size)
    serving_model = build_serving_model(encoder, (height, width))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        serving_model.export(staging, format="tf_saved_model", verbose=False)
        facts = {
            "image_size": [height, width],
            "input": "uint8 [None, H, W, 3], RGB pixels 0..255",
            "output": f"float32 [None, {int(serving_model.output.shape[-1])}], representation h",
            "endpoint": "serve",
            **(metadata or {}),
        }
        with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as handle:
            json.dump(facts, handle, indent=2, sort_keys=True, default=str)
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Reads ``simclr_tf.json`` from an export folder.

    Raises:
        FileNotFoundError: if ``path`` holds no SavedModel written by :func:`export_encoder`.
    """
    folder = os.fspath(path)
    if not os.path.isfile(os.path.join(folder, "saved_model.pb")):
        raise FileNotFoundError(
            f"No SavedModel at {folder!r}: expected a folder written by export_encoder, "
            "e.g. RUN_DIR/encoder."
        )
    metadata_path = os.path.join(folder, METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"{folder!r} is a SavedModel but has no {METADATA_FILE}.")
    with open(metadata_path, encoding="utf-8") as handle:
        return json.load(handle)


def _image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = (int(side) for side in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive; received image_size={image_size!r}.")
    return height, width


def _replace_folder(source: str, target: str) -> None:
    """Moves ``source`` to ``target``; an old ``target`` is removed only once the move is done."""
    if not os.path.exists(target):
        os.replace(source, target)
        return
    retired = tempfile.mkdtemp(prefix=".retired-", dir=os.path.dirname(target))
    os.rmdir(retired)
    os.replace(target, retired)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
