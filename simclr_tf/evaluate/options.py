"""What an evaluation is asked to do, and what its protocols share.

* :class:`EvaluationOptions`: the knobs of the protocols (label fractions, kNN's ``k`` and
  temperature, the linear probe's grid, the fine-tuning recipe, batch size, cache, seed), with
  their defaults, checked once when they are made.
* :class:`EvaluationContext`: the encoder, the images and labels, and the features of the
  encoder on them, computed once and handed to every protocol.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from simclr_tf.data.sampling import Split, class_balanced_subset
from simclr_tf.evaluate.features import DEFAULT_BATCH_SIZE, FeatureEncoder, extract_features
from simclr_tf.evaluate.finetune import FinetuneOptions
from simclr_tf.evaluate.knn import DEFAULT_K, DEFAULT_TEMPERATURE
from simclr_tf.evaluate.linear import DEFAULT_C_VALUES

__all__ = ["DEFAULT_LABEL_FRACTIONS", "EvaluationContext", "EvaluationOptions"]

DEFAULT_LABEL_FRACTIONS = (0.01, 0.1)


def _positive_integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; received {name}={value!r}.")


def _numbers(name: str, values: Any, low: float, high: float) -> tuple[float, ...]:
    """``values`` as a tuple of floats, each in ``(low, high]``."""
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        numbers = None
    if numbers is None or any(not low < number <= high for number in numbers):
        raise ValueError(
            f"{name} must be a list of numbers in ({low:g}, {high:g}]; received {name}={values!r}."
        )
    return numbers


@dataclasses.dataclass(frozen=True)
class EvaluationOptions:
    """The knobs of the evaluation protocols; every default is the documented protocol.

    Attributes:
        label_fractions: label fractions of the "finetune" and "random_init" protocols, each
            in (0, 1].
        knn_k: neighbours of the kNN vote (>= 1).
        knn_temperature: temperature of the kNN vote weights (> 0).
        c_values: grid of inverse L2 strengths of the linear probes (non-empty, each > 0).
        finetune_options: recipe of fine-tuning and the supervised baseline; ``None`` means
            ``FinetuneOptions()``.
        batch_size: images per forward pass during feature extraction (>= 1).
        cache_dir: folder for cached features (keyed by encoder weights and data set), or
            ``None`` for no cache.
        seed: seed of every split, subset, initialisation and augmentation.

    Raises:
        ValueError: for a value out of range; the message names the field.
    """

    label_fractions: Sequence[float] = DEFAULT_LABEL_FRACTIONS
    knn_k: int = DEFAULT_K
    knn_temperature: float = DEFAULT_TEMPERATURE
    c_values: Sequence[float] = DEFAULT_C_VALUES
    finetune_options: FinetuneOptions | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    cache_dir: str | os.PathLike | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        fractions = _numbers("label_fractions", self.label_fractions, 0.0, 1.0)
        c_values = _numbers("c_values", self.c_values, 0.0, math.inf)
        if not c_values:
            raise ValueError("c_values must hold at least one value; received c_values=().")
        _positive_integer("knn_k", self.knn_k)
        _positive_integer("batch_size", self.batch_size)
        if not (isinstance(self.knn_temperature, numbers.Real) and self.knn_temperature > 0):
            raise ValueError(
                f"knn_temperature must be a number > 0; received {self.knn_temperature!r}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer; received seed={self.seed!r}.")
        finetune = self.finetune_options or FinetuneOptions()
        if not isinstance(finetune, FinetuneOptions):
            raise ValueError(
                f"finetune_options must be a FinetuneOptions; received {type(finetune).__name__}."
            )
        object.__setattr__(self, "label_fractions", fractions)
        object.__setattr__(self, "c_values", c_values)
        object.__setattr__(self, "finetune_options", finetune)

    def replace(self, **changes: Any) -> EvaluationOptions:
        """A copy with ``changes`` applied, checked like a new instance.

        Raises:
            TypeError: for a name that is not a field.
            ValueError: for a value out of range.
        """
        fields = [field.name for field in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(
                f"Unknown evaluation option(s) {', '.join(unknown)}; EvaluationOptions has "
                f"{', '.join(fields)}."
            )
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class EvaluationContext:
    """Everything the protocols of one evaluation share, made once by :meth:`create`.

    Attributes:
        encoder: the encoder under evaluation.
        dataset: name of the data set (keys the feature cache).
        x_train: uint8 training images ``[N_train, H, W, 3]``.
        y_train: their int labels ``[N_train]``, or ``None``.
        x_test: uint8 test images ``[N_test, H, W, 3]``.
        y_test: their int labels ``[N_test]``, or ``None``.
        train_features: the encoder's float32 features of ``x_train``, ``[N_train, D]``.
        test_features: the encoder's float32 features of ``x_test``, ``[N_test, D]``.
        options: the knobs of the protocols.
        log: called with a line of progress text.
        feature_seconds: wall time of extracting ``train_features`` and ``test_features``.
    """

    encoder: FeatureEncoder
    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    train_features: np.ndarray
    test_features: np.ndarray
    options: EvaluationOptions
    log: Callable[[str], None]
    feature_seconds: float = 0.0

    @classmethod
    def create(
        cls,
        encoder: FeatureEncoder,
        dataset: str,
        data: tuple[Split, Split],
        options: EvaluationOptions,
        log: Callable[[str], None],
    ) -> EvaluationContext:
        """Extracts the encoder's features of both splits (through the cache, if any)."""
        (x_train, y_train), (x_test, y_test) = data
        context = cls(encoder, dataset, x_train, y_train, x_test, y_test, None, None, options, log)
        start = time.perf_counter()
        context.train_features = context.features(encoder, x_train, "train")
        context.test_features = context.features(encoder, x_test, "test")
        context.feature_seconds = time.perf_counter() - start
        log(
            f"features: {context.train_features.shape} + {context.test_features.shape} "
            f"in {context.feature_seconds:.1f} s"
        )
        return context

    @property
    def labeled(self) -> bool:
        """Whether both splits carry labels."""
        return self.y_train is not None and self.y_test is not None

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` over both splits; 0 without labels."""
        if not self.labeled:
            return 0
        return int(max(np.max(self.y_train), np.max(self.y_test)) + 1)

    @functools.cached_property
    def subsets(self) -> dict[str, np.ndarray]:
        """Label fraction (as text, e.g. ``"0.01"``) -> class-balanced, seeded training indices."""
        if not self.labeled:
            return {}
        return {
            str(fraction): class_balanced_subset(self.y_train, fraction, self.options.seed)
            for fraction in self.options.label_fractions
        }

    def features(
        self, encoder: FeatureEncoder, images: np.ndarray, split: str | None = None
    ) -> np.ndarray:
        """Features of ``images`` with the options' batch size, cached when ``split`` is named.

        Args:
            encoder: the encoder to run (``self.encoder`` or another, e.g. a baseline).
            images: uint8 ``[N, H, W, 3]``.
            split: "train" or "test" to use the options' cache (keyed by data set, split and
                the encoder's weights); ``None`` computes without cache.

        Returns:
            float32 ``[N, D]``.
        """
        cache = None
        if split is not None and self.options.cache_dir is not None:
            name = f"{self.dataset}-{split}-{encoder.fingerprint()}.npz"
            cache = os.path.join(self.options.cache_dir, name)
        return extract_features(encoder, images, self.options.batch_size, cache)
