"""Tests of the embedding figures in simclr_tf.viz: t-SNE, projector, retrieval, curves."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from google.protobuf import text_format
from matplotlib.image import imread
from tensorboard.plugins import projector

from simclr_tf import viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path) -> np.ndarray:
    """The file is a PNG that decodes to an image; returns its pixels."""
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 10 and pixels.shape[1] > 10
    return pixels


def blobs(per_class: int = 20, num_classes: int = 3, dims: int = 16, seed: int = 0):
    """Well-separated Gaussian clusters, one per class."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(num_classes, dims)
    labels = np.repeat(np.arange(num_classes), per_class)
    features = centres[labels] + rng.standard_normal((len(labels), dims))
    return features.astype(np.float32), labels


def test_tsne_keeps_separated_classes_apart_and_writes_a_png(tmp_path):
    features, labels = blobs()
    points = viz.tsne_embedding(features, seed=0)
    assert points.shape == (60, 2)
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(labels[distances.argmin(axis=1)] == labels) > 0.95

    path = tmp_path / "figures" / "tsne.png"
    viz.plot_tsne(features, labels, path, class_names=["a", "b", "c"], max_points=30)
    assert_png(path)
    with pytest.raises(ValueError, match="labels has 2 entries"):
        viz.plot_tsne(features, labels[:2])


def test_sprite_places_image_i_in_row_major_order():
    images = np.zeros((5, 2, 3, 3), dtype=np.uint8)
    for index in range(5):
        images[index] = index * 10
    sheet = viz.make_sprite(images)
    assert sheet.shape == (3 * 2, 3 * 3, 3)  # ceil(sqrt(5)) = 3 cells per side
    assert sheet[2, 3, 0] == 40  # image 4: row 1, column 1
    assert sheet[5, 8, 0] == 255  # unused cell stays white


def test_projector_export_is_readable(tmp_path):
    features, labels = blobs(per_class=10)
    images = np.random.default_rng(1).integers(0, 255, (30, 8, 8, 3), dtype=np.uint8)
    config_path = viz.export_projector(
        features, tmp_path, labels, images, class_names=["a", "b", "c"], max_points=12
    )
    config = text_format.Parse(open(config_path).read(), projector.ProjectorConfig())
    (embedding,) = config.embeddings
    assert list(embedding.tensor_shape) == [12, 16]
    vectors = np.loadtxt(tmp_path / embedding.tensor_path, delimiter="\t")
    assert vectors.shape == (12, 16)
    # Every exported vector is one of the inputs (a subsample, balanced over the classes).
    matches = np.abs(vectors[:, None] - features[None]).max(axis=-1).min(axis=1)
    assert matches.max() < 1e-4
    rows = (tmp_path / embedding.metadata_path).read_text().splitlines()
    assert rows[0] == "label\tclass" and len(rows) == 13
    assert sorted(row.split("\t")[1] for row in rows[1:]) == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    sprite = assert_png(tmp_path / embedding.sprite.image_path)
    assert sprite.shape[:2] == (4 * 8, 4 * 8)
    assert list(embedding.sprite.single_image_dim) == [8, 8]


def test_projector_export_without_labels_or_images(tmp_path):
    features, _ = blobs(per_class=4)
    config_path = viz.export_projector(features, tmp_path)
    config = text_format.Parse(open(config_path).read(), projector.ProjectorConfig())
    assert not config.embeddings[0].metadata_path
    assert not (tmp_path / "sprite.png").exists()
    with pytest.raises(ValueError, match="images has 2 entries"):
        viz.export_projector(features, tmp_path, images=np.zeros((2, 4, 4, 3), np.uint8))


def test_nearest_neighbours_finds_the_item_itself_first():
    features, _ = blobs(per_class=5)
    indices, similarities = viz.nearest_neighbours(features[[3, 7]], features, k=4)
    assert indices.shape == (2, 4)
    np.testing.assert_array_equal(indices[:, 0], [3, 7])
    np.testing.assert_allclose(similarities[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(similarities, axis=1) <= 1e-6)


def test_retrieval_grid_is_written(tmp_path):
    features, labels = blobs(per_class=5)
    images = np.random.default_rng(2).integers(0, 255, (15, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "retrieval.png"
    viz.plot_retrieval_grid(
        images[:3],
        features[:3],
        images,
        features,
        path,
        k=4,
        query_labels=labels[:3],
        gallery_labels=labels,
        class_names=["a", "b", "c"],
    )
    assert_png(path)


def write_metrics(path, rows):
    columns = ["epoch", "step", "loss", "contrastive_accuracy", "probe_accuracy"]
    columns += ["alignment", "uniformity"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def test_training_curves_from_a_run_directory(tmp_path):
    rows = [[e, 10 * e, 5.0 / e, 1 - 1.0 / e, "", 0.5 / e, -1.0 - e / 10] for e in (1, 2, 3)]
    write_metrics(tmp_path / "metrics.csv", rows)
    metrics = viz.read_metrics(tmp_path)
    np.testing.assert_allclose(metrics["loss"], [5.0, 2.5, 5.0 / 3])
    assert np.isnan(metrics["probe_accuracy"]).all()
    figure = viz.plot_training_curves(tmp_path, tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    assert len(figure.axes) == 4  # loss, contrastive accuracy, probe (empty), quality


def test_training_curves_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No metrics file"):
        viz.read_metrics(tmp_path / "missing")
    write_metrics(tmp_path / "metrics.csv", [])
    with pytest.raises(ValueError, match="no rows"):
        viz.plot_training_curves(tmp_path)
