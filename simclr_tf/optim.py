"""Optimizers and learning-rate schedule for SimCLR pre-training.

SimCLR trains with very large batches (up to 8192) and a correspondingly large learning rate.
Plain SGD with momentum becomes unstable there, so the paper uses **LARS** (You et al., 2017,
"Large Batch Training of Convolutional Networks"): each weight tensor gets its own learning
rate, scaled by a *trust ratio* ``eta * |w| / |g|``, so that every layer moves by about the same
*relative* amount per step, whatever the scale of its gradient. For one weight tensor ``w``
with gradient ``g``, learning rate ``lr``, momentum ``m``, weight decay ``wd`` and trust
coefficient ``eta`` (0.001), one step is:

    g     = g + wd * w                               (weight decay, as an L2 term)
    ratio = eta * |w| / |g|   (1 if |w| or |g| is 0)  (layer-wise adaptation)
    v     = m * v + lr * ratio * g                    (momentum buffer, v starts at 0)
    w     = w - v

Biases and BatchNorm parameters (the 1-D variables: ``bias``, ``gamma``, ``beta``) get neither
the weight decay nor the trust ratio, as in SimCLR's implementation: both options can be turned
off.

The other optimizers are Keras's, with the same exclusion of 1-D variables from weight decay:

* ``"sgd"``: SGD with momentum, weight decay added to the gradient (L2 regularisation);
* ``"adam"``: Adam, weight decay added to the gradient (L2 regularisation, as "Adam with
  weight decay" was before AdamW);
* ``"adamw"``: AdamW, *decoupled* weight decay: ``w = w - lr * wd * w`` at each step,
  separately from the Adam update (Loshchilov and Hutter, 2019). Because it is multiplied by
  the (small) Adam learning rate, useful values of ``wd`` are much larger than for SGD
  (e.g. 0.05 rather than 1e-4).

The learning rate follows :class:`WarmupCosineDecay`: a linear warm-up from 0 to its peak
(large-batch training diverges without it), then a cosine decay to 0 over the rest of training.
The peak is the base learning rate scaled with the batch size (:func:`scaled_learning_rate`,
paper appendix B.1): ``linear`` (``lr * batch / 256``) or ``sqrt`` (``lr * sqrt(batch)``, which
the paper found better for small batches and long training).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from simclr_tf.config import LR_SCALINGS as LR_SCALING_NAMES
from simclr_tf.config import OPTIMIZERS as OPTIMIZER_NAMES
from simclr_tf.loss_scale import LossScaleOptimizer

if TYPE_CHECKING:
    from simclr_tf.config import SimCLRConfig

# Batch size at which the linearly scaled learning rate equals the base learning rate.
LINEAR_SCALING_REFERENCE_BATCH = 256


def _is_vector(variable) -> bool:
    """True for biases and BatchNorm parameters: variables with at most one dimension."""
    return len(variable.shape) <= 1


def _check_hyperparameters(momentum: float | None, weight_decay: float) -> None:
    if momentum is not None and not (isinstance(momentum, numbers.Real) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1); received momentum={momentum!r}.")
    if not (isinstance(weight_decay, numbers.Real) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0; received weight_decay={weight_decay!r}.")


@keras.saving.register_keras_serializable(package="simclr_tf")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling with momentum (see the module docstring).

    Works inside ``tf.function`` (also with ``jit_compile=True``), under a ``tf.distribute``
    strategy, and wrapped in ``keras.optimizers.LossScaleOptimizer``.

    Args:
        learning_rate: float, or a ``LearningRateSchedule``.
        momentum: momentum of the update, in [0, 1).
        weight_decay: L2 weight decay added to the gradient (>= 0).
        trust_coefficient: eta, the scale of the trust ratio (> 0); the paper uses 0.001.
        exclude_vectors_from_weight_decay: no weight decay for 1-D variables (biases,
            BatchNorm). Further variables can be excluded by name with Keras's
            ``optimizer.exclude_from_weight_decay(var_names=[...])`` before the first step.
        exclude_vectors_from_adaptation: no trust ratio (ratio 1) for 1-D variables.
        nesterov: use Nesterov momentum.
        name: name of the optimizer.
        **kwargs: other arguments of ``keras.optimizers.Optimizer`` (e.g. ``clipnorm``).
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        exclude_vectors_from_weight_decay: bool = True,
        exclude_vectors_from_adaptation: bool = True,
        nesterov: bool = False,
        name: str = "lars",
        **kwargs: Any,
    ):
        _check_hyperparameters(momentum, weight_decay)
        if not (isinstance(trust_coefficient, numbers.Real) and trust_coefficient > 0):
            raise ValueError(
                f"trust_coefficient must be > 0; received trust_coefficient={trust_coefficient!r}."
            )
        super().__init__(
            learning_rate=learning_rate, weight_decay=float(weight_decay), name=name, **kwargs
        )
        self.momentum = float(momentum)
        self.trust_coefficient = float(trust_coefficient)
        self.exclude_vectors_from_weight_decay = bool(exclude_vectors_from_weight_decay)
        self.exclude_vectors_from_adaptation = bool(exclude_vectors_from_adaptation)
        self.nesterov = bool(nesterov)

    def build(self, variables: list) -> None:
        """Creates one momentum buffer per trainable variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _use_weight_decay(self, variable) -> bool:
        if self.exclude_vectors_from_weight_decay and _is_vector(variable):
            return False
        return super()._use_weight_decay(variable)

    def _apply_weight_decay(self, variables: list) -> None:
        # Keras applies *decoupled* weight decay here, before `update_step`; LARS instead adds
        # it to the gradient inside `update_step`, before the trust ratio is computed.
        return

    def update_step(self, gradient, variable, learning_rate) -> None:
        """One LARS step for one variable (called by Keras for each variable)."""
        dtype = variable.dtype
        learning_rate = tf.cast(learning_rate, dtype)
        gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)
        weights = tf.convert_to_tensor(variable)

        if self.weight_decay and self._use_weight_decay(variable):
            gradient = gradient + tf.cast(self.weight_decay, dtype) * weights

        if not (self.exclude_vectors_from_adaptation and _is_vector(variable)):
            weight_norm = tf.norm(weights)
            gradient_norm = tf.norm(gradient)
            trust_ratio = tf.where(
                (weight_norm > 0) & (gradient_norm > 0),
                tf.cast(self.trust_coefficient, dtype)
                * weight_norm
                / tf.maximum(gradient_norm, tf.cast(1e-30, dtype)),
                tf.ones_like(weight_norm),
            )
            learning_rate = learning_rate * trust_ratio

        velocity = self.momentums[self._get_variable_index(variable)]
        step = learning_rate * gradient
        new_velocity = tf.cast(self.momentum, dtype) * tf.convert_to_tensor(velocity) + step
        self.assign(velocity, new_velocity)
        if self.nesterov:
            self.assign_sub(variable, tf.cast(self.momentum, dtype) * new_velocity + step)
        else:
            self.assign_sub(variable, new_velocity)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "trust_coefficient": self.trust_coefficient,
                "exclude_vectors_from_weight_decay": self.exclude_vectors_from_weight_decay,
                "exclude_vectors_from_adaptation": self.exclude_vectors_from_adaptation,
                "nesterov": self.nesterov,
            }
        )
        return config


class _NoWeightDecayOnVectors:
    """Mixin for Keras optimizers: 1-D variables (biases, BatchNorm) are never decayed."""

    def _use_weight_decay(self, variable) -> bool:
        if _is_vector(variable):
            return False
        return super()._use_weight_decay(variable)


class _WeightDecayAsL2(_NoWeightDecayOnVectors):
    """Mixin for Keras optimizers: weight decay added to the gradient (L2 regularisation)."""

    def _apply_weight_decay(self, variables: list) -> None:
        # Replaces Keras's decoupled weight decay (see `update_step`).
        return

    def update_step(self, gradient, variable, learning_rate) -> None:
        if self.weight_decay and self._use_weight_decay(variable):
            gradient = tf.cast(tf.convert_to_tensor(gradient), variable.dtype)
            gradient = gradient + tf.cast(self.weight_decay, variable.dtype) * tf.convert_to_tensor(
                variable
            )
        super().update_step(gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package="simclr_tf")
class SGDWithL2(_WeightDecayAsL2, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` whose weight decay is an L2 term added to the gradient, as in
    SimCLR's and most ResNet recipes, and never applied to 1-D variables (biases, BatchNorm)."""


@keras.saving.register_keras_serializable(package="simclr_tf")
class AdamWithL2(_WeightDecayAsL2, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose weight decay is an L2 term added to the gradient, never
    applied to 1-D variables (biases, BatchNorm)."""


@keras.saving.register_keras_serializable(package="simclr_tf")
class AdamW(_NoWeightDecayOnVectors, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` (decoupled weight decay) that never decays 1-D variables
    (biases, BatchNorm)."""


@keras.saving.register_keras_serializable(package="simclr_tf")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak_learning_rate``, then cosine decay to 0.

    ``lr(step) = peak * step / warmup_steps`` for ``step < warmup_steps``, then
    ``peak * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2``, and 0
    from ``total_steps`` on. Keras calls it with the optimizer's step counter, which starts at 0.
    A warm-up longer than the whole run is allowed (a short test run of a long recipe): the
    learning rate then only rises, and never reaches its peak.

    Args:
        peak_learning_rate: learning rate at the end of the warm-up (>= 0).
        warmup_steps: length of the warm-up, in optimizer steps (>= 0).
        total_steps: number of steps of the run (>= 1); the learning rate is 0 from there on.

    Raises:
        ValueError: for a value out of range.
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if not (isinstance(peak_learning_rate, numbers.Real) and peak_learning_rate >= 0):
            raise ValueError(
                "peak_learning_rate must be a number >= 0; received "
                f"peak_learning_rate={peak_learning_rate!r}."
            )
        for arg_name, value in (("warmup_steps", warmup_steps), ("total_steps", total_steps)):
            if not (isinstance(value, numbers.Integral) and value >= 0):
                raise ValueError(
                    f"{arg_name} must be an integer >= 0 (optimizer steps); received "
                    f"{arg_name}={value!r}."
                )
        if total_steps < 1:
            raise ValueError(
                f"total_steps must be >= 1 (optimizer steps); received total_steps={total_steps!r}."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        warmup = float(self.warmup_steps)
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        warmup_lr = peak * step / max(warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / decay_steps, 0.0, 1.0)
        cosine_lr = 0.5 * peak * (1.0 + tf.cos(math.pi * progress))
        learning_rate = tf.where(step < warmup, warmup_lr, cosine_lr)
        return tf.where(step < float(self.total_steps), learning_rate, tf.zeros_like(learning_rate))

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def scaled_learning_rate(base_lr: float, batch_size: int, scaling: str) -> float:
    """The peak learning rate for a batch size (paper, appendix B.1).

    Args:
        base_lr: base learning rate (>= 0).
        batch_size: global batch size (>= 1).
        scaling: "linear" (``base_lr * batch_size / 256``), "sqrt"
            (``base_lr * sqrt(batch_size)``; the paper uses ``base_lr = 0.075``) or "none"
            (``base_lr``).

    Returns:
        The scaled learning rate.

    Raises:
        ValueError: for an unknown ``scaling`` or a value out of range.
    """
    if scaling not in LR_SCALING_NAMES:
        raise ValueError(
            f"scaling must be one of {', '.join(LR_SCALING_NAMES)}; received scaling={scaling!r}."
        )
    if not (isinstance(base_lr, numbers.Real) and base_lr >= 0):
        raise ValueError(f"base_lr must be a number >= 0; received base_lr={base_lr!r}.")
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1; received batch_size={batch_size!r}.")
    if scaling == "linear":
        return float(base_lr) * batch_size / LINEAR_SCALING_REFERENCE_BATCH
    if scaling == "sqrt":
        return float(base_lr) * math.sqrt(batch_size)
    return float(base_lr)


def build_optimizer(
    name: str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    weight_decay: float,
    momentum: float = 0.9,
) -> keras.optimizers.Optimizer:
    """Builds one of the optimizers of the module docstring.

    Args:
        name: "lars", "sgd", "adam" or "adamw".
        learning_rate: a float or a ``LearningRateSchedule`` (e.g. :class:`WarmupCosineDecay`).
        weight_decay: weight decay (>= 0), never applied to biases and BatchNorm parameters.
        momentum: momentum of LARS and SGD, in [0, 1); Adam and AdamW keep their own
            ``beta_1 = 0.9``.

    Returns:
        An unbuilt Keras optimizer.

    Raises:
        ValueError: for an unknown ``name`` or a value out of range.
    """
    if name not in OPTIMIZER_NAMES:
        raise ValueError(
            f"name must be one of {', '.join(OPTIMIZER_NAMES)}; received name={name!r}."
        )
    _check_hyperparameters(momentum, weight_decay)
    if isinstance(learning_rate, numbers.Real):
        if learning_rate < 0:
            raise ValueError(
                f"learning_rate must be >= 0; received learning_rate={learning_rate!r}."
            )
        learning_rate = float(learning_rate)
    weight_decay = float(weight_decay)
    if name == "lars":
        return LARS(learning_rate, momentum=float(momentum), weight_decay=weight_decay)
    if name == "sgd":
        return SGDWithL2(learning_rate, momentum=float(momentum), weight_decay=weight_decay)
    if name == "adam":
        return AdamWithL2(learning_rate, weight_decay=weight_decay)
    return AdamW(learning_rate, weight_decay=weight_decay)


def learning_rate_from_config(
    config: SimCLRConfig, steps_per_epoch: int, total_steps: int
) -> WarmupCosineDecay:
    """The learning-rate schedule of a run: ``config.lr`` scaled by ``config.lr_scaling`` for
    its batch, ``config.warmup_epochs`` of linear warm-up, then cosine decay to 0 at
    ``total_steps``."""
    return WarmupCosineDecay(
        peak_learning_rate=scaled_learning_rate(config.lr, config.batch_size, config.lr_scaling),
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        total_steps=total_steps,
    )


def optimizer_from_config(
    config: SimCLRConfig, learning_rate: Callable[[], Any]
) -> keras.optimizers.Optimizer:
    """The optimizer of a run (``config.optimizer``, weight decay, momentum), wrapped in the
    loss-scale optimizer for ``mixed_float16``.

    Args:
        config: the run configuration.
        learning_rate: a function of no arguments giving the current learning rate (so that
            it follows the run's own step counter).

    Returns:
        An unbuilt Keras optimizer.
    """
    optimizer = build_optimizer(
        config.optimizer, learning_rate, config.weight_decay, config.momentum
    )
    if config.precision == "mixed_float16":
        optimizer = LossScaleOptimizer(optimizer)
    return optimizer
