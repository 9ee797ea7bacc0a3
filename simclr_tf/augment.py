"""SimCLR data augmentation, batched: every operation acts on a whole ``[B, H, W, 3]`` batch.

SimCLR learns by making two random *views* of each image and asking the network to recognise
that they belong together. The paper (Chen et al., 2020, appendix A) builds a view with:

1. a random resized crop (area uniform in [0.08, 1] of the image, aspect ratio in [3/4, 4/3]),
   resized back to the output size, and a horizontal flip with probability 0.5;
2. colour jitter with probability 0.8: brightness, contrast and saturation factors drawn from
   [1 - 0.8 s, 1 + 0.8 s] and a hue shift from [-0.2 s, 0.2 s] of a full turn, the four applied
   in a random order, where s is the colour strength (0.5 for CIFAR-10, 1.0 for ImageNet);
3. grayscale with probability 0.2;
4. a Gaussian blur with probability 0.5, sigma in [0.1, 2.0] and a kernel about 10 % of the
   side (ImageNet only; the CIFAR-10 recipe leaves it out);
5. optionally solarisation (not in SimCLR v1; BYOL uses it), off by default.

A teaching version that augments one image at a time with NumPy and OpenCV lives in
:mod:`simclr_tf.transforms`. This module computes the same thing for a whole batch at once,
so that it runs inside the training step, on the same device, fast enough to be a small part
of the step (tens of thousands of 32 px views per second on a 2-core CPU). Four ideas make that
possible:

* **Every random parameter is drawn per image**, as a tensor of shape ``[B]`` (or ``[B, 4]``
  for crop boxes), and "apply with probability p" is a per-image select (or a neutral
  parameter, such as a brightness factor of 1, for the images that skip an operation).
* **Every operation is batched arithmetic** with per-image parameters. The crop samples each
  image on its own grid of points with bilinear interpolation (gathers of rows, then of
  columns); a flip is the same crop read right to left. Brightness, contrast, saturation,
  grayscale and the (default, YIQ) hue rotation are all linear maps of a pixel's colour, so
  each is a per-image 3x3 matrix (plus an offset for contrast).
* **The random order of the four jitter operations** is done in four stages: at stage k every
  image applies the operation its own permutation puts at position k, by picking its matrix
  from the four, so all 24 orders occur at the cost of one operation per stage.
* **Randomness is stateless**: every random number is a function of a seed pair, made with
  ``tf.random.stateless_*`` ops. ``two_views(images, seed, step)`` folds the training step
  into the seed, so the same (seed, step) always gives the same views, on every run, inside
  ``tf.function`` with or without ``jit_compile=True`` (the random bits are the same with and
  without XLA).

By default (``AugmentConfig.jit_compile``) the augmentation is compiled by XLA as its own
cluster even when the training step is not: XLA fuses the element-wise work into a few passes
over the batch, which on a CPU is several times faster than running one TensorFlow kernel per
operation. ``benchmarks/augment_throughput.py`` measures it.

Conventions:

* Input: uint8 images are divided by 255; float images are assumed to be in [0, 1] already.
* Output: float32 in [0, 1], shape ``[B, S, S, 3]`` where S is ``config.output_size`` (by
  default the input's height and width, so the shape is unchanged).
* Crop boxes are ``[y_min, x_min, y_max, x_max]`` in normalised coordinates, the convention of
  ``tf.image.crop_and_resize``: 0 is the centre of the first pixel and 1 the centre of the
  last, and a box's area and aspect ratio are measured in these coordinates (the full box
  ``[0, 0, 1, 1]`` has area 1). The crop is resampled with bilinear interpolation exactly as
  ``tf.image.crop_and_resize`` does; it is written with gathers because ``CropAndResize`` has
  no XLA kernel and so would break ``jit_compile=True``.

How the crop is sampled, and how that differs from other code:

* The area is uniform in ``crop_area`` and the aspect ratio is log-uniform in ``crop_aspect``
  (so 3/4 and 4/3 are equally likely), as the paper's text and torchvision's
  ``RandomResizedCrop`` have it. The official SimCLR TensorFlow code instead calls
  ``tf.image.sample_distorted_bounding_box``, which draws the aspect ratio uniformly (not
  log-uniformly), then the crop *height* uniformly among whole pixels, so its areas lean
  towards small crops; it also resizes bicubically.
* A box that does not fit in the image is redrawn, ``crop_attempts`` times per image in
  parallel, and the first box that fits is used; if none fits (probability below 1e-8 with the
  defaults) the whole image is used, as in the official code.
* The box is continuous (sub-pixel), not rounded to whole pixels.

How colour jitter is defined (these follow torchvision, which the paper's appendix cites):

* brightness multiplies by a factor; contrast blends with the image's mean gray level;
  saturation blends with the image's grayscale; every step is clipped to [0, 1].
* gray levels use the ITU-R BT.601 weights (0.299, 0.587, 0.114), as OpenCV does.
* the hue shift is a fraction of a turn of the colour wheel. ``hue_method="yiq"`` (default)
  rotates the chroma plane of the YIQ colour space: it keeps each pixel's luma (gray level)
  and is a 3x3 matrix like the other operations, but is only an approximation of the HSV hue
  rotation that torchvision and the official code use. ``hue_method="hsv"`` is that exact
  rotation (it keeps each pixel's largest and smallest channel); it is not linear, so it is
  computed for the whole batch at each of the four stages, which makes the jitter about twice
  as slow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import keras
import tensorflow as tf

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights for R, G, B (those of OpenCV's RGB2GRAY)."""

JITTER_OPERATIONS = ("brightness", "contrast", "saturation", "hue")
"""The four colour-jitter operations; ``AugmentParameters.jitter_order`` indexes this tuple."""

HUE_METHODS = ("hsv", "yiq")
PRESETS = ("cifar", "imagenet")

# Each random choice has its own stream, derived from the batch seed by folding in a fixed
# number, so that adding an operation never changes the numbers another operation draws.
_STREAM_CROP = 1
_STREAM_FLIP = 3
_STREAM_JITTER_APPLY = 4
_STREAM_JITTER_FACTORS = 5
_STREAM_JITTER_ORDER = 6
_STREAM_GRAYSCALE = 7
_STREAM_BLUR_APPLY = 8
_STREAM_BLUR_SIGMA = 9
_STREAM_SOLARIZE = 10
_STREAM_VIEWS = 0x5EED  # two_views folds this in before the step

# RGB -> YIQ (NTSC) matrix; the inverse is computed from it.
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Every knob of the augmentation. Defaults are the paper's ImageNet values.

    Attributes:
        crop_area: range of the crop's area, as a fraction of the image.
        crop_aspect: range of the crop's aspect ratio (width / height); sampled log-uniformly.
        crop_attempts: boxes drawn per image; the first that fits inside the image is used.
        output_size: side of the square output views; ``None`` keeps the input's height and
            width.
        flip_prob: probability of a horizontal flip.
        color_strength: colour strength s; the jitter ranges are 0.8 s (brightness, contrast,
            saturation) and 0.2 s (hue) unless given explicitly below.
        color_prob: probability of applying colour jitter to an image.
        brightness: maximal relative brightness change; ``None`` means 0.8 * color_strength.
        contrast: maximal relative contrast change; ``None`` means 0.8 * color_strength.
        saturation: maximal relative saturation change; ``None`` means 0.8 * color_strength.
        hue: maximal hue shift as a fraction of a full turn (<= 0.5); ``None`` means
            0.2 * color_strength.
        color_random_order: apply the four jitter operations in a random order per image
            (paper); ``False`` uses brightness, contrast, saturation, hue.
        hue_method: "yiq" (rotation of the YIQ chroma plane: keeps luma, approximates the
            HSV rotation, and is a 3x3 matrix like the other jitter operations, so about twice
            as fast) or "hsv" (the exact HSV hue rotation of torchvision and the official code).
        grayscale_prob: probability of converting an image to gray (3 equal channels).
        blur_prob: probability of a Gaussian blur.
        blur_sigma: range of the blur's standard deviation, in pixels.
        blur_kernel_fraction: the blur kernel spans about this fraction of the output side
            (an odd number of taps: 3 at 32 px, 9 at 96 px, 23 at 224 px).
        solarize_prob: probability of solarising (pixels >= threshold become 1 - pixel).
        solarize_threshold: solarisation threshold in [0, 1].
        jit_compile: compile the augmentation with XLA as its own cluster, even when the
            surrounding training step is not compiled (several times faster on CPU, since
            XLA fuses the element-wise work into few passes over the batch). ``False`` runs
            the plain TensorFlow kernels, or whatever the caller compiles.
    """

    crop_area: tuple[float, float] = (0.08, 1.0)
    crop_aspect: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    crop_attempts: int = 10
    output_size: int | None = None
    flip_prob: float = 0.5
    color_strength: float = 1.0
    color_prob: float = 0.8
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    color_random_order: bool = True
    hue_method: str = "yiq"
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1
    solarize_prob: float = 0.0
    solarize_threshold: float = 0.5
    jit_compile: bool = True

    def __post_init__(self) -> None:
        for name in ("crop_area", "crop_aspect", "blur_sigma"):
            value = getattr(self, name)
            try:
                low, high = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} must be a pair (low, high) of numbers; received {name}={value!r}."
                ) from None
            if not 0.0 < low <= high:
                raise ValueError(f"{name} must satisfy 0 < low <= high; received {name}={value!r}.")
            object.__setattr__(self, name, (low, high))
        if self.crop_area[1] > 1.0:
            raise ValueError(
                f"crop_area must lie in (0, 1] (fractions of the image); received "
                f"crop_area={self.crop_area!r}."
            )
        for name in ("flip_prob", "color_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1]; received {name}={value!r}.")
        if self.color_strength < 0:
            raise ValueError(
                f"color_strength must be >= 0; received color_strength={self.color_strength!r}."
            )
        for name in ("brightness", "contrast", "saturation", "hue"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None; received {name}={value!r}.")
        if self.hue_range > 0.5:
            raise ValueError(
                f"the hue shift is a fraction of a turn and must be <= 0.5; received hue="
                f"{self.hue!r} with color_strength={self.color_strength!r} (0.2 * s when hue is "
                "None)."
            )
        if self.hue_method not in HUE_METHODS:
            raise ValueError(
                f"hue_method must be one of {', '.join(HUE_METHODS)}; received "
                f"hue_method={self.hue_method!r}."
            )
        if int(self.crop_attempts) != self.crop_attempts or self.crop_attempts < 1:
            raise ValueError(
                f"crop_attempts must be an integer >= 1; received crop_attempts="
                f"{self.crop_attempts!r}."
            )
        if self.output_size is not None and (
            int(self.output_size) != self.output_size or self.output_size < 1
        ):
            raise ValueError(
                f"output_size must be None or an integer >= 1; received output_size="
                f"{self.output_size!r}."
            )
        if self.blur_kernel_fraction < 0:
            raise ValueError(
                "blur_kernel_fraction must be >= 0; received blur_kernel_fraction="
                f"{self.blur_kernel_fraction!r}."
            )
        if not 0.0 <= self.solarize_threshold <= 1.0:
            raise ValueError(
                "solarize_threshold must be in [0, 1]; received solarize_threshold="
                f"{self.solarize_threshold!r}."
            )

    @property
    def brightness_range(self) -> float:
        """Maximal relative brightness change (0.8 s unless ``brightness`` is set)."""
        return 0.8 * self.color_strength if self.brightness is None else float(self.brightness)

    @property
    def contrast_range(self) -> float:
        """Maximal relative contrast change (0.8 s unless ``contrast`` is set)."""
        return 0.8 * self.color_strength if self.contrast is None else float(self.contrast)

    @property
    def saturation_range(self) -> float:
        """Maximal relative saturation change (0.8 s unless ``saturation`` is set)."""
        return 0.8 * self.color_strength if self.saturation is None else float(self.saturation)

    @property
    def hue_range(self) -> float:
        """Maximal hue shift in turns (0.2 s unless ``hue`` is set)."""
        return 0.2 * self.color_strength if self.hue is None else float(self.hue)

    def blur_kernel_size(self, side: int) -> int:
        """Number of taps of the blur kernel for images of ``side`` pixels (odd, >= 1)."""
        return 2 * (int(side * self.blur_kernel_fraction) // 2) + 1

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AugmentConfig:
        """The paper's recipe for CIFAR-10 or ImageNet, with ``overrides`` applied.

        Args:
            name: "cifar" (colour strength 0.5, no blur) or "imagenet" (colour strength 1.0,
                blur with probability 0.5).
            **overrides: any field of this class, e.g. ``crop_area=(0.2, 1.0)``.

        Returns:
            The configuration.

        Raises:
            ValueError: for an unknown preset or field name, or an invalid value.
        """
        presets = {
            "cifar": {"color_strength": 0.5, "blur_prob": 0.0},
            "imagenet": {"color_strength": 1.0, "blur_prob": 0.5},
        }
        if name not in presets:
            raise ValueError(
                f"preset name must be one of {', '.join(PRESETS)}; received name={name!r}."
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"Unknown AugmentConfig field(s): {', '.join(unknown)}; valid fields are "
                f"{', '.join(sorted(fields))}."
            )
        return cls(**{**presets[name], **overrides})


# --------------------------------------------------------------------------------------------
# Seeds and random numbers
# --------------------------------------------------------------------------------------------


def _seed_pair(seed: Any) -> tf.Tensor:
    """A python int, a scalar or a shape-[2] integer tensor as an int64 seed pair."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be an integer or integer tensor; received dtype {seed.dtype}.")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    if seed.shape.rank == 1 and seed.shape[0] == 2:
        return seed
    raise ValueError(f"seed must be a scalar or have shape [2]; received shape {seed.shape}.")


def _stream(seed: tf.Tensor, stream: int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, stream, alg="philox")


def _uniform(shape: Any, seed: tf.Tensor, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    """Uniform float32 numbers in [low, high) that are the same with and without XLA.

    ``tf.random.stateless_uniform`` for floats gives different numbers under XLA than with the
    plain kernels, while the integer bits agree; so we draw 32 random bits and keep the top 24
    as the mantissa of a number in [0, 1).
    """
    bits = tf.random.stateless_uniform(
        shape, seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    unit = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))
    return low + (high - low) * unit


def _bernoulli(shape: Any, seed: tf.Tensor, prob: float) -> tf.Tensor:
    return _uniform(shape, seed) < prob


# --------------------------------------------------------------------------------------------
# The individual operations, with explicit per-image parameters
# --------------------------------------------------------------------------------------------


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
    """Converts images to float32 in [0, 1].

    Args:
        images: ``[..., H, W, C]`` uint8 (divided by 255) or float (assumed in [0, 1]).

    Returns:
        float32 tensor of the same shape.

    Raises:
        ValueError: for integer dtypes other than uint8.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) * (1.0 / 255.0)
    if not images.dtype.is_floating:
        raise ValueError(
            f"images must be uint8 (0..255) or float (0..1); received dtype {images.dtype.name}. "
            "Cast them, e.g. tf.cast(images, tf.uint8)."
        )
    return tf.cast(images, tf.float32)


def sample_crop_boxes(
    seed: tf.Tensor,
    batch_size: Any,
    height: int,
    width: int,
    area: tuple[float, float] = (0.08, 1.0),
    aspect: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    attempts: int = 10,
) -> tf.Tensor:
    """Draws one random crop box per image.

    Args:
        seed: int32/int64 tensor of shape [2].
        batch_size: number of boxes B (int or scalar tensor).
        height: image height in pixels (sets what aspect ratio means in normalised units).
        width: image width in pixels.
        area: range of the box area, as a fraction of the image; sampled uniformly.
        aspect: range of the aspect ratio width / height (in pixels); sampled log-uniformly.
        attempts: boxes drawn per image; the first that fits is kept, else the full image.

    Returns:
        float32 ``[B, 4]`` boxes ``[y_min, x_min, y_max, x_max]`` in normalised coordinates.
    """
    shape = tf.stack([batch_size, attempts])
    crop_area = _uniform(shape, _stream(seed, 0), area[0], area[1])
    log_aspect = _uniform(shape, _stream(seed, 1), math.log(aspect[0]), math.log(aspect[1]))
    aspect_ratio = tf.exp(log_aspect)
    # Box sides in normalised units: w * h = area and (w * width) / (h * height) = aspect.
    box_width = tf.sqrt(crop_area * aspect_ratio * (height / width))
    box_height = tf.sqrt(crop_area / aspect_ratio * (width / height))
    fits = (box_width <= 1.0) & (box_height <= 1.0)
    first_fit = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    any_fit = tf.reduce_any(fits, axis=1)
    box_width = tf.where(any_fit, tf.gather(box_width, first_fit, axis=1, batch_dims=1), 1.0)
    box_height = tf.where(any_fit, tf.gather(box_height, first_fit, axis=1, batch_dims=1), 1.0)
    position = _uniform(tf.stack([batch_size, 2]), _stream(seed, 2))
    y_min = position[:, 0] * (1.0 - box_height)
    x_min = position[:, 1] * (1.0 - box_width)
    return tf.stack([y_min, x_min, y_min + box_height, x_min + box_width], axis=1)


def _bilinear_weights(positions: tf.Tensor, size: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Lower index, upper index and upper weight of positions along an axis of ``size``."""
    lower = tf.floor(positions)
    weight = positions - lower
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, size - 1)
    return tf.clip_by_value(lower, 0, size - 1), upper, weight


def resized_crop(images: tf.Tensor, boxes: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Crops each image to its own box and resizes it, with bilinear interpolation.

    Gives the same result as ``tf.image.crop_and_resize(images, boxes, range(B), size)``
    (which has no XLA kernel). A box with ``x_min > x_max`` gives a horizontally flipped crop.

    Args:
        images: float ``[B, H, W, C]``.
        boxes: float ``[B, 4]`` boxes ``[y_min, x_min, y_max, x_max]`` in normalised
            coordinates (0: centre of the first pixel, 1: centre of the last).
        size: output ``(height, width)``.

    Returns:
        float32 ``[B, size[0], size[1], C]``.
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    out_height, out_width = size

    def grid(start: tf.Tensor, stop: tf.Tensor, count: int, extent: tf.Tensor) -> tf.Tensor:
        scale = tf.cast(extent - 1, tf.float32)
        if count == 1:  # crop_and_resize samples the box centre
            return ((start + stop) * 0.5 * scale)[:, None]
        steps = tf.range(count, dtype=tf.float32)
        return start[:, None] * scale + steps * ((stop - start) * scale / (count - 1))[:, None]

    rows = grid(boxes[:, 0], boxes[:, 2], out_height, height)  # [B, out_height]
    cols = grid(boxes[:, 1], boxes[:, 3], out_width, width)  # [B, out_width]
    top, bottom, row_weight = _bilinear_weights(rows, height)
    left, right, col_weight = _bilinear_weights(cols, width)
    top_rows = tf.gather(images, top, axis=1, batch_dims=1)
    bottom_rows = tf.gather(images, bottom, axis=1, batch_dims=1)
    sampled = top_rows + row_weight[:, :, None, None] * (bottom_rows - top_rows)
    left_cols = tf.gather(sampled, left, axis=2, batch_dims=1)
    right_cols = tf.gather(sampled, right, axis=2, batch_dims=1)
    return left_cols + col_weight[:, None, :, None] * (right_cols - left_cols)


def flip_boxes(boxes: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Swaps x_min and x_max of the boxes where ``flip`` is true (a flipped crop).

    Args:
        boxes: ``[B, 4]`` normalised boxes.
        flip: bool ``[B]``.

    Returns:
        ``[B, 4]`` boxes.
    """
    swapped = tf.gather(boxes, [0, 3, 2, 1], axis=1)
    return tf.where(flip[:, None], swapped, boxes)


def horizontal_flip(images: tf.Tensor, flip: tf.Tensor | None = None) -> tf.Tensor:
    """Mirrors images left to right (all of them, or those where ``flip`` is true).

    Args:
        images: ``[B, H, W, C]``.
        flip: optional bool ``[B]``.

    Returns:
        Tensor of the same shape and dtype.
    """
    flipped = tf.reverse(images, axis=[2])
    if flip is None:
        return flipped
    return tf.where(flip[:, None, None, None], flipped, images)


def _gray_weights() -> tf.Tensor:
    return tf.constant(GRAY_WEIGHTS, tf.float32)


def grayscale(images: tf.Tensor) -> tf.Tensor:
    """Gray level of each pixel with BT.601 weights, as ``[B, H, W, 1]``."""
    return tf.reduce_sum(images * _gray_weights(), axis=-1, keepdims=True)


def _per_image(values: tf.Tensor) -> tf.Tensor:
    """``[B]`` -> ``[B, 1, 1, 1]`` for broadcasting against a batch of images."""
    return tf.reshape(tf.cast(values, tf.float32), [-1, 1, 1, 1])


# Brightness, contrast, saturation, grayscale and the YIQ hue rotation are all linear maps of
# a pixel's (R, G, B) values, plus a constant for contrast. So each is a per-image 3x3 matrix
# M (and offset c): pixel -> M @ pixel + c. One small routine applies any of them to a batch.


def apply_color_matrices(
    images: tf.Tensor, matrices: tf.Tensor, offsets: tf.Tensor | None = None
) -> tf.Tensor:
    """Maps every pixel ``p`` of image b to ``matrices[b] @ p + offsets[b]``.

    Written as three broadcast multiply-adds, which XLA fuses into one pass over the batch.

    Args:
        images: float ``[B, H, W, 3]``.
        matrices: float ``[B, 3, 3]``.
        offsets: optional float ``[B, 3]``.

    Returns:
        float32 ``[B, H, W, 3]`` (not clipped).
    """
    columns = tf.cast(matrices, tf.float32)[:, None, None, :, :]  # [B, 1, 1, 3 out, 3 in]
    mapped = (
        images[..., 0:1] * columns[..., 0]
        + images[..., 1:2] * columns[..., 1]
        + images[..., 2:3] * columns[..., 2]
    )
    if offsets is not None:
        mapped = mapped + tf.cast(offsets, tf.float32)[:, None, None, :]
    return mapped


def _scaled_identity(factors: tf.Tensor) -> tf.Tensor:
    return tf.cast(factors, tf.float32)[:, None, None] * tf.eye(3)


def _gray_projection() -> tf.Tensor:
    """The 3x3 matrix that replaces a pixel by its gray level in all three channels."""
    return tf.ones([3, 1]) * _gray_weights()[None, :]


def brightness_matrices(factors: tf.Tensor) -> tf.Tensor:
    """``[B]`` brightness factors -> ``[B, 3, 3]`` matrices ``f * I``."""
    return _scaled_identity(factors)


def saturation_matrices(factors: tf.Tensor) -> tf.Tensor:
    """``[B]`` saturation factors -> ``[B, 3, 3]``: a blend ``f * I + (1 - f) * gray``."""
    factors = tf.cast(factors, tf.float32)[:, None, None]
    return factors * tf.eye(3) + (1.0 - factors) * _gray_projection()


def yiq_hue_matrices(shifts: tf.Tensor) -> tf.Tensor:
    """``[B]`` hue shifts (turns) -> ``[B, 3, 3]`` RGB matrices rotating the YIQ chroma plane.

    Luma (Y) is kept; the chroma vector (I, Q) turns by ``shifts`` of a full turn, in the
    direction in which the HSV hue grows (red towards yellow and green).
    """
    to_yiq = tf.constant(_RGB_TO_YIQ, tf.float32)
    from_yiq = tf.linalg.inv(to_yiq)
    angle = -2.0 * math.pi * tf.cast(shifts, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    one, zero = tf.ones_like(cos), tf.zeros_like(cos)
    rotation = tf.stack(
        [
            tf.stack([one, zero, zero], axis=-1),
            tf.stack([zero, cos, -sin], axis=-1),
            tf.stack([zero, sin, cos], axis=-1),
        ],
        axis=1,
    )
    matrices = tf.einsum("ij,bjk,kl->bil", from_yiq, rotation, to_yiq)
    # A zero shift gives exactly the identity (the product above is only close to it).
    return tf.where(tf.equal(shifts, 0.0)[:, None, None], tf.eye(3), matrices)


def _mean_gray(images: tf.Tensor) -> tf.Tensor:
    """``[B]`` mean gray level of each image."""
    return tf.reduce_sum(tf.reduce_mean(images, axis=[1, 2]) * _gray_weights(), axis=-1)


def _contrast_offsets(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """``[B, 3]`` offsets ``(1 - f) * mean gray`` that complete a contrast change."""
    offsets = (1.0 - tf.cast(factors, tf.float32)) * _mean_gray(images)
    return tf.tile(offsets[:, None], [1, 3])


def _clip(images: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(images, 0.0, 1.0)


def adjust_brightness(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Multiplies each image by its factor and clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 leaves an image unchanged.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    return _clip(apply_color_matrices(images, brightness_matrices(factors)))


def adjust_contrast(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Scales each image's distance from its mean gray level, then clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 unchanged, 0 a flat gray image.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    offsets = _contrast_offsets(images, factors)
    return _clip(apply_color_matrices(images, _scaled_identity(factors), offsets))


def adjust_saturation(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Blends each image with its own grayscale version, then clips to [0, 1].

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        factors: ``[B]``; 1 unchanged, 0 gray, above 1 more saturated.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    return _clip(apply_color_matrices(images, saturation_matrices(factors)))


def to_grayscale(images: tf.Tensor, apply: tf.Tensor | None = None) -> tf.Tensor:
    """Replaces the images (or those where ``apply`` is true) by their gray level in 3 channels.

    Args:
        images: float ``[B, H, W, 3]``.
        apply: optional bool ``[B]``.

    Returns:
        float32 ``[B, H, W, 3]``.
    """
    if apply is None:
        return tf.broadcast_to(grayscale(images), tf.shape(images))
    matrices = tf.where(apply[:, None, None], _gray_projection(), tf.eye(3))
    return apply_color_matrices(images, matrices)


def _hue_shift_hsv(images: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Hue rotation in HSV space; ``shifts`` is ``[B, 1, 1, 1]`` in turns.

    Uses the closed form of HSV -> RGB: channel n is ``V - C * clip(min(k, 4 - k), 0, 1)``
    with ``k = (n + H / 60 deg) mod 6`` and n = 5, 3, 1 for R, G, B, where V is the largest
    channel and C the largest minus the smallest. The sector is decided by comparing the
    channels with each other (never by testing a recomputed maximum for equality), so the
    result stays right however XLA fuses or recomputes the inputs.
    """
    red, green, blue = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    red_is_max = (red >= green) & (red >= blue)
    green_is_max = ~red_is_max & (green >= blue)
    value = tf.where(red_is_max, red, tf.where(green_is_max, green, blue))
    chroma = value - tf.minimum(tf.minimum(red, green), blue)
    inverse_chroma = tf.math.reciprocal_no_nan(chroma)
    # Hue in sextants (60 degree sectors): the largest channel decides the sector.
    hue = tf.where(
        red_is_max,
        (green - blue) * inverse_chroma,
        tf.where(
            green_is_max,
            (blue - red) * inverse_chroma + 2.0,
            (red - green) * inverse_chroma + 4.0,
        ),
    )
    sector = tf.constant([5.0, 3.0, 1.0]) + (hue + 6.0 * shifts)
    sector = sector - 6.0 * tf.floor(sector * (1.0 / 6.0))  # mod 6, cheaper than floormod
    return value - chroma * tf.clip_by_value(tf.minimum(sector, 4.0 - sector), 0.0, 1.0)


def adjust_hue(images: tf.Tensor, shifts: tf.Tensor, method: str = "hsv") -> tf.Tensor:
    """Rotates each image's hue by its own shift, in turns (0.5 = half the colour wheel).

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        shifts: ``[B]`` in [-0.5, 0.5].
        method: "hsv" (exact; keeps each pixel's max and min channel) or "yiq" (rotation of
            the YIQ chroma plane; keeps luma, then clips to [0, 1]).

    Returns:
        float32 ``[B, H, W, 3]`` in [0, 1].

    Raises:
        ValueError: for an unknown method.
    """
    if method == "hsv":
        return _clip(_hue_shift_hsv(images, _per_image(shifts)))
    if method == "yiq":
        return _clip(apply_color_matrices(images, yiq_hue_matrices(shifts)))
    raise ValueError(f"method must be one of {', '.join(HUE_METHODS)}; received method={method!r}.")


def color_jitter(
    images: tf.Tensor,
    brightness: tf.Tensor,
    contrast: tf.Tensor,
    saturation: tf.Tensor,
    hue: tf.Tensor,
    order: tf.Tensor | None = None,
    hue_method: str = "hsv",
) -> tf.Tensor:
    """Applies the four jitter operations with per-image factors, in a per-image order.

    Each operation is followed by clipping to [0, 1], as in torchvision and the official
    code. The order is done in four stages: at stage k every image applies the operation
    ``order[b, k]``. Since brightness, contrast, saturation and the YIQ hue rotation are all
    per-image 3x3 colour matrices (plus an offset for contrast), a stage picks each image's
    matrix and applies them all in one pass. The HSV hue is not linear: it is computed for the
    whole batch at every stage and selected where an image's operation is the hue.

    Args:
        images: float ``[B, H, W, 3]`` in [0, 1].
        brightness: ``[B]`` brightness factors (1: unchanged).
        contrast: ``[B]`` contrast factors (1: unchanged).
        saturation: ``[B]`` saturation factors (1: unchanged).
        hue: ``[B]`` hue shifts in turns (0: unchanged).
        order: int ``[B, 4]``, each row a permutation of 0..3 indexing
            ``JITTER_OPERATIONS``; ``None`` means the fixed order 0, 1, 2, 3 for every image.
        hue_method: "hsv" or "yiq", see :func:`adjust_hue`.

    Returns:
        float32 ``[B, H, W, 3]`` in [0, 1].

    Raises:
        ValueError: for an unknown hue method.
    """
    if hue_method not in HUE_METHODS:
        raise ValueError(
            f"hue_method must be one of {', '.join(HUE_METHODS)}; received "
            f"hue_method={hue_method!r}."
        )
    if order is None:
        order = tf.zeros_like(tf.cast(brightness, tf.int32))[:, None] + tf.range(4)
    order = tf.cast(order, tf.int32)
    contrast = tf.cast(contrast, tf.float32)
    if hue_method == "yiq":
        hue_matrix = yiq_hue_matrices(hue)
    else:
        hue_matrix = tf.eye(3, batch_shape=tf.shape(contrast))
    # [B, 4, 3, 3]: each image's matrix for each operation, in JITTER_OPERATIONS order.
    matrices = tf.stack(
        [
            brightness_matrices(brightness),
            _scaled_identity(contrast),
            saturation_matrices(saturation),
            hue_matrix,
        ],
        axis=1,
    )
    for stage in range(4):
        operation = order[:, stage]
        matrix = tf.gather(matrices, operation, axis=1, batch_dims=1)
        is_contrast = tf.equal(operation, 1)[:, None]
        offsets = tf.where(is_contrast, _contrast_offsets(images, contrast), 0.0)
        jittered = _clip(apply_color_matrices(images, matrix, offsets))
        if hue_method == "hsv":
            is_hue = (tf.equal(operation, 3) & tf.not_equal(hue, 0.0))[:, None, None, None]
            jittered = tf.where(is_hue, _clip(_hue_shift_hsv(images, _per_image(hue))), jittered)
        images = jittered
    return images


def gaussian_blur(images: tf.Tensor, sigmas: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """Blurs each image with its own Gaussian, separably, with reflected borders.

    Each axis is a weighted sum of ``kernel_size`` shifted copies of the padded batch, with
    per-image weights; XLA fuses the sum into one pass. Borders are reflected without
    repeating the edge pixel (OpenCV's default ``BORDER_REFLECT_101``).

    Args:
        images: float ``[B, H, W, C]``.
        sigmas: ``[B]`` standard deviations in pixels; a sigma of 0 leaves an image unchanged.
        kernel_size: odd number of taps (>= 1), smaller than H and W.

    Returns:
        float32 ``[B, H, W, C]``.

    Raises:
        ValueError: if ``kernel_size`` is even or not smaller than the image.
    """
    radius = kernel_size // 2
    height, width = images.shape[1], images.shape[2]
    if kernel_size % 2 != 1 or radius >= min(height, width):
        raise ValueError(
            f"kernel_size must be odd and smaller than the image side; received "
            f"kernel_size={kernel_size} for {height}x{width} images."
        )
    if radius == 0:
        return images
    sigmas = tf.cast(sigmas, tf.float32)[:, None]
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    safe_sigmas = tf.where(sigmas > 0, sigmas, 1.0)
    kernels = tf.exp(-tf.square(offsets) / (2.0 * tf.square(safe_sigmas)))
    identity = tf.cast(tf.equal(offsets, 0.0), tf.float32)
    kernels = tf.where(sigmas > 0, kernels, identity)  # [B, k], not yet normalised
    taps = [_per_image(kernels[:, tap]) for tap in range(kernel_size)]
    total = _per_image(tf.reduce_sum(kernels, axis=1))

    # Each pass divides its weighted sum by the kernel's total (rather than normalising the
    # kernel first): a division is what keeps XLA from recomputing the first pass inside
    # every tap of the second, which would cost kernel_size times more work.
    padded = tf.pad(images, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode="REFLECT")
    images = tf.add_n([taps[t] * padded[:, :, t : t + width, :] for t in range(kernel_size)])
    images = images / total
    padded = tf.pad(images, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode="REFLECT")
    images = tf.add_n([taps[t] * padded[:, t : t + height, :, :] for t in range(kernel_size)])
    return images / total


def solarize(
    images: tf.Tensor, threshold: float = 0.5, apply: tf.Tensor | None = None
) -> tf.Tensor:
    """Inverts pixels at or above ``threshold`` (``x -> 1 - x``), in all or selected images.

    Args:
        images: float ``[B, H, W, C]`` in [0, 1].
        threshold: in [0, 1].
        apply: optional bool ``[B]``.

    Returns:
        float32 ``[B, H, W, C]``.
    """
    invert = images >= threshold
    if apply is not None:
        invert = invert & apply[:, None, None, None]
    return tf.where(invert, 1.0 - images, images)


# --------------------------------------------------------------------------------------------
# The whole augmentation
# --------------------------------------------------------------------------------------------


class AugmentParameters(NamedTuple):
    """Every random choice for a batch, one entry per image (B images)."""

    crop_boxes: tf.Tensor  # float32 [B, 4], before flipping
    flip: tf.Tensor  # bool [B]
    jitter: tf.Tensor  # bool [B]: colour jitter applied
    brightness: tf.Tensor  # float32 [B]
    contrast: tf.Tensor  # float32 [B]
    saturation: tf.Tensor  # float32 [B]
    hue: tf.Tensor  # float32 [B], turns
    jitter_order: tf.Tensor  # int32 [B, 4], permutations of 0..3
    grayscale: tf.Tensor  # bool [B]
    blur: tf.Tensor  # bool [B]
    blur_sigma: tf.Tensor  # float32 [B]
    solarize: tf.Tensor  # bool [B]


def sample_parameters(
    seed: tf.Tensor, batch_size: Any, height: int, width: int, config: AugmentConfig
) -> AugmentParameters:
    """Draws all random parameters for a batch of B images.

    Args:
        seed: int32/int64 tensor of shape [2].
        batch_size: B (int or scalar int tensor).
        height: input image height.
        width: input image width.
        config: the augmentation settings.

    Returns:
        The parameters, each a tensor with leading dimension B.
    """
    seed = _seed_pair(seed)
    batch = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    boxes = sample_crop_boxes(
        _stream(seed, _STREAM_CROP),
        batch[0],
        height,
        width,
        config.crop_area,
        config.crop_aspect,
        config.crop_attempts,
    )

    def factors(stream: tf.Tensor, max_change: float) -> tf.Tensor:
        return _uniform(batch, stream, max(0.0, 1.0 - max_change), 1.0 + max_change)

    factor_seeds = tf.random.experimental.stateless_split(
        _stream(seed, _STREAM_JITTER_FACTORS), 4, alg="philox"
    )
    if config.color_random_order:
        keys = _uniform(tf.concat([batch, [4]], 0), _stream(seed, _STREAM_JITTER_ORDER))
        order = tf.argsort(keys, axis=1, stable=True)
    else:
        order = tf.tile(tf.range(4)[None, :], tf.concat([batch, [1]], 0))
    return AugmentParameters(
        crop_boxes=boxes,
        flip=_bernoulli(batch, _stream(seed, _STREAM_FLIP), config.flip_prob),
        jitter=_bernoulli(batch, _stream(seed, _STREAM_JITTER_APPLY), config.color_prob),
        brightness=factors(factor_seeds[0], config.brightness_range),
        contrast=factors(factor_seeds[1], config.contrast_range),
        saturation=factors(factor_seeds[2], config.saturation_range),
        hue=_uniform(batch, factor_seeds[3], -config.hue_range, config.hue_range),
        jitter_order=tf.cast(order, tf.int32),
        grayscale=_bernoulli(batch, _stream(seed, _STREAM_GRAYSCALE), config.grayscale_prob),
        blur=_bernoulli(batch, _stream(seed, _STREAM_BLUR_APPLY), config.blur_prob),
        blur_sigma=_uniform(
            batch, _stream(seed, _STREAM_BLUR_SIGMA), config.blur_sigma[0], config.blur_sigma[1]
        ),
        solarize=_bernoulli(batch, _stream(seed, _STREAM_SOLARIZE), config.solarize_prob),
    )


def _check_images(images: tf.Tensor) -> tuple[int, int]:
    shape = images.shape
    if shape.rank != 4 or shape[-1] != 3 or shape[1] is None or shape[2] is None:
        raise ValueError(
            "images must be a batch [B, H, W, 3] of RGB images with known H and W; received "
            f"shape {shape}. Add a batch axis with images[None] for a single image."
        )
    return int(shape[1]), int(shape[2])


def apply_parameters(
    images: tf.Tensor, params: AugmentParameters, config: AugmentConfig
) -> tf.Tensor:
    """Augments a batch with given parameters (see :func:`sample_parameters`).

    Operations whose probability in ``config`` is 0 are skipped altogether.

    Args:
        images: uint8 or float ``[B, H, W, 3]`` (see :func:`to_unit_range`).
        params: the per-image parameters.
        config: the augmentation settings.

    Returns:
        float32 ``[B, S, S, 3]`` in [0, 1]; S is ``config.output_size`` or the input's H, W.
    """
    height, width = _check_images(tf.convert_to_tensor(images))
    images = to_unit_range(images)
    size = (config.output_size, config.output_size) if config.output_size else (height, width)
    boxes = params.crop_boxes
    if config.flip_prob > 0:
        boxes = flip_boxes(boxes, params.flip)
    views = resized_crop(images, boxes, size)
    if config.color_prob > 0:
        # Images without jitter get neutral factors, which leave them exactly unchanged.
        order = params.jitter_order if config.color_random_order else None
        views = color_jitter(
            views,
            tf.where(params.jitter, params.brightness, 1.0),
            tf.where(params.jitter, params.contrast, 1.0),
            tf.where(params.jitter, params.saturation, 1.0),
            tf.where(params.jitter, params.hue, 0.0),
            order,
            config.hue_method,
        )
    if config.grayscale_prob > 0:
        views = to_grayscale(views, params.grayscale)
    if config.blur_prob > 0:
        kernel_size = config.blur_kernel_size(min(size))
        if kernel_size > 1:
            sigmas = tf.where(params.blur, params.blur_sigma, 0.0)
            views = gaussian_blur(views, sigmas, kernel_size)
    if config.solarize_prob > 0:
        views = solarize(views, config.solarize_threshold, params.solarize)
    return tf.clip_by_value(views, 0.0, 1.0)


def _augment_batch(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    height, width = _check_images(images)
    params = sample_parameters(seed, tf.shape(images)[0], height, width, config)
    return apply_parameters(images, params, config)


# The same computation compiled by XLA as one cluster (traced once per config and shape).
_augment_batch_compiled = tf.function(_augment_batch, jit_compile=True, autograph=False)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """One random view of every image in a batch; each image gets its own random parameters.

    Args:
        images: uint8 or float ``[B, H, W, 3]``; uint8 is divided by 255, float is assumed to
            be in [0, 1].
        seed: int32/int64 tensor of shape [2]; the same seed gives the same views.
        config: the augmentation settings (with ``config.jit_compile`` the work is compiled
            by XLA).

    Returns:
        float32 ``[B, S, S, 3]`` in [0, 1]; S is ``config.output_size`` or the input's H, W.

    Raises:
        ValueError: if images are not ``[B, H, W, 3]`` or the seed is not an integer pair.
    """
    images = tf.convert_to_tensor(images)
    _check_images(images)
    seed = _seed_pair(seed)
    if config.jit_compile:
        return _augment_batch_compiled(images, seed, config)
    return _augment_batch(images, seed, config)


def _view_seeds(batch_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return _stream(batch_seed, 1), _stream(batch_seed, 2)


def _replica_seed(seed: tf.Tensor) -> tf.Tensor:
    """Folds the replica id into the seed when running on several replicas, so that the
    replicas' shards of a global batch get independent augmentations."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
    return tf.random.experimental.stateless_fold_in(seed, replica, alg="philox")


def two_views(
    images: tf.Tensor, seed: Any, step: Any, config: AugmentConfig | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """The two augmented views SimCLR compares, for a batch.

    The views are a pure function of (images, seed, step, config): the same seed and step
    give the same views, a different step gives different views. The two views are two
    ``augment_batch`` calls with seeds derived from (seed, step). Under a ``tf.distribute``
    strategy with several replicas the replica id is folded into the seed too, so each
    replica's shard of the global batch gets its own augmentations.

    Args:
        images: uint8 or float ``[B, H, W, 3]`` (float assumed in [0, 1]).
        seed: python int, or int scalar tensor (or an int pair of shape [2]).
        step: int scalar (tensor), e.g. the optimizer's iteration counter.
        config: the augmentation settings; ``None`` means ``AugmentConfig()`` (ImageNet
            recipe). Use ``AugmentConfig.preset("cifar")`` for CIFAR-10.

    Returns:
        Two float32 ``[B, S, S, 3]`` tensors in [0, 1].
    """
    config = AugmentConfig() if config is None else config
    images = tf.convert_to_tensor(images)
    _check_images(images)
    batch_seed = _stream(_seed_pair(seed), _STREAM_VIEWS)
    batch_seed = tf.random.experimental.stateless_fold_in(
        batch_seed, tf.cast(step, tf.int64), alg="philox"
    )
    first_seed, second_seed = _view_seeds(_replica_seed(batch_seed))
    return augment_batch(images, first_seed, config), augment_batch(images, second_seed, config)


# --------------------------------------------------------------------------------------------
# Keras layer
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="simclr_tf")
class SimCLRAugmentation(keras.layers.Layer):
    """SimCLR augmentation as a Keras layer: each call in training returns a fresh view.

    The layer keeps a step counter (a non-trainable int64 weight) that is folded into its
    seed and increased by one on every training call, so successive calls give different
    views and a layer built with the same seed gives the same sequence of views. No seed
    value is baked into a traced graph.

    With ``training=False`` the layer only converts to float32 in [0, 1] (and resizes to
    ``config.output_size`` when it is set). ``training`` defaults to True, as in Keras's own
    random preprocessing layers. The layer always computes in float32.

    Args:
        config: the augmentation settings (default ``AugmentConfig()``).
        seed: integer seed.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0, **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.config = AugmentConfig() if config is None else config
        self.seed = int(seed)

    def build(self, input_shape: Any) -> None:
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, training: bool = True) -> tf.Tensor:
        if not training:
            images = to_unit_range(inputs)
            if self.config.output_size:
                size = (self.config.output_size, self.config.output_size)
                images = tf.image.resize(images, size, method="bilinear")
            return images
        step = self.step.value
        self.step.assign_add(1)
        seed = tf.random.experimental.stateless_fold_in(
            _seed_pair(self.seed), tf.cast(step, tf.int64), alg="philox"
        )
        return augment_batch(inputs, _replica_seed(seed), self.config)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        size = self.config.output_size
        if size:
            return (input_shape[0], size, size, input_shape[3])
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        base = super().get_config()
        return {**base, "config": dataclasses.asdict(self.config), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SimCLRAugmentation:
        config = dict(config)
        augment = config.pop("config", None)
        augment = AugmentConfig(**augment) if isinstance(augment, dict) else augment
        return cls(config=augment, **config)
