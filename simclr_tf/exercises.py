"""Checkers for the exercises of the teaching notebooks: they say what is wrong, not only that.

Each notebook exercise asks for a function (or a class); the matching ``check_*`` function here
calls it on a few inputs, compares the answer with the library's own implementation and returns
a :class:`CheckResult`, which Jupyter displays as one or two lines::

    PASSED  nt_xent: 3 cases agree with st.losses.nt_xent_loss (relative error 3.1e-08).
    FAILED  nt_xent: case 2 of 3 (N=16, D=32, T=0.1): your loss is 3.0112, the library's 2.7043.
      Hint: the diagonal is not masked: ...

A failure always names the input that failed (the case, the step, the value of k and T) and
gives a hint. For the classic mistakes of each exercise the checker recomputes the answer *with*
that mistake; when the learner's answer matches one of those, the hint names it (the diagonal
not masked, the temperature applied twice, a stride-2 stem, ...). The mistakes a checker
recognises are listed in :data:`MISTAKES`, and ``tests/test_exercises.py`` runs every one of
them on a deliberately wrong answer of that kind.

A checker never raises because of the answer it checks: an exercise that still raises
``NotImplementedError`` is reported as ``NOT ATTEMPTED YET``, and any other exception as
``FAILED`` with the exception and the line of the learner's code it came from. That is what lets
the notebooks, stubs included, run from top to bottom in continuous integration. The reference
solutions are in ``notebooks/solutions/solutions.py``.

The relative error between an answer ``a`` and the reference ``r`` is
``max |a - r| / max(max |r|, 1e-8)`` over all inputs tried.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker.

    Attributes:
        exercise: name of the exercise.
        status: "passed", "failed" or "not attempted".
        message: one line saying why, naming the input that failed.
        relative_error: the largest relative error found, when numbers were compared.
        mistake: the key (in :data:`MISTAKES`) of the known mistake the answer matches, if any.
        hint: what to look at next (for failures).
    """

    exercise: str
    status: str
    message: str
    relative_error: float | None = None
    mistake: str | None = None
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        label = {PASSED: "PASSED", FAILED: "FAILED", NOT_ATTEMPTED: "NOT ATTEMPTED YET"}
        text = f"{label[self.status]}  {self.exercise}: {self.message}"
        return f"{text}\n  Hint: {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return str(self)


def relative_error(answer: Any, reference: Any) -> float:
    """``max |answer - reference| / max(max |reference|, 1e-8)``, as a float.

    Raises:
        ValueError: if the shapes differ.
    """
    answer = np.asarray(answer, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if answer.shape != reference.shape:
        raise ValueError(f"expected shape {reference.shape}, got {answer.shape}")
    scale = max(float(np.max(np.abs(reference), initial=0.0)), 1e-8)
    return float(np.max(np.abs(answer - reference), initial=0.0) / scale)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _close(answer: Any, reference: Any, tolerance: float) -> bool:
    """True when the shapes agree and the relative error is within ``tolerance``."""
    try:
        return relative_error(answer, reference) <= tolerance
    except ValueError:
        return False


# Every mistake a checker recognises, by exercise: key -> hint. Filled in next to each checker.
MISTAKES: dict[str, dict[str, str]] = {}

_EXCEPTION_HINT = (
    "your code raised this exception; the line named is where it happened in your code. Run "
    "the function on a small input in a cell of its own to see the shapes involved."
)


class _Failure(Exception):
    """Raised inside a checker body to end the check with a failure."""

    def __init__(self, message: str, mistake: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.mistake = mistake
        self.hint = hint


def _fail(exercise: str, message: str, mistake: str | None = None, hint: str | None = None):
    """Ends the check: ``mistake`` picks the hint from ``MISTAKES[exercise]`` unless given."""
    if mistake is not None and hint is None:
        hint = MISTAKES[exercise][mistake]
    raise _Failure(message, mistake, hint)


_current_case: list[str] = [""]


def _at(case: str) -> str:
    """Records ``case`` as the input being checked (an exception names it) and returns it."""
    _current_case[0] = case
    return case


def _first_match(answer: Any, variants: dict[str, Any], tolerance: float) -> str | None:
    """The key of the first variant the answer equals (within ``tolerance``), else ``None``."""
    for mistake, value in variants.items():
        if value is not None and _close(answer, value, tolerance):
            return mistake
    return None


def _learner_line(error: BaseException) -> str:
    """Where an exception came from, preferring the last frame outside the libraries."""
    frames = traceback.extract_tb(error.__traceback__)
    package = os.path.dirname(os.path.abspath(__file__))
    outside = [
        frame
        for frame in frames
        if not os.path.abspath(frame.filename).startswith(package)
        and "site-packages" not in frame.filename
        and "dist-packages" not in frame.filename
    ]
    frame = (outside or frames)[-1]
    return f"line {frame.lineno} of {frame.name}"


def _run(
    exercise: str,
    body: Callable[[], str],
    explain: Callable[[BaseException], str | None] | None = None,
) -> CheckResult:
    """Runs a checker body, turning failures and the learner's exceptions into a verdict.

    ``body`` returns the message of a pass, or raises :class:`_Failure` (through
    :func:`_fail`). ``explain`` may map an exception to the key of a known mistake.
    """
    _current_case[0] = ""
    try:
        message = body()
    except NotImplementedError:
        return CheckResult(
            exercise, NOT_ATTEMPTED, "the function still raises NotImplementedError."
        )
    except _Failure as failure:
        return CheckResult(
            exercise, FAILED, failure.message, mistake=failure.mistake, hint=failure.hint
        )
    except Exception as error:  # noqa: BLE001 - any mistake in the answer is a verdict
        mistake = explain(error) if explain else None
        hint = MISTAKES[exercise][mistake] if mistake else _EXCEPTION_HINT
        where = f"{_current_case[0]}: " if _current_case[0] else ""
        return CheckResult(
            exercise,
            FAILED,
            f"{where}{type(error).__name__}: {error} ({_learner_line(error)})",
            mistake=mistake,
            hint=hint,
        )
    return CheckResult(exercise, PASSED, message)


def _vector(values: Any, digits: int = 2) -> str:
    return "[" + ", ".join(f"{float(value):.{digits}g}" for value in np.ravel(values)) + "]"


# -- 01_augmentation: saturation ----------------------------------------------------------------

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
            answer = _to_numpy(fn(images.copy(), factors.copy()))
            case = _at(f"case {index} of {len(cases)} (3 images 5x4, factors {_vector(factors)})")
            if answer.shape != reference.shape:
                _fail(
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
                mistake = _first_match(answer, variants, tolerance)
                _fail(
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

    return _run(name, body)


# -- 01_augmentation: the two-view transform -------------------------------------------------

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


def check_image_transforms(transforms_class: Callable[..., Any]) -> CheckResult:
    """Checks a two-view transform ``ImageTransforms(image_size, config, seed)``.

    The object must return two views when called on one ``H x W x 3`` image (uint8 or float
    in [0, 1]). The checker looks at the shapes and ranges, that the two views differ, how
    often each operation is applied (on a ramp image, where a flip, a colour change and gray
    can be read off whatever the crop), compares with
    :class:`simclr_tf.transforms.ImageTransforms` on recipes whose random parameters are pinned
    (a full-image crop, every probability 0 or 1), measures the box a crop covers and the range
    of the brightness factors, and checks that the same seed gives the same views.
    """
    from simclr_tf import transforms as ops
    from simclr_tf.augment import AugmentConfig

    name = "image_transforms"
    cifar = AugmentConfig.preset("cifar")
    # A full-image crop and every probability 0: each check below switches one thing on.
    probabilities = ("flip_prob", "color_prob", "grayscale_prob", "blur_prob")
    pinned = {
        "crop_area": (1.0, 1.0),
        "crop_aspect": (1.0, 1.0),
        **dict.fromkeys(probabilities, 0.0),
    }
    images = np.random.default_rng(11).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    image, ramp = images[0], _ramp_image()

    def views_of(transforms: Any, one_image: np.ndarray, case: str) -> tuple[np.ndarray, ...]:
        views = transforms(one_image)
        if not isinstance(views, (tuple, list)) or len(views) != 2:
            _fail(
                name,
                f"{case}: calling the object returned {type(views).__name__}, not two views.",
                "not_two_views",
            )
        views = tuple(np.asarray(_to_numpy(view), np.float32) for view in views)
        for view in views:
            if view.max() > 1.0 + 1e-5 or view.min() < -1e-5:
                _fail(
                    name,
                    f"{case}: values span [{view.min():.3g}, {view.max():.3g}], expected [0, 1].",
                    "uint8_range",
                )
        return views

    def check_output() -> None:
        case = _at("case 'output' (a 32x32 uint8 image, image_size=24, the cifar recipe)")
        for view in views_of(transforms_class(24, cifar, 0), image, case):
            if view.shape != (24, 24, 3):
                _fail(
                    name, f"{case}: a view has shape {view.shape}, expected (24, 24, 3).", "shape"
                )
        case = _at("case 'two views' (8 images, the cifar recipe, seed 0)")
        transforms = transforms_class(32, cifar, 0)
        identical = sum(np.array_equal(*views_of(transforms, one, case)) for one in images)
        if identical == len(images):
            first = views_of(transforms, image, case)[0]
            again = views_of(transforms, image, case)[0]
            _fail(
                name,
                f"{case}: the two views were identical for all {identical} images.",
                "rng_reseeded" if np.array_equal(first, again) else "same_view_twice",
            )

    def check_calls() -> None:
        case = _at("case 'calls' (the same image twice, the cifar recipe, seed 0)")
        transforms = transforms_class(32, cifar, 0)
        first, again = views_of(transforms, image, case), views_of(transforms, image, case)
        if all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)):
            _fail(
                name,
                f"{case}: the second call gave the same two views as the first.",
                "rng_reseeded",
            )

    def check_how_often() -> None:
        # On the ramp image channel 2 is 0.5 everywhere and channel 0 grows left to right, for
        # every crop box: a colour change moves channel 2, a flip reverses channel 0.
        gray = lambda v: np.ptp(v, axis=-1).max() < 1e-6  # noqa: E731
        tests = (
            ("grayscale_prob", 0.2, "grayscale_ignored", gray),
            ("color_prob", 0.8, "jitter_ignored", lambda v: np.abs(v[..., 2] - 0.5).max() > 1e-3),
            ("flip_prob", 0.5, "flip_ignored", lambda v: v[0, -1, 0] < v[0, 0, 0]),
        )
        for field, expected, never, test in tests:
            config = AugmentConfig.preset(
                "cifar", **{**pinned, "crop_area": (0.3, 1.0), field: expected}
            )
            case = _at(
                f"case 'how often: {field}={expected}' (200 views, every other operation off)"
            )
            transforms = transforms_class(32, config, 3)
            views = [view for _ in range(100) for view in views_of(transforms, ramp, case)]
            if field != "grayscale_prob":  # gray views show neither colour nor, here, a flip
                views = [view for view in views if not gray(view)] or views
            seen = np.mean([test(view) for view in views])
            if abs(seen - expected) <= 0.12:
                continue
            message = f"{case}: applied to {seen:.0%} of the views, expected about {expected:.0%}."
            if seen < 0.02:
                _fail(name, message, never)
            if seen > 0.97:
                _fail(name, message, "always_applied")
            _fail(name, message, "probability_inverted")

    def check_pinned() -> None:
        for label, changes, mistake in (
            ("a full-image crop, every probability 0", {}, "crop_not_reference"),
            ("flip_prob=1", {"flip_prob": 1.0}, "flip_ignored"),
            ("grayscale_prob=1", {"grayscale_prob": 1.0}, "grayscale_ignored"),
        ):
            config = AugmentConfig.preset("cifar", **{**pinned, **changes})
            case = _at(f"case 'pinned: {label}' (image_size=24)")
            reference = ops.ImageTransforms(24, config, seed=0)(image)[0]
            answer = views_of(transforms_class(24, config, 0), image, case)[0]
            if answer.shape != reference.shape:
                _fail(
                    name,
                    f"{case}: a view has shape {answer.shape}, expected {reference.shape}.",
                    "shape",
                )
            difference = float(np.abs(answer - reference).max())
            if difference > 1e-4:
                _fail(
                    name,
                    f"{case}: largest difference from st.transforms.ImageTransforms is "
                    f"{difference:.3g}.",
                    mistake,
                )

    def check_crop_and_brightness() -> None:
        config = AugmentConfig.preset(
            "cifar", **{**pinned, "crop_area": (0.25, 0.25), "crop_aspect": (4 / 3, 4 / 3)}
        )
        case = _at("case 'crop' (crop_area=(0.25, 0.25), crop_aspect=(4/3, 4/3), a ramp image)")
        width, height = math.sqrt(0.25 * 4 / 3), math.sqrt(0.25 * 3 / 4)
        for view in views_of(transforms_class(32, config, 0), ramp, case):
            covered = (float(np.ptp(view[..., 0])), float(np.ptp(view[..., 1])))
            if abs(covered[0] - width) > 0.03 or abs(covered[1] - height) > 0.03:
                message = (
                    f"{case}: the view covers {covered[0]:.0%} of the width and {covered[1]:.0%} "
                    f"of the height; the box should cover {width:.0%} x {height:.0%}."
                )
                if min(covered) > 0.95:
                    _fail(name, message, "crop_ignored")
                if abs(covered[0] - 0.5) < 0.03 and abs(covered[1] - 0.5) < 0.03:
                    _fail(name, message, "aspect_ignored")
                _fail(name, message, "crop_not_reference")

        jitter = {"color_prob": 1.0, "brightness": 0.5, "contrast": 0.0, "saturation": 0.0}
        config = AugmentConfig.preset("cifar", **{**pinned, **jitter, "hue": 0.0})
        case = _at("case 'brightness' (color_prob=1, brightness=0.5, no other jitter)")
        base = ops.resized_crop(ops.to_float(image), (0.0, 0.0, 1.0, 1.0), (32, 32))
        usable = (base > 0.05) & (base < 0.6)  # never clipped by a factor <= 1.5
        transforms = transforms_class(32, config, 0)
        factors = [
            float(np.median(view[usable] / base[usable]))
            for _ in range(5)
            for view in views_of(transforms, image, case)
        ]
        if min(factors) < 0.5 - 0.02 or max(factors) > 1.5 + 0.02:
            _fail(
                name,
                f"{case}: brightness factors {min(factors):.2f} to {max(factors):.2f}, expected "
                "within [0.5, 1.5].",
                "jitter_range",
            )

    def check_seed() -> None:
        case = _at("case 'seed' (the cifar recipe, seed 5)")
        first = views_of(transforms_class(32, cifar, 5), image, case)
        transforms = transforms_class(32, cifar, 5)
        again = views_of(transforms, image, case)
        if not all(np.array_equal(a, b) for a, b in zip(first, again, strict=True)):
            _fail(
                name, f"{case}: two objects made with seed 5 gave different views.", "seed_ignored"
            )

    def body() -> str:
        check_output()
        check_calls()
        check_how_often()
        check_pinned()
        check_crop_and_brightness()
        check_seed()
        return (
            "shapes, ranges, two different views, how often each operation runs, pinned "
            "recipes equal to st.transforms.ImageTransforms, crop box, brightness range, seeds."
        )

    return _run(name, body)


# -- 02_base_encoder: the CIFAR stem -----------------------------------------------------------

MISTAKES["cifar_stem"] = {
    "downsamples": "the map was halved: a stride of 2 (or a max-pool) does that. The CIFAR stem "
    "keeps all 32x32 positions: strides=1 and no pooling.",
    "imagenet_stem": "32x32 became 8x8: that is the ImageNet stem (7x7 convolution with stride "
    "2, then a 3x3 max-pool with stride 2). For small images use one 3x3 convolution with "
    "stride 1 and no max-pool.",
    "valid_padding": "the map lost a pixel at each border: padding='valid' does that. Use "
    "padding='same'.",
    "channels": "the convolution needs `channels` filters: keras.layers.Conv2D(channels, 3, ...).",
    "conv_bias": "one bias per channel too many: use_bias=False, since the BatchNorm that "
    "follows adds its own shift (beta) and would cancel a bias anyway.",
    "kernel_size": "the parameter count is that of a 7x7 kernel: the CIFAR stem uses a 3x3 "
    "kernel (kernel_size=3).",
    "no_batchnorm": "the parameters of a BatchNormalization layer are missing (4 per channel: "
    "gamma, beta and the two running statistics): Conv2D -> BatchNormalization -> ReLU.",
    "relu_last": "the output has negative values: finish with a ReLU after the BatchNorm "
    "(Conv2D -> BatchNormalization -> ReLU), as every stage of the encoder does.",
}


def check_cifar_stem(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(channels)``, a Keras model for the CIFAR stem of a ResNet.

    The model must map float images ``[B, 32, 32, 3]`` to ``[B, 32, 32, channels]`` with one
    3x3, stride-1, bias-free convolution, a BatchNorm and a ReLU: the same output shape and
    parameter count as the stem of ``st.models.build_encoder(..., stem="cifar")``.
    """
    from simclr_tf.models import build_encoder

    name = "cifar_stem"

    def body() -> str:
        images = np.random.default_rng(2).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
        for encoder_name, channels in (("resnet18", 64), ("small_cnn", 32)):
            library = build_encoder(encoder_name, 32, stem="cifar")
            expected_params = sum(
                library.get_layer(layer).count_params() for layer in ("stem_conv", "stem_bn")
            )
            expected_shape = tuple(library.get_layer("stem_relu").output.shape[1:])
            case = _at(f"case channels={channels} (the stem of {encoder_name}, 32x32 images)")
            model = fn(channels)
            output = _to_numpy(model(images, training=True))
            shape = tuple(output.shape[1:])
            if shape != expected_shape:
                message = f"{case}: output shape {shape}, expected {expected_shape}."
                if shape[-1] != channels:
                    _fail(name, message, "channels")
                mistake = {16: "downsamples", 8: "imagenet_stem", 30: "valid_padding"}.get(shape[0])
                _fail(name, message, mistake, None if mistake else MISTAKES[name]["downsamples"])
            params = model.count_params()
            if params != expected_params:
                message = (
                    f"{case}: {params:,} parameters, the library's stem has {expected_params:,} "
                    f"(3x3x3x{channels} weights + 4x{channels} BatchNorm)."
                )
                variants = {
                    "conv_bias": expected_params + channels,
                    "kernel_size": 7 * 7 * 3 * channels + 4 * channels,
                    "no_batchnorm": 3 * 3 * 3 * channels,
                }
                mistake = next((key for key, value in variants.items() if value == params), None)
                _fail(name, message, mistake, None if mistake else MISTAKES[name]["no_batchnorm"])
            if output.min() < 0:
                _fail(name, f"{case}: the smallest output is {output.min():.3g}.", "relu_last")
        return (
            "output shapes (32, 32, 64) and (32, 32, 32) and parameter counts equal the "
            "library's CIFAR stem; outputs are non-negative."
        )

    return _run(name, body)


# -- 03_projection_head --------------------------------------------------------------------

MISTAKES["projection_head"] = {
    "output_shape": "the last layer is keras.layers.Dense(output_dim): z has output_dim numbers.",
    "hidden_bias": "the first Dense has a bias it does not need: use_bias=False, since the "
    "BatchNorm that follows has its own shift.",
    "no_batchnorm": "the BatchNormalization between the two Dense layers is missing.",
    "hidden_width": "the hidden layer must be hidden_dim wide: Dense(hidden_dim, use_bias=False).",
    "linear": "the head is linear: the ReLU between the BatchNorm and the last Dense is "
    "missing (a linear head is what the paper's Figure 8 compares against).",
}


def check_projection_head(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(input_dim, hidden_dim, output_dim)``, a builder of SimCLR's head g.

    The model it returns must map ``[B, input_dim]`` to ``[B, output_dim]``, have as many
    parameters as :func:`simclr_tf.models.build_projection_head` (Dense without bias, BatchNorm,
    ReLU, Dense with bias) and be non-linear.
    """
    import keras

    from simclr_tf.models import build_projection_head

    name = "projection_head"

    def body() -> str:
        input_dim, hidden_dim, output_dim = 48, 40, 16
        case = _at(f"case input_dim={input_dim}, hidden_dim={hidden_dim}, output_dim={output_dim}")
        keras.utils.set_random_seed(0)
        model = fn(input_dim, hidden_dim, output_dim)
        h = np.random.default_rng(0).normal(size=(8, input_dim)).astype(np.float32)
        z = _to_numpy(model(h, training=False))
        if z.shape != (8, output_dim):
            _fail(
                name,
                f"{case}: output shape {z.shape} for input (8, {input_dim}), expected "
                f"(8, {output_dim}).",
                "output_shape",
            )
        expected = build_projection_head(input_dim, hidden_dim, output_dim).count_params()
        params = model.count_params()
        if params != expected:
            variants = {
                "hidden_bias": expected + hidden_dim,
                "no_batchnorm": expected - 4 * hidden_dim,
                "hidden_width": build_projection_head(
                    input_dim, input_dim, output_dim
                ).count_params(),
            }
            mistake = next((key for key, value in variants.items() if value == params), None)
            _fail(
                name,
                f"{case}: {params:,} parameters, expected {expected:,} (Dense "
                f"{input_dim}->{hidden_dim} without bias, BatchNorm, ReLU, Dense "
                f"{hidden_dim}->{output_dim} with bias).",
                mistake,
                None if mistake else MISTAKES[name]["hidden_width"],
            )
        plus = _to_numpy(model(h, training=False))
        minus = _to_numpy(model(-h, training=False))
        zero = _to_numpy(model(np.zeros_like(h), training=False))
        if np.allclose(plus + minus, 2 * zero, atol=1e-5):
            _fail(name, f"{case}: g(h) + g(-h) = 2 g(0) for every input.", "linear")
        return f"shape, parameter count ({expected:,}) and non-linearity are right."

    return _run(name, body)


# -- 04_contrastive_loss -------------------------------------------------------------------

MISTAKES["nt_xent"] = {
    "diagonal_not_masked": "the diagonal is not masked: each anchor's similarity with itself "
    "(always 1, the largest) sits in the denominator. Set the diagonal of the logits to -inf "
    "(np.fill_diagonal(logits, -np.inf)) before the softmax.",
    "wrong_axis": "the vectors are normalised along the wrong axis: each row z_k must get "
    "length 1, so divide by np.linalg.norm(z, axis=1, keepdims=True) (axis=0 normalises each "
    "coordinate over the batch).",
    "not_normalised": "the similarities are plain dot products: NT-Xent uses the cosine "
    "similarity, so divide every row by its length first.",
    "n_by_n": "only the N views of the other batch are candidates (an N x N matrix z1 @ z2.T): "
    "NT-Xent compares each anchor with all 2N - 1 other views, the views of its own batch "
    "included. Concatenate z1 and z2 first and use the 2N x 2N matrix.",
    "temperature_twice": "the temperature is applied twice (the logits are divided by tau "
    "squared): divide the similarities by tau once.",
    "no_temperature": "the temperature is missing: divide the cosine similarities by tau "
    "before the softmax.",
    "mean_over_n": "the loss is a mean over all 2N anchors (both views of every image): "
    "divide the sum by 2N, and include the anchors of z2 as well as those of z1.",
}


def _log_softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(logits, axis=axis, keepdims=True)
    return logits - top - np.log(np.sum(np.exp(logits - top), axis=axis, keepdims=True))


def _nt_xent_variant(z1: np.ndarray, z2: np.ndarray, temperature: float, mistake: str) -> float:
    """NumPy NT-Xent computed *with* one of the mistakes of ``MISTAKES["nt_xent"]``."""
    n = len(z1)
    z = np.concatenate([z1, z2]).astype(np.float64)
    if mistake == "wrong_axis":
        z = z / np.linalg.norm(z, axis=0, keepdims=True)
    elif mistake != "not_normalised":
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    scale = {"temperature_twice": temperature**2, "no_temperature": 1.0}.get(mistake, temperature)
    if mistake == "n_by_n":
        cross = z[:n] @ z[n:].T / scale
        both = np.concatenate([np.diag(_log_softmax(cross, 1)), np.diag(_log_softmax(cross, 0))])
        return float(-np.mean(both))
    logits = z @ z.T / scale
    if mistake != "diagonal_not_masked":
        logits[np.diag_indices(2 * n)] = -np.inf
    partner = (np.arange(2 * n) + n) % (2 * n)
    per_anchor = -_log_softmax(logits, 1)[np.arange(2 * n), partner]
    return float(np.sum(per_anchor) / n) if mistake == "mean_over_n" else float(per_anchor.mean())


def _projection_pairs(noise: float = 0.5) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Three batches ``(z1, z2, temperature)``; rows of unequal length, second view noisy."""
    rng = np.random.default_rng(4)
    pairs = []
    for batch, dim, temperature in ((4, 8, 0.5), (16, 32, 0.1), (7, 3, 1.0)):
        z1 = rng.normal(size=(batch, dim))
        z2 = z1 + noise * rng.normal(size=(batch, dim))
        scale1, scale2 = rng.uniform(0.5, 3.0, (2, batch, 1))
        pairs.append(
            ((z1 * scale1).astype(np.float32), (z2 * scale2).astype(np.float32), temperature)
        )
    return pairs


def check_nt_xent(fn: Callable[..., Any], tolerance: float = 1e-4) -> CheckResult:
    """Checks ``fn(z1, z2, temperature)`` against :func:`simclr_tf.losses.nt_xent_loss`.

    Args:
        fn: takes two ``[N, D]`` NumPy arrays (row k of each is a view of image k) and the
            temperature, returns the scalar NT-Xent loss averaged over all 2N anchors.
        tolerance: largest relative error accepted.
    """
    from simclr_tf.losses import nt_xent_loss

    name = "nt_xent"

    def body() -> str:
        pairs = _projection_pairs()
        worst = 0.0
        for index, (z1, z2, temperature) in enumerate(pairs, start=1):
            case = _at(
                f"case {index} of {len(pairs)} (N={len(z1)}, D={z1.shape[1]}, T={temperature})"
            )
            reference = float(nt_xent_loss(z1, z2, temperature)[0])
            answer = _to_numpy(fn(z1.copy(), z2.copy(), temperature))
            if answer.size != 1:
                _fail(
                    name,
                    f"{case}: the answer has shape {answer.shape}; the loss is one number.",
                    "mean_over_n",
                )
            answer = float(answer.reshape(()))
            error = abs(answer - reference) / max(abs(reference), 1e-8)
            worst = max(worst, error)
            if error > tolerance:
                variants = {
                    mistake: _nt_xent_variant(z1, z2, temperature, mistake)
                    for mistake in MISTAKES[name]
                }
                mistake = _first_match(answer, variants, tolerance)
                _fail(
                    name,
                    f"{case}: your loss is {answer:.4f}, the library's {reference:.4f} (relative "
                    f"error {error:.1e}).",
                    mistake,
                    None
                    if mistake
                    else "compare with nt_xent_loop anchor by anchor: print the logits of "
                    "anchor 0, its positive (column N) and the log-sum-exp of its row without "
                    "the diagonal.",
                )
        return (
            f"{len(pairs)} cases agree with st.losses.nt_xent_loss (relative error {worst:.1e}, "
            f"tolerance {tolerance:.0e})."
        )

    return _run(name, body)


MISTAKES["contrastive_accuracy"] = {
    "diagonal_not_masked": "every anchor found itself: its similarity with itself is 1, the "
    "largest possible. Exclude the diagonal (set it to -inf) before the argmax.",
    "n_by_n": "only the N views of the other batch were candidates: an anchor must find its "
    "positive among all 2N - 1 other views, those of its own batch included.",
    "not_normalised": "the similarities are plain dot products: normalise every row to length "
    "1 first, so that long vectors do not win the argmax.",
}


def _accuracy_variant(z1: np.ndarray, z2: np.ndarray, mistake: str | None) -> float:
    """Contrastive accuracy, correct (``None``) or with one of its listed mistakes."""
    n = len(z1)
    z = np.concatenate([z1, z2]).astype(np.float64)
    if mistake != "not_normalised":
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    if mistake == "n_by_n":
        cross = z[:n] @ z[n:].T
        hits = np.concatenate([cross.argmax(1), cross.argmax(0)]) == np.tile(np.arange(n), 2)
        return float(hits.mean())
    similarity = z @ z.T
    if mistake != "diagonal_not_masked":
        similarity[np.diag_indices(2 * n)] = -np.inf
    return float(np.mean(similarity.argmax(1) == (np.arange(2 * n) + n) % (2 * n)))


def check_contrastive_accuracy(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(z1, z2)``, the fraction of the 2N anchors whose positive is most similar.

    Compared with the accuracy :func:`simclr_tf.losses.nt_xent_loss` returns (which does not
    depend on the temperature), on noisy batches where a fair share of anchors miss.
    """
    from simclr_tf.losses import nt_xent_loss

    name = "contrastive_accuracy"

    def body() -> str:
        pairs = _projection_pairs(noise=1.5)
        for index, (z1, z2, temperature) in enumerate(pairs, start=1):
            case = _at(f"case {index} of {len(pairs)} (N={len(z1)}, D={z1.shape[1]})")
            reference = float(nt_xent_loss(z1, z2, temperature)[1])
            answer = float(np.asarray(_to_numpy(fn(z1.copy(), z2.copy()))).reshape(()))
            if abs(answer - reference) > 1e-6:
                variants = {
                    mistake: _accuracy_variant(z1, z2, mistake) for mistake in MISTAKES[name]
                }
                mistake = next(
                    (key for key, value in variants.items() if abs(value - answer) < 1e-6), None
                )
                _fail(
                    name,
                    f"{case}: your accuracy is {answer:.3f}, the library's {reference:.3f}.",
                    mistake,
                    None
                    if mistake
                    else "for each of the 2N rows of the similarity matrix (diagonal excluded), "
                    "is the largest entry in the column of its positive (k <-> k + N)?",
                )
        return f"{len(pairs)} cases agree with the accuracy of st.losses.nt_xent_loss."

    return _run(name, body)


# -- 05_training: the learning-rate schedule -------------------------------------------------

MISTAKES["learning_rate_schedule"] = {
    "no_warmup": "the rate starts at the peak: during the first warmup_steps it rises "
    "linearly from 0, peak * step / warmup_steps.",
    "warmup_off_by_one": "the warm-up is one step ahead: at step 0 the rate is 0, "
    "peak * step / warmup_steps (not (step + 1)).",
    "decay_from_step_zero": "the cosine starts at the end of the warm-up: its progress is "
    "(step - warmup_steps) / (total_steps - warmup_steps), not step / total_steps.",
    "not_zero_after_end": "from total_steps on the rate is 0, also when the warm-up is longer "
    "than the run: check `step >= total_steps` first.",
}


def _schedule_variant(step: int, peak: float, warmup: int, total: int, mistake: str) -> float:
    """The warm-up + cosine schedule with one mistake of ``MISTAKES["learning_rate_schedule"]``."""
    if step >= total and mistake != "not_zero_after_end":
        return 0.0
    if step < warmup and mistake != "no_warmup":
        return peak * (step + (mistake == "warmup_off_by_one")) / warmup
    start = 0 if mistake in ("no_warmup", "decay_from_step_zero") else warmup
    progress = min(1.0, max(0.0, (step - start) / max(total - start, 1)))
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def check_learning_rate_schedule(fn: Callable[..., Any], tolerance: float = 1e-5) -> CheckResult:
    """Checks ``fn(step, peak, warmup_steps, total_steps)`` against ``WarmupCosineDecay``.

    Args:
        fn: returns the learning rate at ``step`` (a Python int) as a float.
        tolerance: largest relative error accepted, relative to ``peak``.
    """
    from simclr_tf.optim import WarmupCosineDecay

    name = "learning_rate_schedule"

    def body() -> str:
        schedules = ((1.0, 10, 100), (0.3, 0, 50), (2e-3, 5, 5), (0.5, 20, 8))
        for peak, warmup, total in schedules:
            _at(f"schedule peak={peak:g}, warmup_steps={warmup}, total_steps={total}")
            schedule = WarmupCosineDecay(peak, warmup, total)
            steps = sorted(
                {
                    0,
                    1,
                    warmup // 2,
                    warmup,
                    warmup + 1,
                    (warmup + total) // 2,
                    total - 1,
                    total,
                    total + 10,
                }
            )
            steps = [step for step in steps if step >= 0]
            answers = [float(fn(step, peak, warmup, total)) for step in steps]
            references = [float(schedule(step)) for step in steps]
            for step, answer, reference in zip(steps, answers, references, strict=True):
                if abs(answer - reference) / peak <= tolerance:
                    continue
                mistake = next(
                    (
                        key
                        for key in MISTAKES[name]
                        if all(
                            abs(_schedule_variant(s, peak, warmup, total, key) - a) / peak
                            <= tolerance
                            for s, a in zip(steps, answers, strict=True)
                        )
                    ),
                    None,
                )
                _fail(
                    name,
                    f"schedule peak={peak:g}, warmup_steps={warmup}, total_steps={total}, at "
                    f"step {step}: yours {answer:.6g}, expected {reference:.6g}.",
                    mistake,
                    None
                    if mistake
                    else "evaluate the three cases in order: step >= total_steps (0), the "
                    "warm-up (step < warmup_steps), the cosine.",
                )
        return f"{len(schedules)} schedules agree with st.optim.WarmupCosineDecay at 9 steps each."

    return _run(name, body)


# -- 05_training: the training step ---------------------------------------------------------

MISTAKES["train_step"] = {
    "no_loss_returned": "return the NT-Xent loss (the first of the two numbers "
    "st.losses.nt_xent_loss returns).",
    "inference_mode": "call the encoder and the head with training=True: in inference mode "
    "BatchNorm uses its running averages instead of the statistics of the batch.",
    "separate_views": "encode both views in one call, encoder(tf.concat([view1, view2], 0), "
    "training=True), then split z in two: BatchNorm then normalises over all 2N views, as in "
    "the library (two calls give each view its own batch statistics).",
    "same_views": "the two views are the same: SimCLR compares two different random views, "
    "view1, view2 = st.augment.two_views(images, config.seed, step, config.augment_config()).",
    "no_augmentation": "the images go in unaugmented: make the two views with "
    "st.augment.two_views(images, config.seed, step, config.augment_config()).",
    "wrong_augment_config": "pass config.augment_config() to two_views: it holds the run's "
    "crop, colour strength and view size.",
    "wrong_temperature": "use the run's temperature, config.temperature, in nt_xent_loss.",
    "fixed_step": "step 0 is right but step 1 is not: pass `step` to two_views, so that every "
    "step draws new views.",
    "no_update": "the weights did not change: take gradients = tape.gradient(loss, variables) "
    "with variables = encoder.trainable_variables + head.trainable_variables, then "
    "optimizer.apply(gradients, variables).",
    "encoder_not_updated": "only the head was updated: the variables passed to tape.gradient "
    "and optimizer.apply must include encoder.trainable_variables.",
    "head_not_updated": "only the encoder was updated: the variables passed to tape.gradient "
    "and optimizer.apply must include head.trainable_variables.",
    "update_differs": "the loss is right but the update is not: apply the gradients of this "
    "loss once, optimizer.apply(gradients, variables), with the variables in the same order "
    "as for tape.gradient.",
    "loss_outside_tape": "no gradients reached the weights: compute the forward pass and the "
    "loss inside `with tf.GradientTape() as tape:`; only what is computed there is recorded.",
}


def _loss_value(result: Any) -> float | None:
    """The loss a step function returned: a scalar, the first of a tuple, or dict['loss']."""
    if isinstance(result, dict):
        result = result.get("loss")
    elif isinstance(result, (tuple, list)) and result:
        result = result[0]
    if result is None:
        return None
    value = _to_numpy(result)
    return float(value.reshape(())) if value.size == 1 else None


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(variable.numpy()) for variable in model.trainable_variables]


def _update_error(before: list, after: list, reference_before: list, reference_after: list):
    """(largest update of the answer, relative error of its update against the reference's)."""
    answer = [b - a for a, b in zip(before, after, strict=True)]
    reference = [b - a for a, b in zip(reference_before, reference_after, strict=True)]
    size = max(float(np.abs(delta).max(initial=0.0)) for delta in answer)
    scale = max(max(float(np.abs(delta).max(initial=0.0)) for delta in reference), 1e-12)
    error = max(
        float(np.abs(a - r).max(initial=0.0)) for a, r in zip(answer, reference, strict=True)
    )
    return size, error / scale


def _step_variants(pretrainer: Any, images: Any, step: int, config: Any) -> dict[str, float]:
    """The loss of one step of ``pretrainer``'s models computed with each mistake of the step."""
    import tensorflow as tf

    from simclr_tf.augment import AugmentConfig, two_views
    from simclr_tf.losses import nt_xent_loss

    encoder, head = pretrainer.encoder, pretrainer.projection_head
    views = two_views(images, config.seed, step, config.augment_config())

    def loss_of(view1, view2, training=True, together=True, temperature=config.temperature):
        if together:
            z = head(encoder(tf.concat([view1, view2], 0), training=training), training=training)
            z1, z2 = tf.split(z, 2, axis=0)
        else:
            z1 = head(encoder(view1, training=training), training=training)
            z2 = head(encoder(view2, training=training), training=training)
        return float(nt_xent_loss(z1, z2, temperature)[0])

    plain = tf.cast(images, tf.float32) / 255.0
    other = two_views(images, config.seed, step, AugmentConfig.preset(config.augment))
    return {
        "inference_mode": loss_of(*views, training=False),
        "separate_views": loss_of(*views, together=False),
        "same_views": loss_of(views[0], views[0]),
        "no_augmentation": loss_of(plain, plain),
        "wrong_augment_config": loss_of(*other),
        "wrong_temperature": loss_of(*views, temperature=0.5),
    }


def _explain_step_error(error: BaseException) -> str | None:
    text = str(error)
    if re.search(r"[Nn]o gradients|gradient.*None|None.*gradient", text):
        return "loss_outside_tape"
    return None


def check_train_step(fn: Callable[..., Any], tolerance: float = 1e-3) -> CheckResult:
    """Checks ``fn(encoder, head, optimizer, images, step, config)``, one SimCLR step.

    The step must make two views of the uint8 ``images`` with ``st.augment.two_views(images,
    config.seed, step, config.augment_config())``, encode both in one call with
    ``training=True``, project, compute ``st.losses.nt_xent_loss`` with
    ``config.temperature`` inside a ``tf.GradientTape``, apply the gradients of the encoder's
    and the head's variables with ``optimizer`` and return the loss.

    The checker builds two identical small models (the smoke recipe, SGD, 16-px views of 8
    images), runs two steps of the library's :class:`~simclr_tf.train.Pretrainer` on one and
    two steps of ``fn`` on the other, with the same weights, views and seed, and compares the
    losses and the weight updates after each step.
    """
    from simclr_tf.config import preset
    from simclr_tf.train import Pretrainer

    name = "train_step"

    def body() -> str:
        config = preset(
            "smoke",
            batch_size=8,
            epochs=2,
            steps=2,
            optimizer="sgd",
            lr=0.1,
            online_probe=False,
            view_size_ratio=0.5,
            out_dir=os.path.join(tempfile.gettempdir(), "simclr_tf_check_train_step"),
        )
        images = np.random.default_rng(5).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        reference = Pretrainer(config, num_examples=len(images))
        learner = Pretrainer(config, num_examples=len(images))
        for step in range(2):
            case = _at(f"step {step} (8 images of 32x32, 16-px views, seed {config.seed})")
            # Step 1 with step 0's views (computed before the reference takes step 1).
            fixed = {"fixed_step": _two_view_loss(reference, images, 0, config)} if step else {}
            before = [_weights(learner.encoder), _weights(learner.projection_head)]
            reference_before = [_weights(reference.encoder), _weights(reference.projection_head)]
            expected = reference.train_step(images)["loss"]
            # The optimizer's learning rate follows the run's step counter (the schedule).
            learner.step.assign(step)
            result = fn(
                learner.encoder, learner.projection_head, learner.optimizer, images, step, config
            )
            answer = _loss_value(result)
            if answer is None:
                _fail(
                    name,
                    f"{case}: the function returned {type(result).__name__}, not the loss.",
                    "no_loss_returned",
                )
            error = abs(answer - expected) / max(abs(expected), 1e-8)
            if error > tolerance:
                variants = fixed or _step_variants(
                    _fresh(config, len(images)), images, step, config
                )
                mistake = _first_match(answer, variants, tolerance)
                _fail(
                    name,
                    f"{case}: your loss is {answer:.4f}, the library's {expected:.4f} (relative "
                    f"error {error:.1e}).",
                    mistake,
                    None
                    if mistake
                    else "follow Algorithm 1: two views, one encoder call on both, the head, "
                    "nt_xent_loss with config.temperature, all inside the tape.",
                )
            after = [_weights(learner.encoder), _weights(learner.projection_head)]
            reference_after = [_weights(reference.encoder), _weights(reference.projection_head)]
            moved = [
                _update_error(*pair)[0]
                for pair in zip(before, after, reference_before, reference_after, strict=True)
            ]
            if max(moved) == 0:
                _fail(name, f"{case}: the loss is right, but no weight changed.", "no_update")
            for part, size, mistake in zip(
                ("encoder", "head"), moved, ("encoder_not_updated", "head_not_updated"), strict=True
            ):
                if size == 0:
                    _fail(
                        name,
                        f"{case}: the loss is right, but the {part}'s weights did not change.",
                        mistake,
                    )
            worst = max(
                _update_error(*pair)[1]
                for pair in zip(before, after, reference_before, reference_after, strict=True)
            )
            if worst > tolerance:
                _fail(
                    name,
                    f"{case}: the loss is right, but the weight update differs from the "
                    f"library's by {worst:.1e} of its size.",
                    "update_differs",
                )
        return "the losses and weight updates of steps 0 and 1 equal those of st.train.Pretrainer."

    return _run(name, body, _explain_step_error)


def _fresh(config: Any, num_examples: int) -> Any:
    """A new Pretrainer of ``config``: the same initial weights as every other one."""
    from simclr_tf.train import Pretrainer

    return Pretrainer(config, num_examples=num_examples)


def _two_view_loss(pretrainer: Any, images: Any, step: int, config: Any) -> float:
    import tensorflow as tf

    from simclr_tf.augment import two_views
    from simclr_tf.losses import nt_xent_loss

    view1, view2 = two_views(images, config.seed, step, config.augment_config())
    z = pretrainer.projection_head(
        pretrainer.encoder(tf.concat([view1, view2], 0), training=True), training=True
    )
    return float(nt_xent_loss(*tf.split(z, 2, axis=0), config.temperature)[0])


# -- 06_evaluation -------------------------------------------------------------------------

MISTAKES["knn_predict"] = {
    "shape": "return one predicted label per test feature: an int array of shape [N_test].",
    "not_normalised": "the neighbours were chosen by plain dot products: normalise the rows of "
    "both feature arrays to length 1 first, so that the similarity is the cosine.",
    "farthest": "the k *least* similar training images voted: sort the similarities in "
    "decreasing order (np.argsort(-similarity, axis=1)[:, :k]).",
    "unweighted": "every neighbour got one vote: weight each vote by "
    "np.exp(similarity / temperature), so that close neighbours count more.",
    "no_temperature": "the vote weights ignore the temperature: use "
    "np.exp(similarity / temperature), not np.exp(similarity).",
    "k_plus_one": "k + 1 neighbours voted: take exactly the first k columns of the sorted indices.",
}


def _knn_variant(train, labels, test, k, temperature, num_classes, mistake=None) -> np.ndarray:
    """The weighted kNN vote, correct (``None``) or with one mistake of ``MISTAKES``."""
    if mistake != "not_normalised":
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    similarity = test.astype(np.float64) @ train.T.astype(np.float64)
    order = np.argsort(similarity if mistake == "farthest" else -similarity, axis=1)
    neighbours = order[:, : k + (mistake == "k_plus_one")]
    nearest = np.take_along_axis(similarity, neighbours, axis=1)
    nearest = nearest - nearest.max(axis=1, keepdims=True)  # the same vote, without overflow
    weights = {
        "unweighted": np.ones_like(nearest),
        "no_temperature": np.exp(nearest),
    }.get(mistake, np.exp(nearest / temperature))
    scores = np.zeros((len(test), num_classes))
    rows = np.repeat(np.arange(len(test)), neighbours.shape[1])
    np.add.at(scores, (rows, labels[neighbours].ravel()), weights.ravel())
    return scores.argmax(axis=1)


def check_knn_predict(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(train_features, train_labels, test_features, k, temperature, num_classes)``.

    The answer must be the predicted labels ``[N_test]`` of the weighted kNN vote of
    ``st.evaluate.knn_predict``; it passes when every prediction agrees. The synthetic features
    have rows of very different lengths, so that dot products and cosines rank differently.
    """
    from simclr_tf import evaluate

    name = "knn_predict"

    def body() -> str:
        rng = np.random.default_rng(6)
        centres = rng.normal(size=(4, 16))
        train_labels = rng.integers(0, 4, 300)
        test_labels = rng.integers(0, 4, 80)
        lengths = rng.uniform(0.3, 3.0, (380, 1))
        features = np.concatenate([centres[train_labels], centres[test_labels]])
        features = (features + 2.0 * rng.normal(size=(380, 16))) * lengths
        train, test = features[:300].astype(np.float32), features[300:].astype(np.float32)
        cases = ((1, 0.1), (15, 0.1), (40, 0.5))
        for k, temperature in cases:
            case = _at(
                f"case k={k}, T={temperature} (300 training and 80 test features, 4 classes)"
            )
            reference = evaluate.knn_predict(train, train_labels, test, k, temperature, 4)
            answer = np.asarray(_to_numpy(fn(train, train_labels, test, k, temperature, 4)))
            if answer.shape != reference.shape:
                _fail(
                    name,
                    f"{case}: predictions of shape {answer.shape}, expected {reference.shape}.",
                    "shape",
                )
            wrong = np.flatnonzero(answer.astype(np.int64) != reference)
            if len(wrong):
                variants = {
                    key: _knn_variant(train, train_labels, test, k, temperature, 4, key)
                    for key in MISTAKES[name]
                    if key != "shape"
                }
                mistake = next(
                    (
                        key
                        for key, value in variants.items()
                        if np.array_equal(value, answer) and not np.array_equal(value, reference)
                    ),
                    None,
                )
                first = int(wrong[0])
                _fail(
                    name,
                    f"{case}: {len(wrong)} of {len(reference)} predictions differ from the "
                    f"library's (first: test feature {first}, yours {int(answer[first])}, the "
                    f"library's {int(reference[first])}).",
                    mistake,
                    None
                    if mistake
                    else "for test feature 0, print the indices, similarities and labels of "
                    "its k neighbours and add up the weights per class by hand.",
                )
        return (
            f"all {80 * len(cases)} predictions agree with st.evaluate.knn_predict "
            f"({len(cases)} values of k and T)."
        )

    return _run(name, body)


# -- 07_export: nearest neighbours through the SavedModel ----------------------------------------

MISTAKES["nearest_neighbours"] = {
    "shape": "return the indices of exactly k gallery images, an int array of shape [k].",
    "float_input": "the serve endpoint takes the uint8 pixels as they are, [1, 32, 32, 3], "
    "and divides by 255 itself: pass the image without converting it (an image divided by 255 "
    "is cast back to uint8 on the way in and arrives almost black).",
    "no_batch_axis": "the serve endpoint takes a batch: encoder.serve(image[None]) is a batch "
    "of one image.",
    "not_normalised": "the ranking used plain dot products: normalise the query's h and the "
    "gallery's features to length 1 first, so that the similarity is the cosine.",
    "euclidean": "the ranking used Euclidean distances between unnormalised features: rank by "
    "cosine similarity (normalise both, then one matrix product).",
    "farthest": "these are the least similar images: sort the similarities in decreasing "
    "order, np.argsort(-similarity)[:k].",
    "reversed": "the right neighbours in the wrong order: the most similar comes first.",
}


def _neighbour_variant(gallery, query, k, mistake=None) -> np.ndarray:
    """Indices of the k most similar gallery rows, correct (``None``) or with one mistake."""
    gallery, query = gallery.astype(np.float64), query.astype(np.float64)
    if mistake == "euclidean":
        return np.argsort(np.linalg.norm(gallery - query, axis=1))[:k]
    if mistake != "not_normalised":
        gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        query = query / np.linalg.norm(query)
    similarity = gallery @ query
    if mistake == "farthest":
        return np.argsort(similarity)[:k]
    nearest = np.argsort(-similarity)[:k]
    return nearest[::-1] if mistake == "reversed" else nearest


def _explain_serve_error(error: BaseException) -> str | None:
    text = str(error)
    if re.search(r"float", text):
        return "float_input"
    if re.search(r"rank|shape|signature|dimension", text):
        return "no_batch_axis"
    return None


def check_nearest_neighbours(
    fn: Callable[..., Any], encoder_path: str, gallery: np.ndarray | None = None
) -> CheckResult:
    """Checks ``fn(encoder, gallery_features, image, k)`` on an exported SavedModel.

    ``encoder`` is the loaded SavedModel (``tf.saved_model.load(encoder_path)``),
    ``gallery_features`` the ``h`` of the gallery images from its ``serve`` endpoint, ``image``
    one new uint8 image ``[H, W, 3]``. The answer must be the indices of the ``k`` gallery
    images whose ``h`` has the largest cosine similarity with the image's, most similar first.

    Args:
        fn: the function to check.
        encoder_path: folder of a SavedModel written by :func:`simclr_tf.export.export_encoder`.
        gallery: uint8 gallery images ``[N, H, W, 3]`` (at least 60); by default synthetic
            images of varied brightness.
    """
    import tensorflow as tf

    from simclr_tf.export import read_export_metadata

    name = "nearest_neighbours"

    def body() -> str:
        encoder = tf.saved_model.load(encoder_path)
        height, width = np.broadcast_to(read_export_metadata(encoder_path)["image_size"], 2)
        images = gallery
        if images is None:
            rng = np.random.default_rng(7)
            brightness = rng.uniform(0.1, 1.0, (203, 1, 1, 1))
            images = (rng.integers(0, 256, (203, height, width, 3)) * brightness).astype(np.uint8)
        images = np.asarray(images, np.uint8)
        bank, queries = images[:-3], images[-3:]
        features = encoder.serve(bank).numpy()
        query_features = encoder.serve(queries).numpy()
        cases = ((0, 1), (1, 5), (2, 10))
        for index, k in cases:
            case = _at(f"case query {index} (k={k}, a gallery of {len(bank)} images)")
            reference = _neighbour_variant(features, query_features[index], k)
            answer = np.asarray(_to_numpy(fn(encoder, features.copy(), queries[index].copy(), k)))
            if answer.shape != (k,):
                _fail(name, f"{case}: {answer.shape} indices returned, expected ({k},).", "shape")
            if not np.array_equal(answer.astype(np.int64), reference):
                variants = {
                    key: _neighbour_variant(features, query_features[index], k, key)
                    for key in ("not_normalised", "euclidean", "farthest", "reversed")
                }
                # Pixels divided by 255 reach the endpoint cast to uint8: a nearly black image.
                black = (queries[index] == 255).astype(np.uint8)[None]
                variants["float_input"] = _neighbour_variant(
                    features, encoder.serve(black).numpy()[0], k
                )
                mistake = next(
                    (
                        key
                        for key, value in variants.items()
                        if np.array_equal(value, answer) and not np.array_equal(value, reference)
                    ),
                    None,
                )
                _fail(
                    name,
                    f"{case}: yours {answer.tolist()}, expected {reference.tolist()}.",
                    mistake,
                    None
                    if mistake
                    else "print the cosine similarities of your k indices: they should be the "
                    "k largest, in decreasing order.",
                )
        return "the neighbours of 3 queries (k = 1, 5, 10) agree with cosine similarity of h."

    return _run(name, body, _explain_serve_error)
