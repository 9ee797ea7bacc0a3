"""Checkers of notebook 04 (contrastive loss): NT-Xent and the contrastive accuracy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    first_match,
    record_case,
    run_check,
    to_numpy,
)

# -- NT-Xent ---------------------------------------------------------------------------------------

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
            case = record_case(
                f"case {index} of {len(pairs)} (N={len(z1)}, D={z1.shape[1]}, T={temperature})"
            )
            reference = float(nt_xent_loss(z1, z2, temperature)[0])
            answer = to_numpy(fn(z1.copy(), z2.copy(), temperature))
            if answer.size != 1:
                fail(
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
                mistake = first_match(answer, variants, tolerance)
                fail(
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

    return run_check(name, body)


# -- the contrastive accuracy ----------------------------------------------------------------------

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
            case = record_case(f"case {index} of {len(pairs)} (N={len(z1)}, D={z1.shape[1]})")
            reference = float(nt_xent_loss(z1, z2, temperature)[1])
            answer = float(np.asarray(to_numpy(fn(z1.copy(), z2.copy()))).reshape(()))
            if abs(answer - reference) > 1e-6:
                variants = {
                    mistake: _accuracy_variant(z1, z2, mistake) for mistake in MISTAKES[name]
                }
                mistake = next(
                    (key for key, value in variants.items() if abs(value - answer) < 1e-6), None
                )
                fail(
                    name,
                    f"{case}: your accuracy is {answer:.3f}, the library's {reference:.3f}.",
                    mistake,
                    None
                    if mistake
                    else "for each of the 2N rows of the similarity matrix (diagonal excluded), "
                    "is the largest entry in the column of its positive (k <-> k + N)?",
                )
        return f"{len(pairs)} cases agree with the accuracy of st.losses.nt_xent_loss."

    return run_check(name, body)
