"""Cross-replica building blocks: where a replica's shard sits in the global batch, an
all-gather that XLA can compile, one decision for all replicas, averaged statistics.

Under a ``tf.distribute`` strategy with R replicas, a global batch of N images is split into R
contiguous blocks of n = N / R: replica r holds images ``[r n, (r + 1) n)`` of the global
batch. :func:`replica_block` gives that block; the augmentation uses it to give every image the
random parameters of its *global* position (so the views do not depend on how many devices
share the batch), and the loss to find each local anchor's column among the gathered
candidates. The input pipeline produces exactly that layout
(:func:`simclr_tf.data.batches.epoch_batches` with an ``InputContext``).

Every function here works in a replica context (inside ``strategy.run``) and also outside any
strategy, where it does what one device would do: no communication at all.

Why :func:`all_gather` is not ``ReplicaContext.all_gather``: the latter becomes a
``CollectiveGatherV2`` op, which has no XLA kernel, so a ``jit_compile=True`` step with several
GPUs cannot be compiled. An all-reduce can (``CollectiveReduceV2``, NCCL on GPUs), and an
all-gather is an all-reduce of zeros in which each replica has written its own block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

__all__ = [
    "all_gather",
    "all_replicas_agree",
    "average_over_replicas",
    "num_replicas",
    "replica_block",
    "replica_local_statistics",
    "xla_compiles_collectives",
]


def _context() -> tf.distribute.ReplicaContext | None:
    """The replica context when there are several replicas, else ``None``."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def num_replicas() -> int:
    """Replicas in sync in the current replica context (1 outside any strategy)."""
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_block(local_size: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """Where this replica's shard sits in the global batch.

    Args:
        local_size: n, the images of this replica's shard (int or int32 scalar tensor).

    Returns:
        ``(offset, global_size)``: int32 scalars ``r * n`` and ``R * n`` for replica r of R;
        ``(0, n)`` outside a multi-replica context.
    """
    local_size = tf.cast(local_size, tf.int32)
    context = _context()
    if context is None:
        return tf.constant(0, tf.int32), local_size
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    return replica * local_size, context.num_replicas_in_sync * local_size


def all_gather(value: tf.Tensor) -> tf.Tensor:
    """Concatenates ``value`` of every replica along axis 0, in replica order.

    Built from a SUM all-reduce, so that XLA can compile it: each replica writes its
    ``[n, ...]`` block into zeros of shape ``[R, n, ...]`` at its replica id and the
    replicas sum. The gradient is the all-gather's: the gradient reaching replica r's
    ``value`` is the sum, over replicas, of the gradients flowing into block r of their
    gathered tensors (the gradient of an all-reduce SUM is an all-reduce SUM).

    Args:
        value: ``[n, ...]`` tensor with the same shape on every replica.

    Returns:
        ``[R n, ...]`` tensor, the same on every replica; ``value`` itself outside a
        multi-replica context.
    """
    value = tf.convert_to_tensor(value)
    context = _context()
    if context is None:
        return value
    replicas = context.num_replicas_in_sync
    replica = context.replica_id_in_sync_group
    rank = value.shape.rank
    mask = tf.reshape(tf.one_hot(replica, replicas, dtype=value.dtype), [replicas] + [1] * rank)
    blocks = context.all_reduce(tf.distribute.ReduceOp.SUM, mask * value[None])
    gathered = tf.reshape(blocks, tf.concat([[-1], tf.shape(value)[1:]], 0))
    leading = None if value.shape[0] is None else replicas * value.shape[0]
    gathered.set_shape([leading, *value.shape[1:]])
    return gathered


def all_replicas_agree(flag: tf.Tensor) -> tf.Tensor:
    """True on every replica when ``flag`` is true on every replica (a logical AND).

    A decision that changes what every replica does next (skip the update, stop) must be
    the same everywhere: if one replica applies a step and another skips it, the weights
    drift apart, and with several workers the next collective waits forever.

    Args:
        flag: a bool scalar, this replica's answer.

    Returns:
        bool scalar, the same on every replica; ``flag`` outside a multi-replica context.
    """
    context = _context()
    if context is None:
        return flag
    dissent = tf.cast(tf.logical_not(flag), tf.float32)
    return tf.equal(context.all_reduce(tf.distribute.ReduceOp.SUM, dissent), 0.0)


def replica_local_statistics(layers: Sequence[Any]) -> list[tf.Variable]:
    """The variables that each replica updates on its own and nobody aggregates.

    Those are the non-trainable floating-point variables that a strategy mirrors without
    aggregation: BatchNorm's moving mean and variance when BatchNorm is not synchronised.
    Each replica moves them with its own shard's statistics, so the copies drift apart and
    a checkpoint keeps only the first replica's.

    Args:
        layers: Keras models or layers.

    Returns:
        Their ``tf.Variable`` objects to pass to :func:`average_over_replicas`.
    """
    found = []
    for layer in layers:
        for variable in layer.non_trainable_variables:
            value = getattr(variable, "value", variable)
            if not value.dtype.is_floating:
                continue
            if getattr(value, "aggregation", None) == tf.VariableAggregation.NONE:
                found.append(value)
    return found


def average_over_replicas(variables: Sequence[tf.Variable]) -> None:
    """Sets every replica's copy of each variable to the mean of the copies.

    Call it in a replica context after each step; it does nothing outside one (one copy)
    or for an empty list. For BatchNorm's moving mean, whose update is linear, the average
    of the replicas' moving means is the moving mean of the global batch means.

    Args:
        variables: mirrored variables with ``aggregation=NONE`` (see
            :func:`replica_local_statistics`).
    """
    context = _context()
    if context is None or not variables:
        return
    means = context.all_reduce(
        tf.distribute.ReduceOp.MEAN, [tf.identity(variable) for variable in variables]
    )
    for variable, mean in zip(variables, means, strict=True):
        variable.assign(mean)


def xla_compiles_collectives(strategy: tf.distribute.Strategy) -> bool:
    """Whether cross-replica ops of ``strategy`` can run inside a ``jit_compile=True`` step.

    TensorFlow compiles collectives with XLA on TPUs and, under ``MirroredStrategy`` and
    ``MultiWorkerMirroredStrategy``, only when every device is a GPU: on CPU devices it routes
    them through ``merge_call``, which cannot run inside a compiled function. One replica has
    no collectives to compile.

    Args:
        strategy: the run's strategy.

    Returns:
        True when a compiled multi-replica step can work.
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    devices = getattr(strategy.extended, "worker_devices", ())
    return bool(devices) and all(
        tf.DeviceSpec.from_string(device).device_type == "GPU" for device in devices
    )
