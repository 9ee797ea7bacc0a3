"""Reference solutions to the exercises of the notebooks (one function or class per exercise).

Try the exercise first: the checker in the notebook tells you whether your answer is right
and, if not, which input failed and a hint. Each solution below passes its checker, which
``tests/test_exercises.py`` verifies. To check one here (from this folder)::

    import simclr_tf as st
    from solutions import nt_xent_vectorised
    st.exercises.check_nt_xent(nt_xent_vectorised)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import simclr_tf as st


# 01_augmentation, st.exercises.check_adjust_saturation: blend with the gray image.
def adjust_saturation(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Blends each image with its own gray version: ``f * x + (1 - f) * gray``, clipped."""
    gray = images @ np.array([0.299, 0.587, 0.114], dtype=images.dtype)  # [B, H, W]
    factors = factors[:, None, None, None]
    blended = factors * images + (1.0 - factors) * gray[..., None]
    return np.clip(blended, 0.0, 1.0)


# 01_augmentation, st.exercises.check_image_transforms: two views from the primitives.
class ImageTransforms:
    """Two random SimCLR views of one image, composed from ``st.transforms``' operations."""

    def __init__(self, image_size, config=None, seed=None):
        self.size = (image_size, image_size)
        self.config = config or st.augment.AugmentConfig.preset("cifar")
        self.rng = np.random.default_rng(seed)  # once: every view draws from it

    def augment(self, image):
        """One view: crop and resize, flip, colour jitter, grayscale (the CIFAR recipe)."""
        config, rng = self.config, self.rng
        view = st.transforms.to_float(image)
        box = st.transforms.sample_crop_box(
            rng, view.shape[0], view.shape[1], config.crop_area, config.crop_aspect
        )
        view = st.transforms.resized_crop(view, box, self.size)
        if rng.uniform() < config.flip_prob:
            view = st.transforms.horizontal_flip(view)
        if rng.uniform() < config.color_prob:
            view = st.transforms.color_jitter(
                view,
                brightness=st.transforms.random_factor(rng, config.brightness_range),
                contrast=st.transforms.random_factor(rng, config.contrast_range),
                saturation=st.transforms.random_factor(rng, config.saturation_range),
                hue=rng.uniform(-config.hue_range, config.hue_range),
                order=tuple(rng.permutation(4)),
            )
        if rng.uniform() < config.grayscale_prob:
            view = st.transforms.to_grayscale(view)
        return view

    def __call__(self, image):
        return self.augment(image), self.augment(image)


# 02_base_encoder, st.exercises.check_cifar_stem: the stem for 32x32 images.
def cifar_stem(channels: int) -> keras.Model:
    """One 3x3 convolution with stride 1 (no bias, no max-pool), BatchNorm, ReLU."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(channels, 3, strides=1, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    )


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


# 04_contrastive_loss, st.exercises.check_nt_xent: vectorised NT-Xent.
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


# 05_training, st.exercises.check_train_step: one step of Algorithm 1.
def train_step(encoder, head, optimizer, images, step, config):
    """Two views, one encoder call on both, the head, NT-Xent, gradients, one update."""
    view1, view2 = st.augment.two_views(images, config.seed, step, config.augment_config())
    with tf.GradientTape() as tape:
        h = encoder(tf.concat([view1, view2], axis=0), training=True)
        z1, z2 = tf.split(head(h, training=True), 2, axis=0)
        loss, _ = st.losses.nt_xent_loss(z1, z2, config.temperature)
    variables = encoder.trainable_variables + head.trainable_variables
    optimizer.apply(tape.gradient(loss, variables), variables)
    return loss


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


# 07_export, st.exercises.check_nearest_neighbours: retrieval through the SavedModel.
def nearest_neighbours(encoder, gallery_features: np.ndarray, image: np.ndarray, k: int):
    """The k gallery images most cosine-similar to ``image``, most similar first."""
    query = encoder.serve(image[None]).numpy()[0]  # uint8 in: the endpoint scales itself
    gallery = gallery_features / np.linalg.norm(gallery_features, axis=1, keepdims=True)
    similarity = gallery @ (query / np.linalg.norm(query))
    return np.argsort(-similarity)[:k]


# 08_what_simclr_buys, st.exercises.check_rotate_batch: the batch of rotation prediction.
def rotate_batch(images):
    """All four quarter turns of float images [B, S, S, C]: (rotated [4B, S, S, C], labels [4B])."""
    turned = [tf.image.rot90(images, k) for k in range(4)]  # counter-clockwise, as np.rot90
    labels = tf.repeat(tf.range(4), tf.shape(images)[0])
    return tf.concat(turned, axis=0), labels
