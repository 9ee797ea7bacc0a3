"""Tests of simclr_tf.data.cifar10: CIFAR-10 from batch files or Keras. Everything here runs
without network and without the full data set, except the tests that take the ``cifar10_dir``
fixture."""

from __future__ import annotations

import pickle
import struct
import time

import keras
import numpy as np
import pytest
from data_helpers import RunsShellCommand, fake_batch, make_tiny_cifar, write_bytes

from simclr_tf.data import UnsafePickleError, load_cifar10, load_sample, read_cifar10_batch


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """A fake cifar-10-batches-py/ of 20 images per batch (see data_helpers.make_tiny_cifar)."""
    return make_tiny_cifar(tmp_path, monkeypatch)


def test_read_cifar10_batch_converts_planes_to_channels_last(tmp_path):
    red, green, blue = (np.random.default_rng(i).integers(0, 256, (32, 32)) for i in range(3))
    row = np.concatenate([red.ravel(), green.ravel(), blue.ravel()]).astype(np.uint8)
    batch = {b"data": row[None], b"labels": [7]}
    images, labels = read_cifar10_batch(
        write_bytes(tmp_path / "b", pickle.dumps(batch, protocol=2))
    )
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
    archive = write_bytes(tmp_path / "cifar-10-python.tar.gz", b"\x1f\x8b")
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
    batch = fake_batch(20, seed=1)
    (tiny_cifar / "data_batch_2").write_bytes(pickle.dumps(change(batch), protocol=2))
    with pytest.raises(ValueError, match=message):
        load_cifar10(tiny_cifar)


def test_load_cifar10_accepts_str_keys(tiny_cifar):
    batch = {key.decode(): value for key, value in fake_batch(20, seed=5).items()}
    (tiny_cifar / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    _, (x_test, _) = load_cifar10(tiny_cifar)
    np.testing.assert_array_equal(x_test[:, 0, 0, 0], batch["data"][:, 0])


def test_load_cifar10_refuses_a_malicious_batch(tiny_cifar, tmp_path):
    marker = tmp_path / "pwned"
    (tiny_cifar / "data_batch_4").write_bytes(pickle.dumps(RunsShellCommand(f"touch {marker}")))
    with pytest.raises(UnsafePickleError, match="data_batch_4"):
        load_cifar10(tiny_cifar)
    assert not marker.exists()


def test_load_cifar10_names_a_truncated_batch(tiny_cifar):
    payload = (tiny_cifar / "data_batch_3").read_bytes()
    (tiny_cifar / "data_batch_3").write_bytes(payload[: len(payload) // 2])
    message = r"data_batch_3 is not a valid pickle file \(it ends in the middle of the pickle\)"
    with pytest.raises(ValueError, match=message + r"\. It may be truncated or corrupt"):
        load_cifar10(tiny_cifar)


def test_labels_that_repeat_a_byte_string_are_refused_before_conversion(tmp_path):
    # 10,000 references to one 100 kB byte string: a 120 kB file that np.asarray would turn
    # into a 1 GB array of strings.
    labels = [b"7" * 100_000] * 10_000
    batch = {b"data": np.zeros((0, 3072), np.uint8), b"labels": labels}
    path = write_bytes(tmp_path / "data_batch_1", pickle.dumps(batch, protocol=4))
    assert path.stat().st_size < 200_000
    start = time.process_time()
    with pytest.raises(ValueError, match=r"expected a flat list of integers, got list of 10000"):
        read_cifar10_batch(path)
    assert time.process_time() - start < 1


def _python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle (protocol 2) and numpy 1.x wrote the official CIFAR-10
    files: byte strings as BINSTRING, numpy.core names, dtype('u1', 0, 1) and a byte order
    that is a byte string too."""

    def short(text: bytes) -> bytes:  # SHORT_BINSTRING
        return b"U" + bytes([len(text)]) + text

    rows, columns = data.shape
    return b"".join(
        [
            b"\x80\x02}q\x00(" + short(b"data"),
            b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85",
            short(b"b") + b"\x87R(K\x01",  # _reconstruct(ndarray, (0,), b"b"); MARK 1
            b"M" + struct.pack("<H", rows) + b"M" + struct.pack("<H", columns) + b"\x86",
            b"cnumpy\ndtype\n" + short(b"u1") + b"K\x00K\x01\x87R",  # dtype("u1", 0, 1)
            b"(K\x03" + short(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
            b"\x89T" + struct.pack("<I", data.size) + data.tobytes() + b"tb",
            short(b"labels") + b"](" + b"".join(b"K" + bytes([label]) for label in labels),
            b"eu.",
        ]
    )


def test_read_cifar10_batch_reads_python_2_pickles(tmp_path):
    batch = fake_batch(3, seed=4)
    payload = _python2_batch(batch[b"data"], batch[b"labels"])
    reference = pickle.loads(payload, encoding="bytes")
    np.testing.assert_array_equal(reference[b"data"], batch[b"data"])
    images, labels = read_cifar10_batch(write_bytes(tmp_path / "data_batch_1", payload))
    np.testing.assert_array_equal(images.transpose(0, 3, 1, 2).reshape(3, -1), batch[b"data"])
    assert labels.tolist() == batch[b"labels"]


def test_a_full_size_batch_is_within_the_pickle_limits(tmp_path):
    # Written by Python 3 with protocol 2, the largest encoding: 47 MB and 90,000 opcodes.
    path = write_bytes(tmp_path / "data_batch_1", pickle.dumps(fake_batch(10_000, 0), protocol=2))
    images, labels = read_cifar10_batch(path)
    assert images.shape == (10_000, 32, 32, 3) and labels.shape == (10_000,)


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
