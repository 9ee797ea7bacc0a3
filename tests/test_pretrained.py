"""The pretrained encoder in the repository: it loads offline and measures what it says."""

from __future__ import annotations

import numpy as np
import pytest

from simclr_tf import pretrained


def test_the_bundled_encoder_loads_and_maps_images_to_h():
    encoder = pretrained.load_encoder()
    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    h = np.asarray(encoder(images, training=False))
    assert h.shape == (3, 1024) and np.isfinite(h).all()
    assert h.std() > 0


def test_the_bundle_records_how_it_was_made_and_what_it_measured():
    measured = pretrained.results()
    assert "python -m simclr_tf.pipeline" in measured["command"]
    assert measured["encoder_mb"] <= 15
    for split in ("cifar10", "sample"):
        assert 0.1 < measured[split]["linear"] <= 1.0 and 0.1 < measured[split]["knn"] <= 1.0
    assert measured["cifar10"]["linear"] > measured["cifar10"]["random_init"]["linear"]
    folder = pretrained.path()
    for name in ("config.json", "metrics.csv", "training_curves.png", "README.md"):
        assert (folder / name).is_file(), name


def test_unknown_names_say_what_is_there():
    with pytest.raises(FileNotFoundError, match="available: cifar10-cpu"):
        pretrained.path("imagenet-resnet50")


def test_the_comparison_line_only_compares_like_with_like():
    line = pretrained.comparison_line("sample", 32, 0.5)
    reference = pretrained.results()["sample"]["linear"]
    assert f"{100 * reference:.1f} %" in line and "this run 50.0 %" in line
    assert pretrained.comparison_line("folder", 32, 0.5) is None
    assert pretrained.comparison_line("cifar10", 96, 0.5) is None
    assert pretrained.comparison_line("sample", 32, None) is None
