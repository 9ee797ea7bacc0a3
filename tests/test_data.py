"""Tests of simclr_tf.data: the bundled sample and the batching pipeline. The other modules
have files of their own: tests/test_data_{safe_pickle,cifar10,image_folder}.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import make_class_folders, make_tiny_cifar, write_bytes

from simclr_tf.data import (
    CIFAR10_CLASSES,
    DEFAULT_SAMPLE_PATH,
    load_cifar10,
    load_image_folder,
    load_sample,
    make_dataset,
)
from simclr_tf.data.sample import save_sample, stratified_indices

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """A fake cifar-10-batches-py/ of 20 images per batch (see data_helpers.make_tiny_cifar)."""
    return make_tiny_cifar(tmp_path, monkeypatch)


@pytest.fixture
def class_folders(tmp_path):
    """train/<class>/ with 3 cats, 2 dogs and 1 owl (see data_helpers.make_class_folders)."""
    return make_class_folders(tmp_path)


# ---------------------------------------------------------------------------------------------
# The bundled sample


def test_bundled_sample_is_stratified_and_under_10_mb():
    assert os.path.getsize(DEFAULT_SAMPLE_PATH) <= 10_000_000
    (x_train, y_train), (x_test, y_test) = load_sample()
    assert x_train.dtype == x_test.dtype == np.uint8
    assert x_train.shape[1:] == x_test.shape[1:] == (32, 32, 3)
    assert y_train.dtype == y_test.dtype == np.int64
    train_counts = np.bincount(y_train, minlength=10)
    test_counts = np.bincount(y_test, minlength=10)
    assert len(set(train_counts)) == 1 and len(set(test_counts)) == 1
    assert len(x_train) >= 4_000 and 900 <= len(x_test) <= 1_100
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[3] == "cat"
    # Real photographs, not blanks: every image has some spread of values.
    assert (x_train.reshape(len(x_train), -1).std(axis=1) > 1).all()


def test_sample_round_trip_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), np.arange(30) % 10)
    test = (rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), np.arange(10))
    path = tmp_path / "sample.npz"
    save_sample(path, train, test, train_index=np.arange(30), test_index=np.arange(10), seed=0)
    (x_train, y_train), (x_test, y_test) = load_sample(path)
    np.testing.assert_array_equal(x_train, train[0])
    np.testing.assert_array_equal(x_test, test[0])
    assert y_train.tolist() == train[1].tolist() and y_test.tolist() == test[1].tolist()


def test_load_sample_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_sample.py"):
        load_sample(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_sample(write_bytes(tmp_path / "junk.npz", b"not a zip file"))
    np.savez(tmp_path / "other.npz", y_train=np.arange(3))
    with pytest.raises(ValueError, match="missing key.*x_train_webp"):
        load_sample(tmp_path / "other.npz")


def test_stratified_indices_are_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 50)[np.random.default_rng(1).permutation(500)]
    first = stratified_indices(labels, 7, seed=0)
    assert np.bincount(labels[first]).tolist() == [7] * 10
    assert (np.diff(first) > 0).all()
    np.testing.assert_array_equal(first, stratified_indices(labels, 7, seed=0))
    assert not np.array_equal(first, stratified_indices(labels, 7, seed=1))
    with pytest.raises(ValueError, match="per_class=51"):
        stratified_indices(labels, 51)
    with pytest.raises(ValueError, match="per_class must be > 0"):
        stratified_indices(labels, 0)


def _make_sample_script():
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts/make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_sample_script_writes_a_balanced_sample(tiny_cifar, tmp_path, capsys):
    script = _make_sample_script()
    out = tmp_path / "out" / "sample.npz"
    args = ["--data_dir", str(tiny_cifar), "--train_per_class", "3", "--test_per_class", "1"]
    assert script.main([*args, "--out", str(out)]) == 0
    (x_train, y_train), (x_test, y_test) = load_sample(out)
    assert np.bincount(y_train).tolist() == [3] * 10 and np.bincount(y_test).tolist() == [1] * 10
    (full_x, _), _ = load_cifar10(tiny_cifar)
    assert all((full_x == image).all(axis=(1, 2, 3)).any() for image in x_train)
    assert f"{out.stat().st_size:,} bytes" in capsys.readouterr().out
    # Too large for the budget: refused, nothing written.
    refused = tmp_path / "refused.npz"
    assert script.main([*args, "--out", str(refused), "--max_bytes", "1000"]) == 1
    assert not refused.exists() and "--max_bytes" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# make_dataset


def _indexed_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Image i is filled with the value i, and its label is i % 10."""
    images = np.repeat(np.arange(count, dtype=np.uint8), 4 * 4 * 3).reshape(count, 4, 4, 3)
    return images, np.arange(count) % 10


def _epoch(dataset) -> list[list[int]]:
    return [[int(v) for v in images.numpy()[:, 0, 0, 0]] for images, _ in dataset]


def test_make_dataset_yields_every_example_once_with_its_label():
    images, labels = _indexed_images(10)
    dataset = make_dataset(images, labels, batch_size=4, drop_remainder=False, seed=1)
    seen = []
    for batch_images, batch_labels in dataset:
        assert batch_images.dtype == tf.uint8 and batch_labels.dtype == tf.int64
        values = batch_images.numpy()[:, 0, 0, 0]
        assert (batch_labels.numpy() == values % 10).all()
        seen.extend(values.tolist())
    assert sorted(seen) == list(range(10))
    assert [len(b) for b, _ in dataset] == [4, 4, 2]


def test_make_dataset_drop_remainder_and_no_labels():
    images, _ = _indexed_images(10)
    batches = list(make_dataset(images, batch_size=4))
    assert [tuple(b.shape) for b in batches] == [(4, 4, 4, 3), (4, 4, 4, 3)]
    assert len(set(np.concatenate([b.numpy()[:, 0, 0, 0] for b in batches]))) == 8


def test_make_dataset_is_deterministic_given_a_seed_and_reshuffles_per_epoch():
    images, labels = _indexed_images(64)
    dataset = make_dataset(images, labels, batch_size=8, seed=5)
    epoch_one, epoch_two = _epoch(dataset), _epoch(dataset)
    assert epoch_one != epoch_two
    again = make_dataset(images, labels, batch_size=8, seed=5)
    assert [_epoch(again), _epoch(again)] == [epoch_one, epoch_two]
    assert _epoch(make_dataset(images, labels, batch_size=8, seed=6)) != epoch_one
    ordered = _epoch(make_dataset(images, labels, batch_size=8, shuffle=False))
    assert sum(ordered, []) == list(range(64))


def test_make_dataset_repeat_keeps_epochs_whole():
    images, labels = _indexed_images(12)
    dataset = make_dataset(images, labels, batch_size=4, repeat=True)
    values = [v for batch in _epoch(dataset.take(9)) for v in batch]
    for epoch in range(3):
        assert sorted(values[12 * epoch : 12 * (epoch + 1)]) == list(range(12))


def test_make_dataset_accepts_keras_style_labels():
    images, labels = _indexed_images(8)
    (_, batch_labels), *_ = make_dataset(images, labels.reshape(-1, 1), batch_size=8)
    assert batch_labels.shape == (8,)


def test_make_dataset_from_an_image_folder(class_folders):
    root, _ = class_folders
    folder = load_image_folder(root, 10)
    batches = list(make_dataset(folder, batch_size=4, drop_remainder=False))
    assert [len(images) for images, _ in batches] == [4, 2]
    assert sorted(np.concatenate([labels.numpy() for _, labels in batches])) == [0, 0, 0, 1, 1, 2]
    unlabeled = load_image_folder(root, 10, labeled=False)
    (images,) = list(make_dataset(unlabeled, batch_size=6))
    assert images.shape == (6, 10, 10, 3) and images.dtype == tf.uint8
    with pytest.raises(ValueError, match="batch_size=7 is larger than the 6 examples"):
        make_dataset(unlabeled, batch_size=7)


@pytest.mark.parametrize("batch_size", [0, -4, 2.5, True, "8"])
def test_make_dataset_rejects_bad_batch_sizes(batch_size):
    images, _ = _indexed_images(10)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(images, batch_size=batch_size)


def test_make_dataset_input_errors():
    images, labels = _indexed_images(10)
    with pytest.raises(ValueError, match="batch_size=11 is larger than the 10 examples"):
        make_dataset(images, batch_size=11)
    assert len(list(make_dataset(images, batch_size=11, drop_remainder=False))) == 1
    with pytest.raises(ValueError, match="uint8 images of shape"):
        make_dataset(images.astype(np.float32) / 255, batch_size=2)
    with pytest.raises(ValueError, match="labels must be 10 integers"):
        make_dataset(images, labels[:9], batch_size=2)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    with pytest.raises(ValueError, match="labels must be None"):
        make_dataset(dataset, labels, batch_size=2)
    floats = tf.data.Dataset.from_tensor_slices(images.astype(np.float32))
    with pytest.raises(ValueError, match="must yield uint8 images"):
        make_dataset(floats, batch_size=2)
