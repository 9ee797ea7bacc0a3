"""The augmentation's settings and constants, in plain Python (no TensorFlow, no NumPy).

Both implementations read this module: the batched TensorFlow one (the rest of
:mod:`simclr_tf.augment`) and the one-image NumPy/OpenCV reference
(:mod:`simclr_tf.transforms`), as does the run configuration (:mod:`simclr_tf.config`). Since it
imports nothing heavy, importing it (or :mod:`simclr_tf.transforms`) never loads TensorFlow.

* :class:`AugmentConfig`: every knob, with the paper's defaults and named presets.
* :data:`GRAY_WEIGHTS`, :data:`RGB_TO_YIQ`: the colour-space constants both implementations use.
* :data:`JITTER_OPERATIONS`: the four colour-jitter operations, in the order jitter orders index.
* :data:`HUE_METHODS`, :data:`DEFAULT_HUE_METHOD`, :func:`check_hue_method`: how a hue shift
  is computed, the default of every function that takes a method, and the one check of it.
* :data:`PRESETS`, :data:`PRESET_VALUES`: the paper's CIFAR-10 and ImageNet recipes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights for R, G, B (those of OpenCV's RGB2GRAY)."""

RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)
"""RGB -> YIQ (NTSC) matrix, rows Y, I, Q; the inverse is computed from it."""

JITTER_OPERATIONS = ("brightness", "contrast", "saturation", "hue")
"""The four colour-jitter operations; ``AugmentParameters.jitter_order`` indexes this tuple."""

HUE_METHODS = ("hsv", "yiq")
"""How a hue shift is computed: the exact HSV rotation, or a rotation of the YIQ chroma plane."""

DEFAULT_HUE_METHOD = "yiq"
"""The hue method of :class:`AugmentConfig` and of every ``adjust_hue`` and ``color_jitter``."""

PRESET_VALUES: dict[str, dict[str, Any]] = {
    "cifar": {"color_strength": 0.5, "blur_prob": 0.0},
    "imagenet": {"color_strength": 1.0, "blur_prob": 0.5},
    # The ablation of the paper's Figure 5: random crop (and flip) without colour distortion.
    # Its counterpart, colour distortion without cropping, is "cifar" with a crop area of 1
    # (SimCLRConfig's --crop_min_area=1.0: the box is the whole image).
    "cifar_crop_only": {
        "color_strength": 0.5,
        "blur_prob": 0.0,
        "color_prob": 0.0,
        "grayscale_prob": 0.0,
    },
}
"""The fields each preset of :meth:`AugmentConfig.preset` sets (the others keep the defaults)."""

PRESETS = tuple(PRESET_VALUES)
"""Names of the augmentation presets: "cifar", "imagenet" and the ablation "cifar_crop_only"."""


def check_hue_method(method: str, argument: str = "hue_method") -> str:
    """Checks a hue method; every function that takes one calls this.

    Args:
        method: the method received.
        argument: the name of the argument it came in, for the error message.

    Returns:
        ``method``, one of :data:`HUE_METHODS`.

    Raises:
        ValueError: naming ``argument`` and the value received, if ``method`` is unknown.
    """
    if method not in HUE_METHODS:
        raise ValueError(
            f"{argument} must be one of {', '.join(HUE_METHODS)}; received {argument}={method!r}."
        )
    return method


def _check_pair(name: str, value: Any) -> tuple[float, float]:
    """``value`` as a pair of floats with ``0 < low <= high``; raises naming ``name``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (low, high) of numbers; received {name}={value!r}."
        ) from None
    if not 0.0 < low <= high:
        raise ValueError(f"{name} must satisfy 0 < low <= high; received {name}={value!r}.")
    return low, high


def _is_positive_int(value: Any) -> bool:
    return int(value) == value and value >= 1


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Every knob of the augmentation. Defaults are the paper's ImageNet values.

    Attributes:
        crop_area: range of the crop's area, as a fraction of the image. A training run sets
            it to ``(crop_min_area, 1.0)``, its :class:`~simclr_tf.config.SimCLRConfig` field
            (``--crop_min_area``) being the lower end only.
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

    Raises:
        ValueError: on construction, naming the first invalid field and the value received.
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
    hue_method: str = DEFAULT_HUE_METHOD
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1
    solarize_prob: float = 0.0
    solarize_threshold: float = 0.5
    jit_compile: bool = True

    def __post_init__(self) -> None:
        self._check_ranges()
        self._check_color()
        self._check_sizes()

    def _check_ranges(self) -> None:
        """The (low, high) ranges (stored as float pairs) and the probabilities."""
        for name in ("crop_area", "crop_aspect", "blur_sigma"):
            object.__setattr__(self, name, _check_pair(name, getattr(self, name)))
        if self.crop_area[1] > 1.0:
            raise ValueError(
                f"crop_area must lie in (0, 1] (fractions of the image); received "
                f"crop_area={self.crop_area!r}."
            )
        for name in ("flip_prob", "color_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1]; received {name}={value!r}.")

    def _check_color(self) -> None:
        """The colour strength, the jitter ranges and the hue method."""
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
        check_hue_method(self.hue_method)

    def _check_sizes(self) -> None:
        """The crop attempts, the output size, the blur kernel and the solarisation threshold."""
        if not _is_positive_int(self.crop_attempts):
            raise ValueError(
                f"crop_attempts must be an integer >= 1; received crop_attempts="
                f"{self.crop_attempts!r}."
            )
        if self.output_size is not None and not _is_positive_int(self.output_size):
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

    def _jitter_range(self, value: float | None, per_strength: float) -> float:
        """``value`` if it is set, else ``per_strength`` times the colour strength."""
        return per_strength * self.color_strength if value is None else float(value)

    @property
    def brightness_range(self) -> float:
        """Maximal relative brightness change (0.8 s unless ``brightness`` is set)."""
        return self._jitter_range(self.brightness, 0.8)

    @property
    def contrast_range(self) -> float:
        """Maximal relative contrast change (0.8 s unless ``contrast`` is set)."""
        return self._jitter_range(self.contrast, 0.8)

    @property
    def saturation_range(self) -> float:
        """Maximal relative saturation change (0.8 s unless ``saturation`` is set)."""
        return self._jitter_range(self.saturation, 0.8)

    @property
    def hue_range(self) -> float:
        """Maximal hue shift in turns (0.2 s unless ``hue`` is set)."""
        return self._jitter_range(self.hue, 0.2)

    def blur_kernel_size(self, side: int) -> int:
        """Number of taps of the blur kernel for images of ``side`` pixels (odd, >= 1)."""
        return 2 * (int(side * self.blur_kernel_fraction) // 2) + 1

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AugmentConfig:
        """The paper's recipe for CIFAR-10 or ImageNet, with ``overrides`` applied.

        Args:
            name: "cifar" (colour strength 0.5, no blur) or "imagenet" (colour strength 1.0,
                blur with probability 0.5); see :data:`PRESET_VALUES`.
            **overrides: any field of this class, e.g. ``crop_area=(0.2, 1.0)``.

        Returns:
            The configuration.

        Raises:
            ValueError: for an unknown preset or field name, or an invalid value.
        """
        if name not in PRESET_VALUES:
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
        return cls(**{**PRESET_VALUES[name], **overrides})
