"""Inputs shared by the tests of the batched augmentation (tests/test_augment_*.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SEED = tf.constant([3, 14], tf.int64)


def random_images(batch=8, height=16, width=16, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    return rng.random((batch, height, width, 3), dtype=np.float32)
