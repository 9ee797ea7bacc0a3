"""Fixtures of the tests of simclr_tf.evaluate: a tiny encoder, its export, tiny data."""

from __future__ import annotations

import keras
import pytest
from colour_data import IMAGE_SIZE, colour_images

from simclr_tf.export import export_encoder
from simclr_tf.models import build_encoder


@pytest.fixture(scope="module")
def tiny_encoder() -> keras.Model:
    keras.utils.set_random_seed(123)
    return build_encoder("small_cnn", IMAGE_SIZE)


@pytest.fixture(scope="module")
def exported_encoder(tiny_encoder, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("run") / "encoder"
    config = {"encoder": "small_cnn", "width": 1, "stem": "auto", "image_size": IMAGE_SIZE}
    return export_encoder(tiny_encoder, path, IMAGE_SIZE, metadata={"config": config})


@pytest.fixture(scope="module")
def tiny_data():
    return colour_images(60, seed=1), colour_images(30, seed=2)
