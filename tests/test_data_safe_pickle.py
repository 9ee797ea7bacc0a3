"""Tests of simclr_tf.data.safe_pickle: pickles that try to run code are refused."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from data_helpers import RunsShellCommand, write_bytes

from simclr_tf.data import UnsafePickleError
from simclr_tf.data.safe_pickle import load_pickle


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
    path = write_bytes(tmp_path / "batch", pickle.dumps(batch, protocol=protocol))
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
    loaded = load_pickle(write_bytes(tmp_path / "old", payload))
    np.testing.assert_array_equal(loaded[b"data"], np.ones((2, 3), np.uint8))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_calling_os_system_is_refused_and_does_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(RunsShellCommand(f"touch {marker}"), protocol=protocol)
    path = write_bytes(tmp_path / "data_batch_1", payload)
    with pytest.raises(UnsafePickleError, match="system") as info:
        load_pickle(path)
    assert str(path) in str(info.value)
    assert os.system.__module__ in str(info.value)  # "posix" on Linux: names the real global.
    assert not marker.exists()


def test_hand_written_pickle_calling_eval_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    # GLOBAL builtins.eval, MARK, unicode argument, TUPLE, REDUCE, STOP.
    payload = f"cbuiltins\neval\n(V__import__('os').system('touch {marker}')\ntR.".encode()
    path = write_bytes(tmp_path / "test_batch", payload)
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval") as info:
        load_pickle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_codecs_encode_is_only_admitted_for_latin1(tmp_path):
    payload = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    path = write_bytes(tmp_path / "batch", payload)
    with pytest.raises(UnsafePickleError, match="latin1") as info:
        load_pickle(path)
    assert str(path) in str(info.value)


def test_truncated_pickle_is_a_value_error_naming_the_file(tmp_path):
    payload = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8)}, protocol=4)
    path = write_bytes(tmp_path / "data_batch_2", payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="data_batch_2"):
        load_pickle(path)
