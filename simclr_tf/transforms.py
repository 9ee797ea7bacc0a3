"""SimCLR augmentation for one image at a time, in plain NumPy and OpenCV: the readable version.

This is how the augmentation of the SimCLR paper (Chen et al., 2020, appendix A) reads when
written for a single ``H x W x 3`` image, one small function per operation:

* :func:`random_resized_crop` cuts a random box (area and aspect ratio in given ranges) and
  resizes it back to the output size; :func:`horizontal_flip` mirrors the image;
* :func:`color_jitter` changes brightness, contrast, saturation and hue by random amounts, in
  a random order (:func:`adjust_brightness`, :func:`adjust_contrast`,
  :func:`adjust_saturation`, :func:`adjust_hue`); :func:`to_grayscale` drops the colour;
* :func:`gaussian_blur` and :func:`solarize` are the optional extras.

:class:`ImageTransforms` strings them together with the paper's probabilities and returns
two views of an image. The notebooks teach with this module, then switch to
:mod:`simclr_tf.augment`, which computes exactly the same operations for a whole batch inside
the training step, tens of times faster. Every function here takes its random parameters as
arguments, so the tests can feed the same parameters to both and compare the results (they
agree to about 1e-5 on values in [0, 1]).

Every function here takes one ``H x W x 3`` image and python numbers; the functions of the same
names in :mod:`simclr_tf.augment` (``to_grayscale``, ``adjust_hue``, ``color_jitter``, ...) take a
batch ``[B, H, W, 3]`` and one parameter per image.

Conventions (shared with :mod:`simclr_tf.augment`):

* images are float32 in [0, 1] after the first step (uint8 is divided by 255);
* a crop box is ``(y_min, x_min, y_max, x_max)`` in normalised coordinates: 0 is the centre
  of the first pixel and 1 the centre of the last (as ``tf.image.crop_and_resize``);
* every colour operation clips its result to [0, 1].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from simclr_tf.augment.config import (
    DEFAULT_HUE_METHOD,
    JITTER_OPERATIONS,
    RGB_TO_YIQ,
    AugmentConfig,
    check_hue_method,
)

_RGB_TO_YIQ = np.array(RGB_TO_YIQ, dtype=np.float32)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 (0..255) -> float32 (0..1); float images are assumed to be in [0, 1] already."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float; received dtype {image.dtype}.")
    return image.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Crop and flip
# ---------------------------------------------------------------------------------------------


def sample_crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    area: tuple[float, float] = (0.08, 1.0),
    aspect: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[float, float, float, float]:
    """Draws a crop box: area uniform in ``area``, aspect ratio log-uniform in ``aspect``.

    Returns:
        ``(y_min, x_min, y_max, x_max)`` in normalised coordinates.
    """
    for _ in range(attempts):
        crop_area = rng.uniform(*area)
        aspect_ratio = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
        # Sides as fractions of the image: w * h = area, (w * width) / (h * height) = aspect.
        box_width = math.sqrt(crop_area * aspect_ratio * height / width)
        box_height = math.sqrt(crop_area / aspect_ratio * width / height)
        if box_width <= 1 and box_height <= 1:
            y_min = rng.uniform() * (1 - box_height)
            x_min = rng.uniform() * (1 - box_width)
            return (y_min, x_min, y_min + box_height, x_min + box_width)
    return (0.0, 0.0, 1.0, 1.0)  # nothing fitted: use the whole image


def resized_crop(
    image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """Cuts ``box`` out of ``image`` and resizes it to ``size`` with bilinear interpolation.

    Output pixel (i, j) samples the image at row ``y_min * (H - 1) + i * step`` (and likewise
    for columns), spreading ``size`` points evenly from one edge of the box to the other.

    Args:
        image: float32 ``H x W x C``.
        box: ``(y_min, x_min, y_max, x_max)`` in normalised coordinates.
        size: output ``(height, width)``.

    Returns:
        float32 ``size[0] x size[1] x C``.
    """
    height, width = image.shape[:2]
    y_min, x_min, y_max, x_max = box
    rows = np.linspace(y_min * (height - 1), y_max * (height - 1), size[0], dtype=np.float32)
    cols = np.linspace(x_min * (width - 1), x_max * (width - 1), size[1], dtype=np.float32)
    map_x, map_y = np.meshgrid(cols, rows)
    return cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def random_resized_crop(
    image: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    area: tuple[float, float] = (0.08, 1.0),
    aspect: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> np.ndarray:
    """A random box of the image (see :func:`sample_crop_box`), resized to ``size``."""
    box = sample_crop_box(rng, image.shape[0], image.shape[1], area, aspect, attempts)
    return resized_crop(image, box, size)


def horizontal_flip(image: np.ndarray) -> np.ndarray:
    """Mirrors the image left to right."""
    return np.ascontiguousarray(image[:, ::-1])


# ---------------------------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------------------------


def _check_image(image: np.ndarray, function: str, batched: str | None = None) -> None:
    """Raises unless ``image`` is one ``H x W x 3`` image; ``batched`` names the function of
    :mod:`simclr_tf.augment` that takes a batch instead (default: the same name)."""
    if np.ndim(image) != 3 or np.shape(image)[2] != 3:
        raise ValueError(
            f"{function} takes one H x W x 3 RGB image; received shape {np.shape(image)}. "
            f"For a batch [B, H, W, 3] use simclr_tf.augment.{batched or function}."
        )


def grayscale(image: np.ndarray) -> np.ndarray:
    """Gray level of each pixel of one image (BT.601 weights, OpenCV's), in one channel.

    The batched version is :func:`simclr_tf.augment.grayscale`.

    Args:
        image: float32 ``H x W x 3``.

    Returns:
        float32 ``H x W`` (no channel axis).

    Raises:
        ValueError: if ``image`` is not one ``H x W x 3`` image.
    """
    _check_image(image, "grayscale")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """One image's gray version, in all three channels.

    The batched version is :func:`simclr_tf.augment.to_grayscale`.

    Args:
        image: float32 ``H x W x 3``.

    Returns:
        float32 ``H x W x 3`` with three equal channels.

    Raises:
        ValueError: if ``image`` is not one ``H x W x 3`` image.
    """
    _check_image(image, "to_grayscale")
    return cv2.cvtColor(grayscale(image), cv2.COLOR_GRAY2RGB)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiplies every pixel by ``factor`` (1: unchanged)."""
    return np.clip(image * np.float32(factor), 0.0, 1.0)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Moves every pixel towards (factor < 1) or away from the mean gray level."""
    mean = grayscale(image).mean()
    return np.clip(factor * image + (1 - factor) * mean, 0.0, 1.0).astype(np.float32)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blends the image with its gray version: 0 gray, 1 unchanged, > 1 more colourful."""
    gray = grayscale(image)[..., None]
    return np.clip(factor * image + (1 - factor) * gray, 0.0, 1.0).astype(np.float32)


def adjust_hue(image: np.ndarray, shift: float, method: str = DEFAULT_HUE_METHOD) -> np.ndarray:
    """Turns the colour wheel by ``shift`` of a full turn (in [-0.5, 0.5]).

    Args:
        image: float32 ``H x W x 3`` in [0, 1].
        shift: fraction of a turn.
        method: "yiq" (default, ``DEFAULT_HUE_METHOD``): rotate the chroma plane (I, Q) of the
            YIQ colour space, which keeps the luma Y. "hsv": convert to HSV, add to the hue
            angle, convert back (OpenCV's float HSV has the hue in degrees).

    Returns:
        float32 ``H x W x 3`` in [0, 1].

    Raises:
        ValueError: for an unknown method.
    """
    if check_hue_method(method, "method") == "hsv":
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * shift, 360.0)
        return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    if shift == 0:
        return image
    # A positive shift turns the colours the way the HSV hue grows (red to yellow).
    angle = -2 * math.pi * shift
    rotation = np.array(
        [
            [1, 0, 0],
            [0, math.cos(angle), -math.sin(angle)],
            [0, math.sin(angle), math.cos(angle)],
        ],
        dtype=np.float32,
    )
    matrix = np.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    return np.clip(image @ matrix.T.astype(np.float32), 0.0, 1.0)


def random_factor(rng: np.random.Generator, max_change: float) -> float:
    """A factor drawn uniformly from [1 - max_change, 1 + max_change] (never below 0)."""
    return rng.uniform(max(0.0, 1.0 - max_change), 1.0 + max_change)


def color_jitter(
    image: np.ndarray,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    order: tuple[int, ...] = (0, 1, 2, 3),
    hue_method: str = DEFAULT_HUE_METHOD,
) -> np.ndarray:
    """Applies the four jitter operations in ``order`` (indices into ``JITTER_OPERATIONS``).

    Args:
        image: float32 ``H x W x 3`` in [0, 1].
        brightness: brightness factor (1: unchanged).
        contrast: contrast factor (1: unchanged).
        saturation: saturation factor (1: unchanged).
        hue: hue shift in turns (0: unchanged).
        order: the operations' order, a permutation of 0..3.
        hue_method: "yiq" (default) or "hsv", see :func:`adjust_hue`.

    Returns:
        float32 ``H x W x 3`` in [0, 1].

    Raises:
        ValueError: for an unknown hue method.
    """
    check_hue_method(hue_method)
    for operation in order:
        name = JITTER_OPERATIONS[operation]
        if name == "brightness":
            image = adjust_brightness(image, brightness)
        elif name == "contrast":
            image = adjust_contrast(image, contrast)
        elif name == "saturation":
            image = adjust_saturation(image, saturation)
        else:
            image = adjust_hue(image, hue, hue_method)
    return image


# ---------------------------------------------------------------------------------------------
# Blur and solarise
# ---------------------------------------------------------------------------------------------


def gaussian_blur(image: np.ndarray, sigma: float, kernel_size: int) -> np.ndarray:
    """Gaussian blur with ``kernel_size`` taps (odd) and standard deviation ``sigma`` pixels.

    Borders are reflected without repeating the edge pixel (OpenCV's default).
    """
    if kernel_size <= 1 or sigma <= 0:
        return image
    return cv2.GaussianBlur(
        image,
        (kernel_size, kernel_size),
        sigmaX=sigma,
        sigmaY=sigma,
        borderType=cv2.BORDER_REFLECT_101,
    )


def solarize(image: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Inverts (x -> 1 - x) every pixel at or above ``threshold``."""
    return np.where(image >= threshold, 1.0 - image, image).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The whole recipe
# ---------------------------------------------------------------------------------------------


class ImageTransforms:
    """Makes two SimCLR views of one image, one operation after the other.

    Args:
        image_size: side of the square output views (an int), or ``(height, width)``.
        config: the probabilities and ranges (default ``AugmentConfig()``, the ImageNet
            recipe; ``AugmentConfig.preset("cifar")`` for CIFAR-10). The same object
            configures the batched :mod:`simclr_tf.augment`.
        seed: seed of the NumPy random generator (``None``: fresh randomness).

    Example:
        >>> transforms = ImageTransforms(32, AugmentConfig.preset("cifar"), seed=0)
        >>> view1, view2 = transforms(image)  # image: 32 x 32 x 3 uint8
    """

    def __init__(
        self,
        image_size: int | tuple[int, int],
        config: AugmentConfig | None = None,
        seed: int | None = None,
    ):
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(
                f"image_size must be a positive int or (height, width); received "
                f"image_size={image_size!r}."
            )
        self.image_size = tuple(int(side) for side in image_size)
        self.config = AugmentConfig() if config is None else config
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two independent views of ``image`` (``H x W x 3``, uint8 or float in [0, 1])."""
        _check_image(image, "ImageTransforms", batched="two_views")
        return self.augment(image), self.augment(image)

    def augment(self, image: np.ndarray) -> np.ndarray:
        """One random view: float32 ``image_size x 3`` in [0, 1]."""
        config, rng = self.config, self.rng
        view = to_float(image)
        view = random_resized_crop(
            view, self.image_size, rng, config.crop_area, config.crop_aspect, config.crop_attempts
        )
        if rng.uniform() < config.flip_prob:
            view = horizontal_flip(view)
        if rng.uniform() < config.color_prob:
            order = tuple(rng.permutation(4)) if config.color_random_order else (0, 1, 2, 3)
            view = color_jitter(
                view,
                brightness=random_factor(rng, config.brightness_range),
                contrast=random_factor(rng, config.contrast_range),
                saturation=random_factor(rng, config.saturation_range),
                hue=rng.uniform(-config.hue_range, config.hue_range),
                order=order,
                hue_method=config.hue_method,
            )
        if rng.uniform() < config.grayscale_prob:
            view = to_grayscale(view)
        if rng.uniform() < config.blur_prob:
            sigma = rng.uniform(*config.blur_sigma)
            view = gaussian_blur(view, sigma, config.blur_kernel_size(min(self.image_size)))
        if rng.uniform() < config.solarize_prob:
            view = solarize(view, config.solarize_threshold)
        return view
