"""Tests of the NT-Xent loss against the paper's definition, on one and on two replicas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf.losses import l2_normalize, nt_xent_loss


def reference_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> tuple[float, float]:
    """NT-Xent written from Algorithm 1 of the paper, with explicit loops, in float64.

    The paper interleaves the views: z_{2k-1} and z_{2k} are the two views of image k (0-based
    here: 2k and 2k + 1), and L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)].
    """
    n = len(z1)
    views = []
    for k in range(n):
        views.append(np.asarray(z1[k], np.float64))
        views.append(np.asarray(z2[k], np.float64))

    def similarity(u, v):
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    def pair_loss(i, j):
        numerator = math.exp(similarity(views[i], views[j]) / temperature)
        denominator = sum(
            math.exp(similarity(views[i], views[k]) / temperature) for k in range(2 * n) if k != i
        )
        return -math.log(numerator / denominator)

    def positive_wins(i, j):
        others = [similarity(views[i], views[k]) for k in range(2 * n) if k not in (i, j)]
        return similarity(views[i], views[j]) > max(others, default=-math.inf)

    loss = 0.0
    correct = 0
    for k in range(n):
        loss += pair_loss(2 * k, 2 * k + 1) + pair_loss(2 * k + 1, 2 * k)
        correct += positive_wins(2 * k, 2 * k + 1) + positive_wins(2 * k + 1, 2 * k)
    return loss / (2 * n), correct / (2 * n)


def random_views(n: int, dim: int, seed: int, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of correlated random embeddings (the second view is the first plus noise)."""
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, dim)).astype(np.float32)
    z2 = (z1 + noise * rng.normal(size=(n, dim))).astype(np.float32)
    return z1, z2


@pytest.mark.parametrize(("n", "dim", "temperature"), [(1, 3, 0.5), (4, 8, 0.5), (7, 5, 0.1)])
def test_matches_reference_from_algorithm_1(n, dim, temperature):
    z1, z2 = random_views(n, dim, seed=n)
    loss, accuracy = nt_xent_loss(z1, z2, temperature)
    expected_loss, expected_accuracy = reference_nt_xent(z1, z2, temperature)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(accuracy.numpy(), expected_accuracy)


def test_accuracy_is_one_for_perfectly_aligned_views_and_between_zero_and_one_otherwise():
    z1 = np.eye(6, dtype=np.float32)
    _, accuracy = nt_xent_loss(z1, 3.0 * z1, 0.5)  # same directions, different norms
    assert accuracy.numpy() == 1.0
    z1, z2 = random_views(16, 4, seed=0, noise=3.0)
    _, accuracy = nt_xent_loss(z1, z2, 0.5)
    assert 0.0 <= accuracy.numpy() < 1.0


@pytest.mark.parametrize(("n", "temperature"), [(2, 0.5), (9, 0.1), (32, 1.0)])
def test_identical_embeddings_give_log_of_number_of_candidates(n, temperature):
    # Every similarity is 1/tau, so each anchor's softmax is uniform over 2N - 1 candidates.
    z = np.ones((n, 4), np.float32)
    loss, _ = nt_xent_loss(z, z, temperature)
    np.testing.assert_allclose(loss.numpy(), math.log(2 * n - 1), rtol=1e-6)


def test_symmetric_in_the_two_views():
    z1, z2 = random_views(8, 6, seed=1)
    loss_12, accuracy_12 = nt_xent_loss(z1, z2, 0.3)
    loss_21, accuracy_21 = nt_xent_loss(z2, z1, 0.3)
    np.testing.assert_allclose(loss_12.numpy(), loss_21.numpy(), rtol=1e-6)
    assert accuracy_12.numpy() == accuracy_21.numpy()


def test_invariant_to_the_norm_of_each_embedding():
    z1, z2 = random_views(5, 4, seed=2)
    scales = np.arange(1, 6, dtype=np.float32)[:, None]
    loss, _ = nt_xent_loss(z1, z2, 0.5)
    scaled_loss, _ = nt_xent_loss(z1 * scales, z2 / scales, 0.5)
    np.testing.assert_allclose(loss.numpy(), scaled_loss.numpy(), rtol=1e-5)


def test_temperature_divides_the_similarities():
    # Scaling every similarity by c is the same as dividing the temperature by c: checked
    # with the reference, and the loss of well-aligned views falls as the temperature falls.
    z1, z2 = random_views(6, 5, seed=3, noise=0.1)
    losses = [nt_xent_loss(z1, z2, t)[0].numpy() for t in (1.0, 0.5, 0.1)]
    for temperature, loss in zip((1.0, 0.5, 0.1), losses, strict=True):
        np.testing.assert_allclose(loss, reference_nt_xent(z1, z2, temperature)[0], rtol=1e-5)
    assert losses[0] > losses[1] > losses[2]
    # As the temperature grows, every softmax tends to uniform: the loss tends to log(2N - 1).
    np.testing.assert_allclose(nt_xent_loss(z1, z2, 1e4)[0].numpy(), math.log(2 * 6 - 1), rtol=1e-3)


def test_temperature_may_be_a_tensor_inside_tf_function():
    z1, z2 = random_views(4, 3, seed=4)
    loss = tf.function(nt_xent_loss)(z1, z2, tf.constant(0.2))[0]
    np.testing.assert_allclose(loss.numpy(), reference_nt_xent(z1, z2, 0.2)[0], rtol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_half_precision_inputs_give_float32_close_to_float32(dtype):
    z1, z2 = random_views(16, 32, seed=5)
    loss, accuracy = nt_xent_loss(tf.cast(z1, dtype), tf.cast(z2, dtype), 0.1)
    assert loss.dtype == tf.float32 and accuracy.dtype == tf.float32
    np.testing.assert_allclose(loss.numpy(), nt_xent_loss(z1, z2, 0.1)[0].numpy(), rtol=2e-2)


def test_gradient_matches_finite_differences_of_the_reference():
    z1, z2 = random_views(3, 4, seed=6)
    z1_var, z2_var = tf.Variable(z1), tf.Variable(z2)
    with tf.GradientTape() as tape:
        loss, _ = nt_xent_loss(z1_var, z2_var, 0.5)
    gradient = tape.gradient(loss, z1_var).numpy()
    step = 1e-3
    for row, column in [(0, 0), (1, 2), (2, 3)]:
        plus, minus = z1.astype(np.float64), z1.astype(np.float64)
        plus[row, column] += step
        minus[row, column] -= step
        numeric = (reference_nt_xent(plus, z2, 0.5)[0] - reference_nt_xent(minus, z2, 0.5)[0]) / (
            2 * step
        )
        np.testing.assert_allclose(gradient[row, column], numeric, rtol=1e-3, atol=1e-5)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows():
    z = tf.constant([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(l2_normalize(z).numpy(), [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


@pytest.mark.parametrize(
    ("z1_shape", "z2_shape", "message"),
    [((4, 3), (5, 3), "same shape"), ((4, 3, 1), (4, 3, 1), "rank 2"), ((4,), (4, 3), "rank 2")],
)
def test_bad_shapes_raise(z1_shape, z2_shape, message):
    with pytest.raises(ValueError, match=message):
        nt_xent_loss(tf.zeros(z1_shape), tf.zeros(z2_shape), 0.5)


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_non_positive_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(tf.ones((2, 3)), tf.ones((2, 3)), temperature)


# --- Several replicas -------------------------------------------------------------------------


def _per_replica(strategy, array: np.ndarray):
    """Splits the rows of ``array`` evenly over the replicas."""
    parts = np.split(array, strategy.num_replicas_in_sync)
    return strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(parts[context.replica_id_in_sync_group])
    )


def test_two_replica_loss_and_gradient_equal_single_device(two_replicas):
    strategy = two_replicas
    replicas = strategy.num_replicas_in_sync
    z1, z2 = random_views(8, 6, seed=7)
    temperature = 0.2

    z1_t, z2_t = tf.constant(z1), tf.constant(z2)
    with tf.GradientTape() as tape:
        tape.watch([z1_t, z2_t])
        single_loss, single_accuracy = nt_xent_loss(z1_t, z2_t, temperature)
    single_grad_z1, single_grad_z2 = tape.gradient(single_loss, [z1_t, z2_t])

    @tf.function
    def replica_step(local_z1, local_z2):
        with tf.GradientTape() as tape:
            tape.watch([local_z1, local_z2])
            loss, accuracy = nt_xent_loss(local_z1, local_z2, temperature)
            # The training loop's convention: divide by the number of replicas.
            scaled = loss / replicas
        grad_z1, grad_z2 = tape.gradient(scaled, [local_z1, local_z2])
        return loss, accuracy, grad_z1, grad_z2

    outputs = strategy.run(
        replica_step, args=(_per_replica(strategy, z1), _per_replica(strategy, z2))
    )
    losses, accuracies, grads_z1, grads_z2 = (
        [v.numpy() for v in strategy.experimental_local_results(output)] for output in outputs
    )
    np.testing.assert_allclose(np.mean(losses), single_loss.numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.mean(accuracies), single_accuracy.numpy())
    # Each replica's gradient is the single-device gradient of its own rows: it includes the
    # terms where its views are negatives of the other replica's anchors (through all_gather).
    np.testing.assert_allclose(np.concatenate(grads_z1), single_grad_z1.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.concatenate(grads_z2), single_grad_z2.numpy(), atol=1e-6)
    # ...which differs from what a loss without all_gather would give.
    local_only = nt_xent_loss(z1[:4], z2[:4], temperature)[0].numpy()
    assert not np.isclose(local_only, losses[0])


def test_two_replica_weight_gradient_summed_over_replicas_equals_single_device(two_replicas):
    strategy = two_replicas
    replicas = strategy.num_replicas_in_sync
    rng = np.random.default_rng(8)
    x1 = rng.normal(size=(8, 5)).astype(np.float32)
    x2 = (x1 + 0.3 * rng.normal(size=(8, 5))).astype(np.float32)
    kernel = rng.normal(size=(5, 4)).astype(np.float32)

    weights = tf.Variable(kernel)
    with tf.GradientTape() as tape:
        single_loss, _ = nt_xent_loss(x1 @ weights, x2 @ weights, 0.5)
    single_gradient = tape.gradient(single_loss, weights).numpy()

    with strategy.scope():
        mirrored_weights = tf.Variable(kernel)

    @tf.function
    def replica_gradient(local_x1, local_x2):
        with tf.GradientTape() as tape:
            loss, _ = nt_xent_loss(local_x1 @ mirrored_weights, local_x2 @ mirrored_weights, 0.5)
            scaled = loss / replicas
        gradient = tape.gradient(scaled, mirrored_weights)
        return tf.distribute.get_replica_context().all_reduce("sum", gradient)

    summed = strategy.run(
        replica_gradient, args=(_per_replica(strategy, x1), _per_replica(strategy, x2))
    )
    for gradient in strategy.experimental_local_results(summed):
        np.testing.assert_allclose(gradient.numpy(), single_gradient, rtol=1e-4, atol=1e-6)
