"""Dynamic loss scaling for float16 that takes one decision for all replicas.

With ``mixed_float16`` the loss is multiplied by a large *loss scale* before the gradients are
taken, so that small gradients do not underflow in float16, and the gradients are divided by it
before the update. When a gradient overflows (inf or NaN) the step is skipped and the scale
halved; after ``dynamic_growth_steps`` good steps it is doubled
(``keras.optimizers.LossScaleOptimizer``).

Keras decides "are the gradients finite?" on each replica from that replica's own gradients,
*before* they are summed over replicas, and under ``MirroredStrategy`` keeps replica 0's answer.
When only another replica overflows, the step is applied with the summed (infinite) gradients
and every weight becomes -inf; with several workers each worker follows its own answer, one
updates, another skips, and the next collective waits forever.
:class:`LossScaleOptimizer` all-reduces the answer, so a step is applied on every replica or
skipped on every replica.

:func:`current_loss_scale` and :func:`skipped_steps` read what a run logs about it: the scale
a step used, and the number of steps skipped so far, ``step - optimizer.iterations`` (the
optimizer counts the updates it applied, the run's step counts every batch).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from simclr_tf.distribute import all_replicas_agree

__all__ = ["LossScaleOptimizer", "current_loss_scale", "skipped_steps"]


@keras.saving.register_keras_serializable(package="simclr_tf")
class LossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """``keras.optimizers.LossScaleOptimizer`` whose skip decision is the same on every replica.

    A step is applied only when the gradients of *every* replica are finite; otherwise every
    replica skips it and the scale is halved. Outside a strategy, or with one replica, it is
    Keras' optimizer unchanged.

    Args:
        inner_optimizer: the optimizer that applies the unscaled gradients.
        initial_scale: the first loss scale (Keras' default, 2 ** 15).
        dynamic_growth_steps: good steps after which the scale is doubled.
        **kwargs: passed to ``keras.optimizers.LossScaleOptimizer``.
    """

    def check_finite(self, grads: list[tf.Tensor | None]) -> tf.Tensor:
        """True when every gradient of every replica is finite (bool scalar)."""
        return all_replicas_agree(super().check_finite(grads))


def current_loss_scale(optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
    """The factor the loss is multiplied by now (float32 scalar; 1 without loss scaling).

    Read it before ``optimizer.apply`` to log the scale a step used.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.cast(tf.identity(optimizer.dynamic_scale), tf.float32)
    return tf.constant(1.0)


def skipped_steps(optimizer: keras.optimizers.Optimizer, step: tf.Variable) -> tf.Tensor:
    """Steps skipped so far for non-finite gradients (float32 scalar; 0 without loss scaling).

    Args:
        optimizer: the run's optimizer; its ``iterations`` count the updates it applied.
        step: the run's step counter, which counts every batch trained on, skipped or not.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.cast(step, tf.float32) - tf.cast(optimizer.iterations, tf.float32)
    return tf.constant(0.0)
