"""A loss whose gradients overflow on one replica only, for the loss-scaling tests
(tests/test_distribute.py, its worker processes, and benchmarks/gpu_check.py)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


def overflow_on_replica_one(loss: Callable) -> Callable:
    """``loss(z1, z2, temperature)`` whose gradient is infinite on replica 1 and unchanged on
    the others; the loss itself stays finite everywhere.

    The gradient is multiplied by a factor (inf on replica 1, 1 elsewhere) rather than
    selected with ``tf.where``, whose zero gradient for the branch not taken would turn into
    0 * inf = NaN on the other replicas too.
    """

    def overflowing_loss(z1, z2, temperature):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        factor = tf.where(tf.equal(replica, 1), float("inf"), 1.0)

        @tf.custom_gradient
        def overflow(x):
            return tf.identity(x), lambda dy: dy * tf.cast(factor, dy.dtype)

        return loss(overflow(z1), z2, temperature)

    return overflowing_loss
