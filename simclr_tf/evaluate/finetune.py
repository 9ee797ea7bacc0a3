"""Few-label fine-tuning, and the baselines it must beat.

The practical promise of self-supervised pretraining is that it makes labels go further: with
1 % or 10 % of the labels, fine-tuning a pretrained encoder should beat training the same
network from scratch on the same images (SimCLR paper, section 6 and table 7). Three models are
compared here, all on the **same** class-balanced, seeded subset of the training labels and all
tested on the full test set:

* **fine-tuned**: a copy of the pretrained encoder plus a new linear head, everything trained;
* **supervised**: the same architecture, randomly initialised, trained the same way;
* the linear probe of :mod:`simclr_tf.evaluate.linear` on the frozen pretrained encoder, with
  the same labels (and, in :mod:`simclr_tf.evaluate.random_init`, on the random-init one).

Training uses light augmentation (random resized crop with a generous minimum area and
horizontal flip, from :mod:`simclr_tf.augment`), SGD with Nesterov momentum and a cosine
learning-rate decay, and a configurable number of epochs so that it stays affordable on a CPU.
The caller's encoder is never modified: the fine-tuned network is a copy
(:func:`simclr_tf.evaluate.rebuild.keras_copy`). Every random choice (initialisation of the
head and of the baseline, data order, augmentation) comes from the ``seed`` argument, so a run
is reproducible without setting any global seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from simclr_tf.evaluate.linear import probe_features
from simclr_tf.evaluate.rebuild import keras_copy

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext


@dataclass(frozen=True)
class FinetuneOptions:
    """Recipe shared by fine-tuning and the supervised baseline.

    Attributes:
        epochs: passes over the labelled subset.
        batch_size: images per step (clipped to the subset size).
        learning_rate: peak SGD learning rate, decayed to 0 with a cosine.
        momentum: Nesterov momentum.
        weight_decay: decoupled weight decay of SGD (0 disables it).
        crop_min_area: smallest crop area of the random resized crop (fraction of the image).
        flip_prob: probability of a horizontal flip.
    """

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_min_area: float = 0.25
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; received {name}={value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; received {self.learning_rate!r}.")
        if not 0.0 < self.crop_min_area <= 1.0:
            raise ValueError(f"crop_min_area must be in (0, 1]; received {self.crop_min_area!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_classifier(
    encoder: keras.Model,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    options: FinetuneOptions | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Trains ``encoder`` plus a linear head end to end on labelled images; tests it.

    ``encoder`` itself is trained (pass a copy, see
    :func:`simclr_tf.evaluate.rebuild.keras_copy`).

    Args:
        encoder: Keras model, float ``[B, H, W, 3]`` in [0, 1] -> ``[B, D]``.
        train_images: uint8 ``[N, H, W, 3]``.
        train_labels: int ``[N]``.
        test_images: uint8 ``[M, H, W, 3]``.
        test_labels: int ``[M]``.
        options: the training recipe; ``None`` means ``FinetuneOptions()``.
        num_classes: width of the head; by default ``max(label) + 1``.
        seed: seed of the head's initialisation, data order and augmentation.

    Returns:
        A dict with ``top1`` (test accuracy), ``train_loss`` (mean loss of the last epoch),
        ``steps``, ``num_labels`` and ``seconds``.
    """
    from simclr_tf.augment import AugmentConfig, augment_batch

    options = options or FinetuneOptions()
    start = time.perf_counter()
    train_labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    test_labels = np.asarray(test_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes or max(train_labels.max(), test_labels.max()) + 1)
    count = len(train_labels)
    batch_size = min(options.batch_size, count)
    steps_per_epoch = count // batch_size  # full batches only: BatchNorm needs > 1 image
    total_steps = steps_per_epoch * options.epochs

    head = keras.layers.Dense(
        num_classes, kernel_initializer=keras.initializers.GlorotUniform(seed), name="classifier"
    )
    images_in = keras.Input(shape=train_images.shape[1:], name="images")
    classifier = keras.Model(images_in, head(encoder(images_in)), name="classifier")
    schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, max(total_steps, 1))
    optimizer = keras.optimizers.SGD(
        schedule,
        momentum=options.momentum,
        nesterov=True,
        weight_decay=options.weight_decay or None,
    )
    # Weight decay on the kernels only, not on BatchNorm's gamma/beta or on biases.
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    augment = AugmentConfig(
        crop_area=(options.crop_min_area, 1.0),
        flip_prob=options.flip_prob,
        color_prob=0.0,
        grayscale_prob=0.0,
        blur_prob=0.0,
        jit_compile=False,  # crop and flip are cheap; compiling them is not worth the wait
    )
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images: tf.Tensor, labels: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        views = augment_batch(images, tf.stack([tf.constant(seed, tf.int64), step]), augment)
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, classifier(views, training=True))
        variables = classifier.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    step = 0
    epoch_losses: list[float] = []
    for _ in range(options.epochs):
        order = rng.permutation(count)
        epoch_losses = []
        for index in range(steps_per_epoch):
            batch = np.sort(order[index * batch_size : (index + 1) * batch_size])
            loss = train_step(
                tf.constant(train_images[batch]),
                tf.constant(train_labels[batch]),
                tf.constant(step, tf.int64),
            )
            epoch_losses.append(float(loss))
            step += 1

    predictions = np.empty(len(test_labels), dtype=np.int64)
    for begin in range(0, len(test_labels), 256):
        batch = tf.cast(test_images[begin : begin + 256], tf.float32) / 255.0
        logits = classifier(batch, training=False)
        predictions[begin : begin + 256] = tf.argmax(logits, axis=-1).numpy()
    return {
        "top1": float(np.mean(predictions == test_labels)),
        "train_loss": float(np.mean(epoch_losses)) if epoch_losses else math.nan,
        "steps": step,
        "num_labels": count,
        "seconds": time.perf_counter() - start,
    }


def finetune_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "finetune" protocol: for each label fraction, fine-tuned vs. from scratch vs. probe.

    Args:
        context: the evaluation; its ``subsets`` give the labelled training images.

    Returns:
        ``{"fractions": {fraction: {"num_labels", "linear", "finetune", "supervised"}},
        "options": the recipe as a dict}``.
    """
    options = context.options.finetune_options
    seed = context.options.seed
    fractions = {}
    for fraction, subset in context.subsets.items():
        entry: dict[str, Any] = {
            "num_labels": int(len(subset)),
            "linear": probe_features(
                context, context.train_features, context.test_features, subset
            ),
        }
        for key, pretrained in (("finetune", True), ("supervised", False)):
            entry[key] = train_classifier(
                keras_copy(context.encoder, pretrained=pretrained, seed=seed),
                context.x_train[subset],
                context.y_train[subset],
                context.x_test,
                context.y_test,
                options,
                context.num_classes,
                seed,
            )
            context.log(f"{key} with {fraction} of the labels: {entry[key]['top1']:.4f}")
        fractions[fraction] = entry
    return {"fractions": fractions, "options": options.to_dict()}
