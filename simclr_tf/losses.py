"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

A batch of N images gives 2N augmented views; ``z1[k]`` and ``z2[k]`` are the projections of
the two views of image k. Every one of the 2N views is an *anchor*: its *positive* is the other
view of the same image, and its *negatives* are the 2N - 2 views of the other images (from both
``z1`` and ``z2``). With the cosine similarity ``sim(u, v) = u.v / (|u| |v|)`` and a
temperature ``tau``, the loss of anchor i with positive j is a softmax cross-entropy over the
2N - 1 candidates other than i itself:

    l(i, j) = -log( exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) )

and the loss is the mean of ``l`` over all 2N anchors, that is over both directions
(Chen et al., 2020, equation 1 and Algorithm 1). A low temperature sharpens the softmax, so that
the hardest negatives dominate the gradient.

The *contrastive accuracy* is the fraction of anchors whose positive has the highest similarity
among the 2N - 1 candidates: it is what the loss trains, and it is a cheap progress signal.

Several replicas (``tf.distribute``). Called inside ``strategy.run`` with R replicas that each
hold n = N / R images (replica r the block ``[r n, (r + 1) n)`` of the global batch), the loss
gathers the projections of every replica (:func:`simclr_tf.distribute.all_gather`, an
all-gather built from an all-reduce so that a ``jit_compile=True`` step compiles), so each local
anchor is contrasted against the 2N - 2 negatives of the *global* batch, exactly as on one
device. The convention is:

* each replica returns the mean of ``l`` over its own 2n local anchors;
* the mean of the R replica losses therefore equals the single-device loss on the global batch;
* the training loop divides each replica's loss by R before taking gradients, and the optimizer
  sums the gradients over replicas (as Keras optimizers do under a strategy). The result is the
  single-device gradient: the all-gather's gradient sums, over replicas, the gradient flowing
  back into each replica's slice of the gathered tensor, so the gradients reaching replica r's
  ``z`` include the terms where r's views serve as negatives for the other replicas' anchors.

The loss is computed in float32, whatever the input dtype (mixed precision casts ``z`` to
float16 or bfloat16, whose precision is not enough for a softmax over thousands of
candidates).
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from simclr_tf.distribute import all_gather, replica_block

# Added to an anchor's similarity with itself so that it never wins the softmax or the argmax.
# Large enough to give exp(.) = 0 in float32, small enough not to overflow.
_SELF_SIMILARITY_PENALTY = 1e9


def l2_normalize(z: tf.Tensor, epsilon: float = 1e-12) -> tf.Tensor:
    """Divides each row by its Euclidean norm: ``z / max(|z|, sqrt(epsilon))``.

    Args:
        z: ``[N, D]`` float tensor.
        epsilon: floor of the squared norm, so that an all-zero row stays zero.

    Returns:
        ``[N, D]`` tensor whose non-zero rows have unit norm.
    """
    squared_norm = tf.reduce_sum(tf.square(z), axis=-1, keepdims=True)
    return z * tf.math.rsqrt(tf.maximum(squared_norm, epsilon))


def _check_inputs(z1: tf.Tensor, z2: tf.Tensor, temperature) -> None:
    """Raises ValueError for statically known bad shapes or temperature."""
    if z1.shape.rank is not None and z1.shape.rank != 2:
        raise ValueError(
            f"z1 must have shape [batch, dim] (rank 2); received z1 with shape {z1.shape}."
        )
    if z2.shape.rank is not None and z2.shape.rank != 2:
        raise ValueError(
            f"z2 must have shape [batch, dim] (rank 2); received z2 with shape {z2.shape}."
        )
    if not z1.shape.is_compatible_with(z2.shape):
        raise ValueError(
            "z1 and z2 must have the same shape (the two views of the same images); received "
            f"z1 with shape {z1.shape} and z2 with shape {z2.shape}."
        )
    if isinstance(temperature, numbers.Number) and not temperature > 0:
        raise ValueError(f"temperature must be > 0; received temperature={temperature!r}.")


def nt_xent_loss(
    z1: tf.Tensor, z2: tf.Tensor, temperature: float | tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """NT-Xent loss and contrastive accuracy of two batches of views.

    Works on one device and, called inside ``strategy.run``, on several replicas, where the
    negatives come from the global batch (see the module docstring for the convention).

    Args:
        z1: ``[n, D]`` projections of the first views (any float dtype).
        z2: ``[n, D]`` projections of the second views; row k is the positive of ``z1[k]``.
        temperature: the temperature tau (> 0).

    Returns:
        ``(loss, accuracy)``: float32 scalars, the mean loss over the 2n local anchors and the
        fraction of them whose positive has the highest similarity.

    Raises:
        ValueError: if the shapes are known and not both ``[n, D]``, or if a Python-number
            temperature is not positive.
    """
    z1 = tf.convert_to_tensor(z1)
    z2 = tf.convert_to_tensor(z2)
    _check_inputs(z1, z2, temperature)

    anchors = l2_normalize(tf.concat([tf.cast(z1, tf.float32), tf.cast(z2, tf.float32)], 0))
    local_size = tf.shape(z1)[0]  # n

    # Candidates: [z1 of all replicas; z2 of all replicas], 2N rows (N = n on one device).
    # replica_offset: where this replica's images start among the N of the global batch.
    # One all-gather of the anchors gives [z1_r; z2_r] replica by replica: [R, 2, n, D],
    # transposed to [2, R, n, D].
    replica_offset, global_size = replica_block(local_size)
    dim = tf.shape(anchors)[1]
    gathered = tf.reshape(all_gather(anchors), [-1, 2, local_size, dim])
    candidates = tf.reshape(tf.transpose(gathered, [1, 0, 2, 3]), [-1, dim])

    temperature = tf.cast(temperature, tf.float32)
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature  # [2n, 2N]

    # Local anchor a (a < n: first view of image k = a; else second view of k = a - n) sits at
    # column k (first view) or N + k (second view) of the candidates, with k global; its
    # positive is the other one of the two.
    local_index = tf.range(local_size) + replica_offset
    self_columns = tf.concat([local_index, global_size + local_index], 0)
    positive_columns = tf.concat([global_size + local_index, local_index], 0)

    self_mask = tf.one_hot(self_columns, 2 * global_size, dtype=tf.float32)
    logits = logits - _SELF_SIMILARITY_PENALTY * self_mask

    per_anchor_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=positive_columns, logits=logits
    )
    loss = tf.reduce_mean(per_anchor_loss)
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, positive_columns), tf.float32))
    return loss, accuracy
