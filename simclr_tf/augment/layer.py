"""SimCLR augmentation as a Keras layer (:class:`SimCLRAugmentation`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from simclr_tf.augment.config import AugmentConfig
from simclr_tf.augment.seeds import seed_pair
from simclr_tf.augment.views import augment_batch, to_unit_range


@keras.saving.register_keras_serializable(package="simclr_tf")
class SimCLRAugmentation(keras.layers.Layer):
    """SimCLR augmentation as a Keras layer: each call in training returns a fresh view.

    The layer keeps a step counter (a non-trainable int64 weight) that is folded into its
    seed and increased by one on every training call, so successive calls give different
    views and a layer built with the same seed gives the same sequence of views. No seed
    value is baked into a traced graph. Inside ``strategy.run`` each replica's input is taken
    to be its block of the global batch (see :func:`~simclr_tf.augment.views.augment_batch`).

    With ``training=False`` the layer only converts to float32 in [0, 1] (and resizes to
    ``config.output_size`` when it is set). ``training`` defaults to True, as in Keras's own
    random preprocessing layers. The layer always computes in float32.

    Args:
        config: the augmentation settings (default ``AugmentConfig()``).
        seed: integer seed.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0, **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.config = AugmentConfig() if config is None else config
        self.seed = int(seed)

    def build(self, input_shape: Any) -> None:
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, training: bool = True) -> tf.Tensor:
        if not training:
            images = to_unit_range(inputs)
            if self.config.output_size:
                size = (self.config.output_size, self.config.output_size)
                images = tf.image.resize(images, size, method="bilinear")
            return images
        step = self.step.value
        self.step.assign_add(1)
        seed = tf.random.experimental.stateless_fold_in(
            seed_pair(self.seed), tf.cast(step, tf.int64), alg="philox"
        )
        return augment_batch(inputs, seed, self.config)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        size = self.config.output_size
        if size:
            return (input_shape[0], size, size, input_shape[3])
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        base = super().get_config()
        return {**base, "config": dataclasses.asdict(self.config), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SimCLRAugmentation:
        config = dict(config)
        augment = config.pop("config", None)
        augment = AugmentConfig(**augment) if isinstance(augment, dict) else augment
        return cls(config=augment, **config)
