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
:mod:`simclr_tf.transforms`; its functions have the same names as the ones here but take one
``H x W x 3`` image. This package computes the same thing for a whole batch at once, so that it
runs inside the training step, on the same device, fast enough to be a small part of the step
(tens of thousands of 32 px views per second on a 2-core CPU). Four ideas make that possible:

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
  without XLA). Under a ``tf.distribute`` strategy an image's parameters depend on its place
  in the *global* batch, not on the replica that holds it, so one device and several make the
  same views of a batch.

By default (``AugmentConfig.jit_compile``) the augmentation is compiled by XLA as its own
cluster even when the training step is not (see :mod:`~simclr_tf.augment.views`).

Which module holds what (every name below is also importable from this package, e.g.
``from simclr_tf.augment import AugmentConfig, two_views``):

* :mod:`~simclr_tf.augment.config`: :class:`AugmentConfig` and the constants (gray weights,
  the YIQ matrix, jitter operations, hue methods, presets). Plain Python, no TensorFlow: the
  NumPy reference and the run configuration import it.
* :mod:`~simclr_tf.augment.seeds`: seed pairs and the named random streams.
* :mod:`~simclr_tf.augment.geometry`: crop boxes, the resized crop, flips; how the crop is
  sampled and how that differs from other code.
* :mod:`~simclr_tf.augment.color`: colour matrices, brightness, contrast, saturation, hue,
  grayscale, colour jitter; how each is defined.
* :mod:`~simclr_tf.augment.filters`: Gaussian blur and solarisation.
* :mod:`~simclr_tf.augment.views`: the parameters of a batch, one view
  (:func:`augment_batch`) and the two views training uses (:func:`two_views`).
* :mod:`~simclr_tf.augment.layer`: :class:`SimCLRAugmentation`, the Keras layer.

Importing this package is cheap: each name is imported from its module on first use, so
``import simclr_tf.augment.config`` does not load TensorFlow.

Conventions:

* Input: uint8 images are divided by 255; float images are assumed to be in [0, 1] already.
* Output: float32 in [0, 1], shape ``[B, S, S, 3]`` where S is ``config.output_size`` (by
  default the input's height and width, so the shape is unchanged).
* Crop boxes are ``[y_min, x_min, y_max, x_max]`` in normalised coordinates, the convention of
  ``tf.image.crop_and_resize``: 0 is the centre of the first pixel and 1 the centre of the
  last.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module of this package that defines it.
_EXPORTS = {
    "AugmentConfig": "config",
    "DEFAULT_HUE_METHOD": "config",
    "GRAY_WEIGHTS": "config",
    "HUE_METHODS": "config",
    "JITTER_OPERATIONS": "config",
    "PRESETS": "config",
    "check_hue_method": "config",
    "sample_crop_boxes": "geometry",
    "resized_crop": "geometry",
    "flip_boxes": "geometry",
    "horizontal_flip": "geometry",
    "apply_color_matrices": "color",
    "brightness_matrices": "color",
    "saturation_matrices": "color",
    "yiq_hue_matrices": "color",
    "adjust_brightness": "color",
    "adjust_contrast": "color",
    "adjust_saturation": "color",
    "adjust_hue": "color",
    "color_jitter": "color",
    "grayscale": "color",
    "to_grayscale": "color",
    "gaussian_blur": "filters",
    "solarize": "filters",
    "to_unit_range": "views",
    "AugmentParameters": "views",
    "sample_parameters": "views",
    "apply_parameters": "views",
    "augment_batch": "views",
    "two_views": "views",
    "SimCLRAugmentation": "layer",
}

_SUBMODULES = ("color", "config", "filters", "geometry", "layer", "seeds", "views")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it here too
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
