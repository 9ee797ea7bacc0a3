"""Tiny data sets with answers known in advance, for the tests of simclr_tf.evaluate."""

from __future__ import annotations

import cv2
import numpy as np

IMAGE_SIZE = 8


def colour_images(count: int, num_classes: int = 3, seed: int = 0):
    """uint8 images whose class is their dominant colour channel: easy for any encoder."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    images = rng.integers(0, 60, size=(count, IMAGE_SIZE, IMAGE_SIZE, 3))
    images[np.arange(count), :, :, labels % 3] += 180
    return images.astype(np.uint8), labels.astype(np.int64)


def write_image_folder(root, images, labels) -> None:
    """Writes two-class images as PNG files under ``root/red`` and ``root/green``."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / ("red", "green")[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index}.png"), image[..., ::-1])


def numpy_global_state() -> np.ndarray:
    """The state of NumPy's legacy global generator, which ``keras.utils.set_random_seed``
    reseeds: library code that leaves it unchanged has not reseeded it."""
    return np.random.get_state()[1].copy()  # noqa: NPY002
