"""Few-label fine-tuning, and the baselines it must beat.

The practical promise of self-supervised pretraining is that it makes labels go further: with
1 % or 10 % of the labels, fine-tuning a pretrained encoder should beat training the same
network from scratch on the same images (SimCLR paper, section 6 and table 7). Three models are
compared here, all on the **same** class-balanced, seeded subset of the training labels and all
tested on the full test set:

* **fine-tuned**: a copy of the pretrained encoder plus a new linear head, everything trained;
* **supervised**: the same architecture, randomly initialised, trained the same way;
* the linear probes of :mod:`simclr_tf.evaluate.linear` on the frozen pretrained or
  random-init encoder (run by ``simclr_tf.evaluate``).

Training uses light augmentation (random resized crop with a generous minimum area and
horizontal flip, from :mod:`simclr_tf.augment`), SGD with Nesterov momentum and a cosine
learning-rate decay, and a configurable number of epochs so that it stays affordable on a CPU.
The caller's encoder is never modified: the fine-tuned network is a copy.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from simclr_tf.evaluate.features import FeatureEncoder


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


def architecture_of(encoder: FeatureEncoder) -> dict[str, Any]:
    """Name, image size, width and stem of an exported encoder, from its training config.

    Looks at the ``config`` entry of the export's ``simclr_tf.json``, then at ``config.json``
    in the run directory around the export.

    Raises:
        ValueError: if neither names the architecture.
    """
    candidates = [encoder.metadata.get("config") or {}]
    run_config = os.path.join(os.path.dirname(encoder.path or ""), "config.json")
    if os.path.isfile(run_config):
        with open(run_config, encoding="utf-8") as handle:
            candidates.append(json.load(handle))
    for config in candidates:
        if "encoder" in config:
            return {
                "name": config["encoder"],
                "image_size": int(encoder.image_size[0]),
                "width": int(config.get("width", 1)),
                "stem": config.get("stem", "auto"),
                "representation_dim": int(config.get("representation_dim", 0)),
            }
    raise ValueError(
        f"The export at {encoder.path!r} does not record its architecture (no 'config' in "
        "simclr_tf.json and no config.json beside it), so it cannot be rebuilt for fine-tuning "
        "or a random-init baseline. Export with metadata={'config': config.to_dict()}, or pass "
        "the in-memory Keras encoder."
    )


def keras_copy(encoder: FeatureEncoder, pretrained: bool, seed: int = 0) -> keras.Model:
    """A new Keras encoder with the same architecture, either with copied or fresh weights.

    Args:
        encoder: the encoder to copy (in memory, or an export whose architecture is recorded).
        pretrained: copy the weights (``True``) or initialise them at random (``False``).
        seed: seed of the random initialisation (also seeds Keras' global generators).

    Returns:
        A Keras model sharing no variables with ``encoder``.

    Raises:
        ValueError: if an export's architecture is unknown or its weights do not fit.
    """
    keras.utils.set_random_seed(seed)
    if encoder.keras_model is not None:
        model = keras.models.clone_model(encoder.keras_model)
        if pretrained:
            model.set_weights(encoder.keras_model.get_weights())
        return model
    from simclr_tf.models import build_encoder

    spec = architecture_of(encoder)
    model = build_encoder(
        spec["name"],
        spec["image_size"],
        spec["width"],
        spec["stem"],
        representation_dim=spec["representation_dim"],
    )
    if pretrained:
        saved = {v.name.split(":")[0]: v for v in encoder._saved_model.variables}
        for variable in model.variables:
            source = saved.get(variable.path)
            if source is None or tuple(source.shape) != tuple(variable.shape):
                raise ValueError(
                    f"The export at {encoder.path!r} has no weight matching {variable.path!r} "
                    f"{tuple(variable.shape)}: its recorded architecture {spec} does not fit."
                )
            variable.assign(source.numpy())
    return model


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

    ``encoder`` itself is trained (pass a copy, see :func:`keras_copy`).

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

    keras.utils.set_random_seed(seed)
    head = keras.layers.Dense(num_classes, name="classifier")
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
