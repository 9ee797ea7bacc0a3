"""Reference solutions to the exercises of the notebooks (one function per exercise).

Try the exercise first: the checker in the notebook tells you whether your answer is right
and, if not, what is wrong. Each function below passes its checker, which
``tests/test_exercises.py`` verifies. To check one here::

    import simclr_tf as st
    from solutions import nt_xent_vectorised
    st.exercises.check_nt_xent(nt_xent_vectorised)
"""

from __future__ import annotations

import keras
import numpy as np


# 01_augmentation, st.exercises.check_adjust_saturation: blend with the gray image.
def adjust_saturation(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Blends each image with its own gray version: ``f * x + (1 - f) * gray``, clipped."""
    gray = images @ np.array([0.299, 0.587, 0.114], dtype=images.dtype)  # [B, H, W]
    factors = factors[:, None, None, None]
    blended = factors * images + (1.0 - factors) * gray[..., None]
    return np.clip(blended, 0.0, 1.0)


# 02_base_encoder, st.exercises.check_conv_parameter_count: parameters of a convolution.
def conv_parameter_count(
    kernel_size: int, in_channels: int, out_channels: int, use_bias: bool
) -> int:
    """One ``k x k x C_in`` filter per output channel, plus one bias each if used."""
    weights = kernel_size * kernel_size * in_channels * out_channels
    return weights + (out_channels if use_bias else 0)


# 03_projection_head, st.exercises.check_projection_head: the head g.
def projection_head(input_dim: int, hidden_dim: int, output_dim: int) -> keras.Model:
    """Dense (no bias) -> BatchNorm -> ReLU -> Dense, as in SimCLR v1."""
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden_dim, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(output_dim),
        ]
    )


# 04_contrastive_loss, st.exercises.check_contrastive_accuracy: contrastive accuracy.
def contrastive_accuracy(z1: np.ndarray, z2: np.ndarray) -> float:
    """Share of the 2N anchors whose most similar other view is their positive."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    similarity = z @ z.T
    np.fill_diagonal(similarity, -np.inf)  # an anchor is not its own candidate
    n = len(z1)
    positives = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    return float(np.mean(similarity.argmax(axis=1) == positives))


# 04_contrastive_loss, st.exercises.check_nt_xent: vectorised NT-Xent (shown in the notebook).
def nt_xent_vectorised(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """Mean over the 2N anchors of the cross-entropy of their positive among 2N - 1 others."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / temperature
    np.fill_diagonal(logits, -np.inf)
    n = len(z1)
    positives = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    log_normaliser = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))
    log_normaliser += logits.max(1)
    return float(np.mean(log_normaliser - logits[np.arange(2 * n), positives]))


# 05_training, st.exercises.check_learning_rate_schedule: warm-up then cosine decay.
def warmup_cosine_learning_rate(
    step: int, peak: float, warmup_steps: int, total_steps: int
) -> float:
    """Linear from 0 to ``peak`` over ``warmup_steps``, then half a cosine down to 0.

    The learning rate is 0 from ``total_steps`` on (also when the warm-up is longer than the run).
    """
    if step >= total_steps:
        return 0.0
    if step < warmup_steps:
        return peak * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
    return 0.5 * peak * (1.0 + np.cos(np.pi * progress))


# 06_evaluation, st.exercises.check_knn_predict: weighted kNN vote.
def knn_predict(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    k: int,
    temperature: float,
    num_classes: int,
) -> np.ndarray:
    """The k most cosine-similar training images vote, with weights exp(similarity / T)."""
    bank = train_features / np.linalg.norm(train_features, axis=1, keepdims=True)
    queries = test_features / np.linalg.norm(test_features, axis=1, keepdims=True)
    similarity = queries @ bank.T  # [N_test, N_train]
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(similarity, neighbours, axis=1) / temperature)
    scores = np.zeros((len(queries), num_classes))
    for column in range(k):
        np.add.at(
            scores,
            (np.arange(len(queries)), train_labels[neighbours[:, column]]),
            weights[:, column],
        )
    return scores.argmax(axis=1)


# 07_export, st.exercises.check_downstream_model: a classifier on the frozen encoder.
def downstream_model(encoder_path: str, num_classes: int) -> keras.Model:
    """uint8 images -> frozen SavedModel encoder (its ``serve`` endpoint) -> linear head."""
    encoder = keras.layers.TFSMLayer(encoder_path, call_endpoint="serve", trainable=False)
    images = keras.Input(shape=(32, 32, 3), dtype="uint8")
    logits = keras.layers.Dense(num_classes)(encoder(images))
    return keras.Model(images, logits)
