"""Tests of simclr_tf.data: CIFAR-10 loading, safe unpickling, the bundled sample, image
folders and the batching pipeline. Everything here runs without network and without the full
data set, except the tests that take the ``cifar10_dir`` fixture."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from simclr_tf.data import (
    CIFAR10_CLASSES,
    DEFAULT_SAMPLE_PATH,
    UnreadableImageWarning,
    UnsafePickleError,
    list_image_folder,
    load_cifar10,
    load_image_folder,
    load_sample,
    make_dataset,
    read_cifar10_batch,
)
from simclr_tf.data import cifar10 as cifar10_module
from simclr_tf.data.safe_pickle import load_pickle
from simclr_tf.data.sample import save_sample, stratified_indices

REPO = Path(__file__).resolve().parents[1]
BATCH_NAMES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")

# ---------------------------------------------------------------------------------------------
# Restricted unpickling


class _RunsShellCommand:
    """Unpickling this object runs a shell command: the classic pickle exploit."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _write(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_restricted_unpickler_reads_numpy_batches_of_every_protocol(tmp_path, protocol):
    batch = {
        b"data": np.arange(24, dtype=np.uint8).reshape(2, 12),
        b"labels": [3, 9],
        b"batch_label": b"training batch 1 of 5",
        b"filenames": [b"a.png", b"b.png"],
        b"empty": b"",
        "note": "text",
        b"count": 10_000,
    }
    path = _write(tmp_path / "batch", pickle.dumps(batch, protocol=protocol))
    loaded = load_pickle(path)
    assert loaded.keys() == batch.keys()
    np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
    assert loaded[b"data"].dtype == np.uint8
    assert {k: v for k, v in loaded.items() if k != b"data"} == {
        k: v for k, v in batch.items() if k != b"data"
    }


def test_restricted_unpickler_reads_numpy_1_module_names(tmp_path):
    # Pickles written by numpy < 2 (such as the official CIFAR-10 files) name numpy.core.
    payload = pickle.dumps({b"data": np.ones((2, 3), np.uint8)}, protocol=2)
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    loaded = load_pickle(_write(tmp_path / "old", payload))
    np.testing.assert_array_equal(loaded[b"data"], np.ones((2, 3), np.uint8))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_calling_os_system_is_refused_and_does_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShellCommand(f"touch {marker}"), protocol=protocol)
    path = _write(tmp_path / "data_batch_1", payload)
    with pytest.raises(UnsafePickleError, match="system") as info:
        load_pickle(path)
    assert str(path) in str(info.value)
    assert os.system.__module__ in str(info.value)  # "posix" on Linux: names the real global.
    assert not marker.exists()


def test_hand_written_pickle_calling_eval_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    # GLOBAL builtins.eval, MARK, unicode argument, TUPLE, REDUCE, STOP.
    payload = f"cbuiltins\neval\n(V__import__('os').system('touch {marker}')\ntR.".encode()
    path = _write(tmp_path / "test_batch", payload)
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval") as info:
        load_pickle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_codecs_encode_is_only_admitted_for_latin1(tmp_path):
    payload = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    path = _write(tmp_path / "batch", payload)
    with pytest.raises(UnsafePickleError, match="latin1") as info:
        load_pickle(path)
    assert str(path) in str(info.value)


def test_truncated_pickle_is_a_value_error_naming_the_file(tmp_path):
    payload = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8)}, protocol=4)
    path = _write(tmp_path / "data_batch_2", payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="data_batch_2"):
        load_pickle(path)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 from batch files


def _fake_batch(count: int, seed: int, label_offset: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"labels": [(i + label_offset) % 10 for i in range(count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [f"{i}.png".encode() for i in range(count)],
    }


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """A fake cifar-10-batches-py/ of 20 images per batch, with the loader told to expect 20."""
    monkeypatch.setattr(cifar10_module, "IMAGES_PER_BATCH", 20)
    monkeypatch.delenv("SIMCLR_DATA_DIR", raising=False)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for seed, name in enumerate((*BATCH_NAMES, "test_batch")):
        (folder / name).write_bytes(pickle.dumps(_fake_batch(20, seed), protocol=2))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=2)
    )
    return folder


def test_read_cifar10_batch_converts_planes_to_channels_last(tmp_path):
    red, green, blue = (np.random.default_rng(i).integers(0, 256, (32, 32)) for i in range(3))
    row = np.concatenate([red.ravel(), green.ravel(), blue.ravel()]).astype(np.uint8)
    batch = {b"data": row[None], b"labels": [7]}
    images, labels = read_cifar10_batch(_write(tmp_path / "b", pickle.dumps(batch, protocol=2)))
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0, ..., 0], red)
    np.testing.assert_array_equal(images[0, ..., 1], green)
    np.testing.assert_array_equal(images[0, ..., 2], blue)
    assert labels.dtype == np.int64 and labels.tolist() == [7]


def test_load_cifar10_reads_a_folder_or_its_parent(tiny_cifar):
    for data_dir in (tiny_cifar, tiny_cifar.parent, str(tiny_cifar.parent)):
        (x_train, y_train), (x_test, y_test) = load_cifar10(data_dir)
        assert x_train.shape == (100, 32, 32, 3) and x_test.shape == (20, 32, 32, 3)
        assert x_train.dtype == x_test.dtype == np.uint8
        assert y_train.shape == (100,) and y_test.shape == (20,)
        assert y_train.dtype == y_test.dtype == np.int64
    first_batch, _ = read_cifar10_batch(tiny_cifar / "data_batch_1")
    np.testing.assert_array_equal(x_train[:20], first_batch)


def test_load_cifar10_uses_the_environment_variable(tiny_cifar, monkeypatch):
    monkeypatch.setenv("SIMCLR_DATA_DIR", str(tiny_cifar.parent))
    (x_train, _), (x_test, _) = load_cifar10()
    assert len(x_train) == 100 and len(x_test) == 20


def test_data_dir_argument_wins_over_the_environment_variable(tiny_cifar, monkeypatch, tmp_path):
    monkeypatch.setenv("SIMCLR_DATA_DIR", str(tmp_path / "nowhere"))
    (x_train, _), _ = load_cifar10(tiny_cifar)
    assert len(x_train) == 100
    with pytest.raises(FileNotFoundError, match="SIMCLR_DATA_DIR"):
        load_cifar10()


def test_load_cifar10_names_missing_batch_files(tiny_cifar):
    (tiny_cifar / "data_batch_3").unlink()
    (tiny_cifar / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3, test_batch"):
        load_cifar10(tiny_cifar)


def test_load_cifar10_rejects_missing_folder_and_archive_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMCLR_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "absent")
    archive = _write(tmp_path / "cifar-10-python.tar.gz", b"\x1f\x8b")
    with pytest.raises(FileNotFoundError, match="is a file.*Extract the archive"):
        load_cifar10(archive)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: [1, 2, 3], r"data_batch_2: expected a pickled dict.*got list"),
        (lambda b: {b"data": b[b"data"]}, r"data_batch_2: no key b'labels'"),
        (
            lambda b: {**b, b"data": b[b"data"].astype(np.float32)},
            r"data_batch_2, key b'data': expected a uint8 array of shape \(N, 3072\), "
            r"got float32 array of shape \(20, 3072\)",
        ),
        (
            lambda b: {**b, b"data": b[b"data"][:, :3000]},
            r"data_batch_2, key b'data'.*got uint8 array of shape \(20, 3000\)",
        ),
        (
            lambda b: {**b, b"labels": [*b[b"labels"][:3], 10, *b[b"labels"][4:]]},
            r"data_batch_2, key b'labels': labels must be in 0\.\.9.*labels\[3\] = 10",
        ),
        (
            lambda b: {**b, b"labels": b[b"labels"][:19]},
            r"data_batch_2: 20 images in b'data' but 19 entries in b'labels'",
        ),
        (
            lambda b: {**b, b"labels": [str(x) for x in b[b"labels"]]},
            r"data_batch_2, key b'labels': expected a flat list of integers",
        ),
        (
            lambda b: {b"data": b[b"data"][:19], b"labels": b[b"labels"][:19]},
            r"data_batch_2: expected 20 images, got 19",
        ),
    ],
)
def test_load_cifar10_says_what_is_wrong_with_a_batch(tiny_cifar, change, message):
    batch = _fake_batch(20, seed=1)
    (tiny_cifar / "data_batch_2").write_bytes(pickle.dumps(change(batch), protocol=2))
    with pytest.raises(ValueError, match=message):
        load_cifar10(tiny_cifar)


def test_load_cifar10_accepts_str_keys(tiny_cifar):
    batch = {key.decode(): value for key, value in _fake_batch(20, seed=5).items()}
    (tiny_cifar / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    _, (x_test, _) = load_cifar10(tiny_cifar)
    np.testing.assert_array_equal(x_test[:, 0, 0, 0], batch["data"][:, 0])


def test_load_cifar10_refuses_a_malicious_batch(tiny_cifar, tmp_path):
    marker = tmp_path / "pwned"
    (tiny_cifar / "data_batch_4").write_bytes(pickle.dumps(_RunsShellCommand(f"touch {marker}")))
    with pytest.raises(UnsafePickleError, match="data_batch_4"):
        load_cifar10(tiny_cifar)
    assert not marker.exists()


def test_load_cifar10_falls_back_to_keras(tiny_cifar, monkeypatch):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y_train = (np.arange(100) % 10).astype(np.uint8).reshape(-1, 1)  # Keras: [N, 1] uint8.
    y_test = (np.arange(20) % 10).astype(np.uint8).reshape(-1, 1)
    monkeypatch.setattr(
        keras.datasets.cifar10, "load_data", lambda: ((x_train, y_train), (x_test, y_test))
    )
    (a, b), (c, d) = load_cifar10()
    np.testing.assert_array_equal(a, x_train)
    np.testing.assert_array_equal(c, x_test)
    assert b.shape == (100,) and b.dtype == np.int64 and b.tolist() == y_train[:, 0].tolist()
    assert d.shape == (20,) and d.dtype == np.int64


def test_load_cifar10_checks_what_keras_returns(tiny_cifar, monkeypatch):
    bad = np.zeros((99, 32, 32, 3), np.uint8)
    labels = np.zeros((99, 1), np.uint8)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: ((bad, labels), (bad, labels)))
    with pytest.raises(ValueError, match=r"training split.*\(100, 32, 32, 3\).*\(99, 32, 32, 3\)"):
        load_cifar10()


def test_load_cifar10_offline_without_local_copy_says_how_to_fix(tiny_cifar, monkeypatch):
    def fail():
        raise Exception("URL fetch failure on https://example.invalid: Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail)
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10()
    message = str(info.value)
    assert "URL fetch failure" in message
    assert "load_cifar10(data_dir=" in message and "SIMCLR_DATA_DIR" in message


@pytest.mark.full_data
def test_full_cifar10_from_the_environment_variable(cifar10_dir, monkeypatch):
    monkeypatch.setenv("SIMCLR_DATA_DIR", cifar10_dir)
    (x_train, y_train), (x_test, y_test) = load_cifar10()
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert np.bincount(y_train, minlength=10).tolist() == [5_000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1_000] * 10


@pytest.mark.full_data
def test_every_sample_image_is_in_full_cifar10_with_its_label(cifar10_dir):
    (x_train, y_train), (x_test, y_test) = load_cifar10(cifar10_dir)
    (s_train, t_train), (s_test, t_test) = load_sample()
    for full_x, full_y, sample_x, sample_y in (
        (x_train, y_train, s_train, t_train),
        (x_test, y_test, s_test, t_test),
    ):
        label_of = {image.tobytes(): label for image, label in zip(full_x, full_y, strict=True)}
        assert [label_of.get(image.tobytes()) for image in sample_x] == sample_y.tolist()


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
        load_sample(_write(tmp_path / "junk.npz", b"not a zip file"))
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
# Image folders

RGB = (200, 30, 90)


def _solid(height: int, width: int, colour=RGB) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def _palette(rgb: np.ndarray) -> Image.Image:
    """A palette ("P" mode) image holding exactly the colours of ``rgb`` (no dithering)."""
    return Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)


def _write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        _palette(rgb).save(path)
    elif path.suffix == ".webp":
        cv2.imwrite(
            str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_WEBP_QUALITY, 101]
        )
    else:
        assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def _images(dataset: tf.data.Dataset) -> list[np.ndarray]:
    return [(e[0] if isinstance(e, tuple) else e).numpy() for e in dataset]


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".gif", ".webp", ".jpg"])
def test_every_format_decodes_to_rgb_uint8(tmp_path, suffix):
    _write_image(tmp_path / f"image{suffix}", _solid(12, 20))
    (image,) = _images(load_image_folder(tmp_path, (12, 20)))
    assert image.shape == (12, 20, 3) and image.dtype == np.uint8
    tolerance = 3 if suffix == ".jpg" else 0  # JPEG is lossy; the others are exact.
    assert np.abs(image.astype(int) - np.array(RGB)).max() <= tolerance


def test_grayscale_rgba_palette_and_animated_images_become_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((8, 8), 77, np.uint8))
    bgra = np.dstack([_solid(8, 8)[..., ::-1], np.full((8, 8), 10, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    _palette(_solid(8, 8)).save(tmp_path / "palette.png")
    frames = [_palette(_solid(8, 8, c)) for c in (RGB, (0, 0, 255))]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "gray.bmp")
    folder = load_image_folder(tmp_path, 8, shuffle_files=False)
    names = [Path(p).name for p in folder.file_paths]
    colours = {name: tuple(image[0, 0]) for name, image in zip(names, _images(folder), strict=True)}
    assert colours == {
        "animated.gif": RGB,  # first frame
        "gray.bmp": (77, 77, 77),
        "gray.png": (77, 77, 77),
        "palette.png": RGB,
        "rgba.png": RGB,  # alpha dropped
    }


def test_images_are_resized_to_int_or_pair(tmp_path):
    _write_image(tmp_path / "a.png", _solid(40, 30))
    _write_image(tmp_path / "b.jpg", _solid(7, 90))
    for size, shape in ((16, (16, 16, 3)), ((6, 10), (6, 10, 3))):
        dataset = load_image_folder(tmp_path, size)
        assert dataset.element_spec.shape == shape
        assert [image.shape for image in _images(dataset)] == [shape, shape]
    for bad in (0, -3, (4,), (4, 0), 2.5, (4, 4.0), True):
        with pytest.raises(ValueError, match="image_size"):
            load_image_folder(tmp_path, bad)


@pytest.fixture
def class_folders(tmp_path):
    """train/<class>/ with 3 cats, 2 dogs (one nested deeper) and 1 owl."""
    root = tmp_path / "train"
    colours = {"cat": (255, 0, 0), "dog": (0, 255, 0), "owl": (0, 0, 255)}
    for name, count in (("cat", 3), ("dog", 2), ("owl", 1)):
        for i in range(count):
            sub = "deep/" if (name, i) == ("dog", 1) else ""
            _write_image(root / name / f"{sub}{i}.png", _solid(10, 10, colours[name]))
    return root, colours


def test_labeled_folder_is_detected_and_labels_follow_class_names(class_folders):
    root, colours = class_folders
    dataset = load_image_folder(root, 10)
    assert dataset.class_names == ("cat", "dog", "owl")
    assert len(dataset.file_paths) == 6
    pairs = [(tuple(image.numpy()[0, 0]), int(label)) for image, label in dataset]
    assert sorted(label for _, label in pairs) == [0, 0, 0, 1, 1, 2]
    for colour, label in pairs:
        assert colour == colours[dataset.class_names[label]]
    listing = list_image_folder(root)
    assert listing.labeled and listing.class_names == dataset.class_names


def test_class_names_fix_the_label_order(class_folders):
    root, _ = class_folders
    dataset = load_image_folder(root, 10, class_names=["owl", "cat"])
    assert dataset.class_names == ("owl", "cat")
    assert sorted(int(label) for _, label in dataset) == [0, 1, 1, 1]
    with pytest.raises(FileNotFoundError, match="bat"):
        load_image_folder(root, 10, class_names=["cat", "bat"])


def test_unlabeled_folder_takes_every_image_recursively(class_folders):
    root, _ = class_folders
    forced = load_image_folder(root, 10, labeled=False)
    assert forced.class_names == () and forced.element_spec.dtype == tf.uint8
    assert len(_images(forced)) == 6
    _write_image(root / "loose.png", _solid(10, 10))
    detected = load_image_folder(root, 10)  # an image at the top: unlabeled
    assert detected.class_names == () and len(_images(detected)) == 7
    with pytest.raises(ValueError, match=r"labeled=True.*loose\.png.*labeled=False"):
        load_image_folder(root, 10, labeled=True)


def test_file_order_is_sorted_or_shuffled_with_a_seed(tmp_path):
    for i in range(12):
        _write_image(tmp_path / f"{i:02d}.png", _solid(4, 4, (i, i, i)))

    def order(dataset):
        return [int(image[0, 0, 0]) for image in _images(dataset)]

    assert order(load_image_folder(tmp_path, 4, shuffle_files=False)) == list(range(12))
    shuffled = load_image_folder(tmp_path, 4, seed=3)
    first, second = order(shuffled), order(shuffled)
    assert sorted(first) == sorted(second) == list(range(12))
    assert first != second  # a new order on every pass
    assert order(load_image_folder(tmp_path, 4, seed=3)) == first
    assert order(load_image_folder(tmp_path, 4, seed=4)) != first


def test_images_are_read_when_iterated_not_when_listed(tmp_path):
    path = _write_image(tmp_path / "a.png", _solid(4, 4, (1, 2, 3)))
    dataset = load_image_folder(tmp_path, 4)
    _write_image(path, _solid(4, 4, (9, 8, 7)))
    assert tuple(_images(dataset)[0][0, 0]) == (9, 8, 7)


def test_unreadable_files_are_named_and_skipped(tmp_path):
    for i in range(3):
        _write_image(tmp_path / f"good{i}.png", _solid(6, 6))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _palette(_solid(6, 6)).save(tmp_path / "palette.bmp")
    good = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / ".hidden").write_text("ignored")

    with pytest.warns(UnreadableImageWarning) as listed:
        dataset = load_image_folder(tmp_path, 6)
    message = str(listed[0].message)
    assert "notes.txt" in message and "empty.jpg (empty file)" in message
    assert "palette.bmp (8-bit colour-palette BMP" in message and ".hidden" not in message
    with pytest.warns(UnreadableImageWarning, match="truncated.png"):
        images = _images(dataset)
    assert len(images) == 3


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "absent", 8)
    image = _write_image(tmp_path / "one.png", _solid(4, 4))
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        load_image_folder(image, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no files"):
        load_image_folder(tmp_path / "empty", 8)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("a")
    (tmp_path / "junk" / "b.png").write_bytes(b"PNG but not really")
    with pytest.raises(ValueError, match=r"none of its 2 file.*a\.txt.*b\.png"):
        load_image_folder(tmp_path / "junk", 8)


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
