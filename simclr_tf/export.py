"""Export the trained encoder f: a SavedModel for TensorFlow, a ``.keras`` file, a TFLite model.

Only the encoder is exported: the projection head g exists to make the contrastive task work
and is thrown away after pretraining (section 4.2 of the paper shows ``h`` transfers better than
``z``). :func:`export_encoder` writes one folder, ``RUN_DIR/encoder/``::

    saved_model.pb, variables/   the SavedModel: needs TensorFlow only (not Keras, not simclr_tf)
    simclr_tf.json               image size, width of h, endpoints, the training configuration
    encoder.keras                the Keras encoder, to fine-tune (needs Keras only)
    encoder.tflite               the same network for TensorFlow Lite (float32)

The SavedModel's endpoints (H and W are fixed to the training size, the batch is free)::

    serve(images: uint8 [N, H, W, 3], RGB pixels 0..255)         -> float32 [N, D]
    serve_float(images: float [N, H, W, 3], RGB values in [0, 1]) -> float32 [N, D]
    signatures["serving_default"](images=uint8 ...) -> {"output_0": float32 [N, D]}  (TF-Serving)
    signatures["serve_float"](images=float32 ...)   -> {"output_0": float32 [N, D]}

Both endpoints return the representation ``h`` (not the projection ``z``) and refuse what they
cannot take with an error that says what they take: ``serve`` any dtype but uint8 (a float
image in [0, 1] cast to uint8 would silently become a black image, int32 values above 255
would wrap), ``serve_float`` integer dtypes and values outside [0, 1] (pixels 0..255 passed as
floats), both images of another size or rank. A batch of 0 images gives ``[0, D]``. The
scaling to [0, 1] that training used is baked into ``serve``, so callers never need to know it.
``serve_float(x)`` equals ``serve(uint8 pixels)`` up to float rounding when ``x = pixels / 255``.

The signatures are what TF-Serving calls; it checks the dtype of the request itself. Called
from Python, a signature's ``ConcreteFunction`` refuses a tensor of another dtype but casts a
NumPy array to its dtype without a check (TensorFlow's behaviour): in Python, call ``serve``
and ``serve_float``, which check NumPy arrays too.

``encoder.keras`` holds the encoder as trained: float images in [0, 1] ``[B, H, W, 3]`` ->
``h``, every layer with the dtype policy it was trained with, ready for
``keras.saving.load_model`` and fine-tuning. ``encoder.tflite`` takes uint8 pixels like
``serve``; it always computes in float32 (an encoder trained in mixed_bfloat16 is converted
from a float32 copy of its weights, because TFLite has no bfloat16 kernels), with TFLite's
built-in operations only, so the plain TFLite runtime runs it.

The export is built in a hidden folder next to the target and renamed into place at the end, so
an interrupted export never leaves a half-written model at the target path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import keras
import tensorflow as tf

from simclr_tf import atomic

METADATA_FILE = "simclr_tf.json"
KERAS_FILE = "encoder.keras"
TFLITE_FILE = "encoder.tflite"

# Every dtype a caller might hand over; serve/serve_float answer each with a clear error or a
# result. (A dtype outside this list is refused by TensorFlow's own "no matching function".)
_CALLER_DTYPES = (
    tf.uint8,
    tf.int8,
    tf.uint16,
    tf.int16,
    tf.uint32,
    tf.int32,
    tf.uint64,
    tf.int64,
    tf.float16,
    tf.bfloat16,
    tf.float32,
    tf.float64,
    tf.bool,
)
_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


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
    *,
    include_keras: bool = True,
    include_tflite: bool = True,
) -> str:
    """Writes ``encoder`` as a SavedModel (plus a ``.keras`` and a TFLite file) in one folder.

    Args:
        encoder: the trained base encoder (float images in [0, 1] -> ``h``).
        path: target folder; created, or replaced when ``overwrite`` is true.
        image_size: training image side, or ``(height, width)``.
        overwrite: replace an existing export at ``path``. With ``False`` an existing folder
            raises instead.
        metadata: extra JSON-serialisable facts to record in ``simclr_tf.json`` (for example
            the training configuration).
        include_keras: also write ``encoder.keras`` (:data:`KERAS_FILE`) for Keras.
        include_tflite: also write ``encoder.tflite`` (:data:`TFLITE_FILE`) for TFLite.

    Returns:
        The export folder, as a string.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
        ValueError: if ``image_size`` is not positive, or if the encoder cannot be converted
            to TFLite's built-in operations (pass ``include_tflite=False`` to skip it).
    """
    target = os.path.abspath(os.fspath(path))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"An export already exists at {target!r}; pass overwrite=True or choose another path."
        )
    height, width = _image_hw(image_size)
    serving_model = build_serving_model(encoder, (height, width))
    dim = int(serving_model.output.shape[-1])
    staging = atomic.staging_folder(target, prefix="export")
    try:
        _write_saved_model(encoder, staging, height, width, dim)
        files = {}
        if include_keras:
            encoder.save(os.path.join(staging, KERAS_FILE))
            files["keras"] = KERAS_FILE
        if include_tflite:
            _write_tflite(encoder, os.path.join(staging, TFLITE_FILE), height, width)
            files["tflite"] = TFLITE_FILE
        facts = {
            "image_size": [height, width],
            "input": "uint8 [None, H, W, 3], RGB pixels 0..255",
            "output": f"float32 [None, {dim}], representation h",
            "endpoint": "serve",
            "endpoints": {
                "serve": f"uint8 [None, {height}, {width}, 3] RGB 0..255 -> float32 [None, {dim}]",
                "serve_float": (
                    f"float [None, {height}, {width}, 3] RGB in [0, 1] -> float32 [None, {dim}]"
                ),
            },
            "files": files,
            **(metadata or {}),
        }
        atomic.write_json(os.path.join(staging, METADATA_FILE), facts)
        atomic.replace_folder(staging, target)
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


# -- the SavedModel's endpoints -----------------------------------------------------------------


class _Contract:
    """What the endpoints take, and the errors that say so, inside their graphs."""

    def __init__(self, height: int, width: int, dim: int):
        self.height, self.width, self.dim = height, width, dim
        self.shape = f"[N, {height}, {width}, 3]"

    def spec(self, dtype: tf.DType, exact: bool = True) -> tf.TensorSpec:
        shape = (None, self.height, self.width, 3) if exact else None
        return tf.TensorSpec(shape, dtype, name="images")

    def fits(self, images: tf.Tensor) -> bool:
        """Whether the traced ``images`` are a batch of the right size (known at trace time)."""
        return images.shape.rank is not None and images.shape.is_compatible_with(
            [None, self.height, self.width, 3]
        )

    def refuse(self, *message: str | tf.Tensor) -> tf.Tensor:
        """An output that is never returned: the assertion before it fails with ``message``."""
        with tf.control_dependencies([tf.debugging.Assert(False, list(message), summarize=8)]):
            return tf.zeros([0, self.dim], tf.float32)

    def refuse_shape(self, images: tf.Tensor, endpoint: str) -> tf.Tensor:
        return self.refuse(
            f"{endpoint} takes a batch of RGB images {self.shape} (the training size: add a "
            "batch axis to a single image, resize images of other sizes); received shape",
            tf.shape(images),
        )


def _representation(encoder: keras.Model, contract: _Contract):
    """The one trace of the network that every endpoint calls (a function call, not a copy)."""

    @tf.function(input_signature=[contract.spec(tf.float32)])
    def representation(images: tf.Tensor) -> tf.Tensor:
        """``h`` of float32 images in [0, 1] of the right shape; ``[0, D]`` for no images."""
        # oneDNN's BatchNorm kernels fail on an empty batch: skip the network then.
        return tf.cond(
            tf.shape(images)[0] > 0,
            lambda: tf.cast(encoder(images, training=False), tf.float32),
            lambda: tf.zeros([0, contract.dim], tf.float32),
        )

    return representation


def _serve(representation, contract: _Contract):
    @tf.function
    def serve(images):
        if images.dtype != tf.uint8:
            return contract.refuse(
                f"serve takes uint8 RGB pixels 0..255 {contract.shape}; received dtype "
                f"{images.dtype.name}. Cast integer pixels that are within 0..255 to uint8; "
                "for float images with values in [0, 1] call serve_float instead."
            )
        if not contract.fits(images):
            return contract.refuse_shape(images, "serve")
        return representation(tf.cast(images, tf.float32) * (1.0 / 255.0))

    return serve


def _serve_float(representation, contract: _Contract):
    @tf.function
    def serve_float(images):
        if images.dtype not in _FLOAT_DTYPES:
            return contract.refuse(
                f"serve_float takes float RGB images with values in [0, 1] {contract.shape}; "
                f"received dtype {images.dtype.name}. For uint8 pixels 0..255 call serve."
            )
        if not contract.fits(images):
            return contract.refuse_shape(images, "serve_float")
        images = tf.cast(images, tf.float32)
        check = tf.debugging.Assert(
            tf.reduce_all((images >= 0.0) & (images <= 1.0)),
            [
                "serve_float takes values in [0, 1] (divide 0..255 pixels by 255, or call "
                "serve with uint8 pixels); received values from",
                tf.reduce_min(images),
                "to",
                tf.reduce_max(images),
            ],
        )
        with tf.control_dependencies([check]):
            return representation(tf.identity(images))

    return serve_float


class _Endpoints(tf.__internal__.tracking.AutoTrackable):
    """What the SavedModel holds: the two endpoints and the variables they read."""

    def __init__(self, encoder: keras.Model, height: int, width: int, dim: int):
        super().__init__()
        # Saved as attributes, as Keras' own export does: the reloaded object has them too.
        self.variables = [variable.value for variable in encoder.variables]
        self.trainable_variables = [variable.value for variable in encoder.trainable_variables]
        self.non_trainable_variables = [
            variable.value for variable in encoder.non_trainable_variables
        ]
        contract = _Contract(height, width, dim)
        representation = _representation(encoder, contract)
        self.serve = _serve(representation, contract)
        self.serve_float = _serve_float(representation, contract)
        # The working traces first: the restored function tries its traces in the order they
        # were made, and the catch-all traces (any dtype, any shape) only raise errors.
        uint8_trace = self.serve.get_concrete_function(contract.spec(tf.uint8))
        float_traces = {
            dtype: self.serve_float.get_concrete_function(contract.spec(dtype))
            for dtype in _FLOAT_DTYPES
        }
        for endpoint in (self.serve, self.serve_float):
            for dtype in _CALLER_DTYPES:
                endpoint.get_concrete_function(contract.spec(dtype, exact=False))
        self.signatures = {
            "serving_default": uint8_trace,
            "serve": uint8_trace,
            "serve_float": float_traces[tf.float32],
        }


def _write_saved_model(
    encoder: keras.Model, folder: str, height: int, width: int, dim: int
) -> None:
    endpoints = _Endpoints(encoder, height, width, dim)
    signatures = endpoints.signatures
    del endpoints.signatures  # not an attribute of the SavedModel, only its signatures
    tf.saved_model.save(endpoints, folder, signatures=signatures)


# -- TFLite -------------------------------------------------------------------------------------


def _float32_copy(encoder: keras.Model) -> keras.Model:
    """``encoder`` itself when it computes in float32, else a float32 clone with its weights."""
    if all(layer.compute_dtype == "float32" for layer in encoder.layers):
        return encoder

    def float32_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(encoder, clone_function=float32_layer)
    copy.set_weights(encoder.get_weights())
    return copy


def _write_tflite(encoder: keras.Model, path: str, height: int, width: int) -> None:
    """Converts the uint8 serving model of a float32 copy of ``encoder`` to TFLite at ``path``."""
    serving_model = build_serving_model(_float32_copy(encoder), (height, width))
    with tempfile.TemporaryDirectory(prefix=".tflite-", dir=os.path.dirname(path)) as plain:
        # A plain SavedModel (one uint8 endpoint, no checks): what the converter reads best.
        serving_model.export(plain, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(plain)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError and others
            raise ValueError(
                "The encoder could not be converted to TFLite built-in operations "
                f"({type(error).__name__}: {str(error).strip().splitlines()[0]}). Export "
                "without it: export_encoder(..., include_tflite=False)."
            ) from error
    with open(path, "wb") as handle:
        handle.write(flatbuffer)


def _image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = (int(side) for side in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive; received image_size={image_size!r}.")
    return height, width
