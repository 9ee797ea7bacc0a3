"""Checkers of notebook 01 (augmentation): the saturation blend and the two-view transform."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    first_match,
    format_vector,
    record_case,
    relative_error,
    run_check,
    to_numpy,
)

# -- the saturation blend --------------------------------------------------------------------------

MISTAKES["adjust_saturation"] = {
    "shape": "keep the shape [B, H, W, 3]: give the factors the shape [B, 1, 1, 1] "
    "(factors[:, None, None, None]) and the gray image a channel axis (gray[..., None]) so "
    "that they broadcast against the images.",
    "channel_mean": "the gray level is the BT.601 luma 0.299 R + 0.587 G + 0.114 B (a dot "
    "product with the last axis), not the plain mean of the three channels.",
    "no_clip": "clip the blend to [0, 1] with np.clip: factors above 1 push colours out of range.",
    "inverted": "factor 0 must give the gray image and factor 1 the original: "
    "f * x + (1 - f) * gray, not the other way round.",
}

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def check_adjust_saturation(fn: Callable[..., Any], tolerance: float = 1e-5) -> CheckResult:
    """Checks ``fn(images, factors)`` against :func:`simclr_tf.augment.adjust_saturation`.

    Args:
        fn: takes float images ``[B, H, W, 3]`` in [0, 1] (NumPy) and factors ``[B]`` and
            returns the saturation-adjusted images ``[B, H, W, 3]`` (NumPy or tensor).
        tolerance: largest relative error accepted.
    """
    from simclr_tf.augment import adjust_saturation

    name = "adjust_saturation"

    def body() -> str:
        rng = np.random.default_rng(1)
        cases = ([0.0, 1.0, 1.7], [0.3, 0.9, 2.5])
        worst = 0.0
        for index, factors in enumerate(cases, start=1):
            images = rng.uniform(0.0, 1.0, (3, 5, 4, 3)).astype(np.float32)
            factors = np.asarray(factors, np.float32)
            reference = adjust_saturation(images, factors).numpy()
            answer = to_numpy(fn(images.copy(), factors.copy()))
            case = record_case(
                f"case {index} of {len(cases)} (3 images 5x4, factors {format_vector(factors)})"
            )
            if answer.shape != reference.shape:
                fail(
                    name, f"{case}: expected shape {reference.shape}, got {answer.shape}.", "shape"
                )
            error = relative_error(answer, reference)
            worst = max(worst, error)
            if error > tolerance:
                f = factors[:, None, None, None]
                gray = (images @ _LUMA)[..., None]
                variants = {
                    "channel_mean": np.clip(
                        f * images + (1 - f) * images.mean(-1, keepdims=True), 0, 1
                    ),
                    "no_clip": f * images + (1 - f) * gray,
                    "inverted": np.clip((1 - f) * images + f * gray, 0, 1),
                }
                mistake = first_match(answer, variants, tolerance)
                fail(
                    name,
                    f"{case}: relative error {error:.1e} (tolerance {tolerance:.0e}).",
                    mistake,
                    None
                    if mistake
                    else "compute one pixel by hand: gray = 0.299 R + 0.587 G + 0.114 B, then "
                    "f * pixel + (1 - f) * gray, clipped to [0, 1].",
                )
        return (
            f"{len(cases)} cases agree with st.augment.adjust_saturation (relative error "
            f"{worst:.1e})."
        )

    return run_check(name, body)


# -- the two-view transform ------------------------------------------------------------------------

MISTAKES["image_transforms"] = {
    "not_two_views": "calling the object on an image returns a pair: "
    "`return self.augment(image), self.augment(image)`.",
    "shape": "each view is resized to image_size: cut the box out with "
    "st.transforms.resized_crop(view, box, self.size), where self.size = "
    "(image_size, image_size).",
    "uint8_range": "views are floats in [0, 1]: convert the uint8 image first with "
    "st.transforms.to_float(image).",
    "same_view_twice": "the two views of an image are identical: call augment twice, so that "
    "each view draws its own random parameters (do not augment once and return that view "
    "twice).",
    "crop_not_reference": "with crop_area=(1, 1) and every probability 0, a view is the whole "
    "image resized: draw the box with st.transforms.sample_crop_box(self.rng, height, width, "
    "config.crop_area, config.crop_aspect) and cut it with st.transforms.resized_crop.",
    "flip_ignored": "flip with st.transforms.horizontal_flip(view) when "
    "self.rng.uniform() < config.flip_prob.",
    "grayscale_ignored": "turn the view gray with st.transforms.to_grayscale(view) when "
    "self.rng.uniform() < config.grayscale_prob.",
    "crop_ignored": "the view shows the whole image: cut a random box out of it, "
    "st.transforms.sample_crop_box(self.rng, height, width, config.crop_area, "
    "config.crop_aspect), before resizing.",
    "aspect_ignored": "the box has the right area but is square: pass config.crop_aspect to "
    "st.transforms.sample_crop_box (its aspect ratio is drawn from that range).",
    "jitter_ignored": "no view had its colours changed: with probability config.color_prob "
    "apply st.transforms.color_jitter(view, brightness, contrast, saturation, hue, order), "
    "each factor drawn with st.transforms.random_factor(self.rng, config.brightness_range) "
    "(and the contrast and saturation ranges), the hue shift uniform in "
    "[-config.hue_range, config.hue_range].",
    "jitter_range": "draw the brightness factor with st.transforms.random_factor(self.rng, "
    "config.brightness_range): uniform in [1 - r, 1 + r].",
    "always_applied": "an operation ran on (nearly) every view: apply each one with its "
    "probability, e.g. `if self.rng.uniform() < config.color_prob:` (0.8 for the colour "
    "jitter), and likewise config.flip_prob and config.grayscale_prob.",
    "probability_inverted": "`self.rng.uniform() < p` is true with probability p; "
    "`self.rng.uniform() > p` applies the operation with probability 1 - p.",
    "rng_reseeded": "every call gives the same views: create the generator once, in __init__ "
    "(self.rng = np.random.default_rng(seed)), and draw every choice from it. A generator made "
    "anew in augment repeats the same 'random' view.",
    "seed_ignored": "two objects with the same seed give different views: draw every random "
    "choice from self.rng, not from np.random.* or the random module.",
}


def _ramp_image(size: int = 32) -> np.ndarray:
    """Channel 0 grows from 0 to 1 left to right, channel 1 top to bottom, channel 2 is 0.5."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    image = np.empty((size, size, 3), np.float32)
    image[..., 0] = ramp[None, :]
    image[..., 1] = ramp[:, None]
    image[..., 2] = 0.5
    return image


_TRANSFORMS = "image_transforms"
_PROBABILITIES = ("flip_prob", "color_prob", "grayscale_prob", "blur_prob")


def _cifar_recipe(**changes: Any) -> Any:
    """The cifar :class:`~simclr_tf.augment.AugmentConfig`, with ``changes``."""
    from simclr_tf.augment import AugmentConfig

    return AugmentConfig.preset("cifar", **changes)


def _pinned_recipe(**changes: Any) -> Any:
    """The cifar recipe with a full-image crop and every probability 0, then ``changes``: each
    check switches one thing on."""
    pinned = {
        "crop_area": (1.0, 1.0),
        "crop_aspect": (1.0, 1.0),
        **dict.fromkeys(_PROBABILITIES, 0.0),
    }
    return _cifar_recipe(**{**pinned, **changes})


def _is_gray(view: np.ndarray) -> bool:
    """Whether the three channels of ``view`` are equal at every pixel."""
    return np.ptp(view, axis=-1).max() < 1e-6


def _views_of(transforms: Any, image: np.ndarray, case: str) -> tuple[np.ndarray, ...]:
    """The two views ``transforms(image)`` returns, as float32 arrays checked to be in [0, 1]."""
    views = transforms(image)
    if not isinstance(views, (tuple, list)) or len(views) != 2:
        fail(
            _TRANSFORMS,
            f"{case}: calling the object returned {type(views).__name__}, not two views.",
            "not_two_views",
        )
    views = tuple(np.asarray(to_numpy(view), np.float32) for view in views)
    for view in views:
        if view.max() > 1.0 + 1e-5 or view.min() < -1e-5:
            fail(
                _TRANSFORMS,
                f"{case}: values span [{view.min():.3g}, {view.max():.3g}], expected [0, 1].",
                "uint8_range",
            )
    return views


def _check_output(transforms_class: Callable[..., Any], images: np.ndarray) -> None:
    """Views of the requested size, and two different views of at least one image."""
    image, cifar = images[0], _cifar_recipe()
    case = record_case("case 'output' (a 32x32 uint8 image, image_size=24, the cifar recipe)")
    for view in _views_of(transforms_class(24, cifar, 0), image, case):
        if view.shape != (24, 24, 3):
            fail(
                _TRANSFORMS,
                f"{case}: a view has shape {view.shape}, expected (24, 24, 3).",
                "shape",
            )
    case = record_case("case 'two views' (8 images, the cifar recipe, seed 0)")
    transforms = transforms_class(32, cifar, 0)
    identical = sum(np.array_equal(*_views_of(transforms, one, case)) for one in images)
    if identical == len(images):
        first = _views_of(transforms, image, case)[0]
        again = _views_of(transforms, image, case)[0]
        fail(
            _TRANSFORMS,
            f"{case}: the two views were identical for all {identical} images.",
            "rng_reseeded" if np.array_equal(first, again) else "same_view_twice",
        )


def _check_calls(transforms_class: Callable[..., Any], image: np.ndarray) -> None:
    """A second call on the same image gives new views."""
    case = record_case("case 'calls' (the same image twice, the cifar recipe, seed 0)")
    transforms = transforms_class(32, _cifar_recipe(), 0)
    first, again = _views_of(transforms, image, case), _views_of(transforms, image, case)
    if all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)):
        fail(
            _TRANSFORMS,
            f"{case}: the second call gave the same two views as the first.",
            "rng_reseeded",
        )


# On the ramp image channel 2 is 0.5 everywhere and channel 0 grows left to right, for every
# crop box: a colour change moves channel 2, a flip reverses channel 0.
# (probability field, its value, the mistake of never applying it, whether a view shows it)
_HOW_OFTEN = (
    ("grayscale_prob", 0.2, "grayscale_ignored", _is_gray),
    ("color_prob", 0.8, "jitter_ignored", lambda view: np.abs(view[..., 2] - 0.5).max() > 1e-3),
    ("flip_prob", 0.5, "flip_ignored", lambda view: view[0, -1, 0] < view[0, 0, 0]),
)


def _check_how_often(transforms_class: Callable[..., Any], ramp: np.ndarray) -> None:
    """Each operation shows on about its probability's share of 200 views of the ramp."""
    for field, expected, never, shows in _HOW_OFTEN:
        config = _pinned_recipe(crop_area=(0.3, 1.0), **{field: expected})
        case = record_case(
            f"case 'how often: {field}={expected}' (200 views, every other operation off)"
        )
        transforms = transforms_class(32, config, 3)
        views = [view for _ in range(100) for view in _views_of(transforms, ramp, case)]
        if field != "grayscale_prob":  # gray views show neither colour nor, here, a flip
            views = [view for view in views if not _is_gray(view)] or views
        seen = np.mean([shows(view) for view in views])
        if abs(seen - expected) > 0.12:
            message = f"{case}: applied to {seen:.0%} of the views, expected about {expected:.0%}."
            fail(_TRANSFORMS, message, _how_often_mistake(seen, never))


def _how_often_mistake(seen: float, never: str) -> str:
    """The mistake an operation applied to a share ``seen`` of the views (not its own) shows."""
    if seen < 0.02:
        return never
    if seen > 0.97:
        return "always_applied"
    return "probability_inverted"


def _check_pinned(transforms_class: Callable[..., Any], image: np.ndarray) -> None:
    """On recipes whose random choices are pinned, the view equals the library's."""
    from simclr_tf import transforms as ops

    for label, changes, mistake in (
        ("a full-image crop, every probability 0", {}, "crop_not_reference"),
        ("flip_prob=1", {"flip_prob": 1.0}, "flip_ignored"),
        ("grayscale_prob=1", {"grayscale_prob": 1.0}, "grayscale_ignored"),
    ):
        config = _pinned_recipe(**changes)
        case = record_case(f"case 'pinned: {label}' (image_size=24)")
        reference = ops.ImageTransforms(24, config, seed=0)(image)[0]
        answer = _views_of(transforms_class(24, config, 0), image, case)[0]
        if answer.shape != reference.shape:
            fail(
                _TRANSFORMS,
                f"{case}: a view has shape {answer.shape}, expected {reference.shape}.",
                "shape",
            )
        difference = float(np.abs(answer - reference).max())
        if difference > 1e-4:
            fail(
                _TRANSFORMS,
                f"{case}: largest difference from st.transforms.ImageTransforms is "
                f"{difference:.3g}.",
                mistake,
            )


def _check_crop(transforms_class: Callable[..., Any], ramp: np.ndarray) -> None:
    """A crop of a quarter of the area with aspect ratio 4/3 covers that box of the ramp."""
    config = _pinned_recipe(crop_area=(0.25, 0.25), crop_aspect=(4 / 3, 4 / 3))
    case = record_case("case 'crop' (crop_area=(0.25, 0.25), crop_aspect=(4/3, 4/3), a ramp image)")
    width, height = math.sqrt(0.25 * 4 / 3), math.sqrt(0.25 * 3 / 4)
    for view in _views_of(transforms_class(32, config, 0), ramp, case):
        covered = (float(np.ptp(view[..., 0])), float(np.ptp(view[..., 1])))
        if abs(covered[0] - width) > 0.03 or abs(covered[1] - height) > 0.03:
            message = (
                f"{case}: the view covers {covered[0]:.0%} of the width and {covered[1]:.0%} "
                f"of the height; the box should cover {width:.0%} x {height:.0%}."
            )
            if min(covered) > 0.95:
                fail(_TRANSFORMS, message, "crop_ignored")
            if abs(covered[0] - 0.5) < 0.03 and abs(covered[1] - 0.5) < 0.03:
                fail(_TRANSFORMS, message, "aspect_ignored")
            fail(_TRANSFORMS, message, "crop_not_reference")


def _check_brightness(transforms_class: Callable[..., Any], image: np.ndarray) -> None:
    """With brightness=0.5 and no other jitter, every brightness factor is in [0.5, 1.5]."""
    from simclr_tf import transforms as ops

    jitter = {"color_prob": 1.0, "brightness": 0.5, "contrast": 0.0, "saturation": 0.0}
    config = _pinned_recipe(**jitter, hue=0.0)
    case = record_case("case 'brightness' (color_prob=1, brightness=0.5, no other jitter)")
    base = ops.resized_crop(ops.to_float(image), (0.0, 0.0, 1.0, 1.0), (32, 32))
    usable = (base > 0.05) & (base < 0.6)  # never clipped by a factor <= 1.5
    transforms = transforms_class(32, config, 0)
    factors = [
        float(np.median(view[usable] / base[usable]))
        for _ in range(5)
        for view in _views_of(transforms, image, case)
    ]
    if min(factors) < 0.5 - 0.02 or max(factors) > 1.5 + 0.02:
        fail(
            _TRANSFORMS,
            f"{case}: brightness factors {min(factors):.2f} to {max(factors):.2f}, expected "
            "within [0.5, 1.5].",
            "jitter_range",
        )


def _check_seed(transforms_class: Callable[..., Any], image: np.ndarray) -> None:
    """Two objects made with the same seed give the same views."""
    case = record_case("case 'seed' (the cifar recipe, seed 5)")
    cifar = _cifar_recipe()
    first = _views_of(transforms_class(32, cifar, 5), image, case)
    again = _views_of(transforms_class(32, cifar, 5), image, case)
    if not all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)):
        fail(
            _TRANSFORMS,
            f"{case}: two objects made with seed 5 gave different views.",
            "seed_ignored",
        )


def check_image_transforms(transforms_class: Callable[..., Any]) -> CheckResult:
    """Checks a two-view transform ``ImageTransforms(image_size, config, seed)``.

    The object must return two views when called on one ``H x W x 3`` image (uint8 or float
    in [0, 1]). The checker looks at the shapes and ranges, that the two views differ, how
    often each operation is applied (on a ramp image, where a flip, a colour change and gray
    can be read off whatever the crop), compares with
    :class:`simclr_tf.transforms.ImageTransforms` on recipes whose random parameters are pinned
    (a full-image crop, every probability 0 or 1), measures the box a crop covers and the range
    of the brightness factors, and checks that the same seed gives the same views.

    Args:
        transforms_class: the class (or any callable) to check, called as
            ``transforms_class(image_size, config, seed)`` with an
            :class:`~simclr_tf.augment.AugmentConfig`.

    Returns:
        The verdict; the first check that fails ends it.
    """
    images = np.random.default_rng(11).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    image, ramp = images[0], _ramp_image()

    def body() -> str:
        _check_output(transforms_class, images)
        _check_calls(transforms_class, image)
        _check_how_often(transforms_class, ramp)
        _check_pinned(transforms_class, image)
        _check_crop(transforms_class, ramp)
        _check_brightness(transforms_class, image)
        _check_seed(transforms_class, image)
        return (
            "shapes, ranges, two different views, how often each operation runs, pinned "
            "recipes equal to st.transforms.ImageTransforms, crop box, brightness range, seeds."
        )

    return run_check(_TRANSFORMS, body)
