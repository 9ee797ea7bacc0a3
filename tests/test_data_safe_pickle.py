"""Tests of simclr_tf.data.safe_pickle: pickles that try to run code or to allocate more
memory than their data needs are refused."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_helpers import RunsShellCommand, write_bytes

from simclr_tf.data import UnsafePickleError
from simclr_tf.data.safe_pickle import RestrictedUnpickler, load_pickle

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_restricted_unpickler_reads_plain_values_and_arrays_of_every_protocol(tmp_path, protocol):
    arrays = [
        np.zeros((0, 3), np.uint8),
        np.arange(6, dtype=">f4").reshape(2, 3),  # its dtype's BUILD sets the byte order
        np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.array([b"x", b"yz"]),
        np.array([1, "a", None], dtype=object),
        np.arange(2000, dtype=np.uint16),  # over 1,000 bytes: numpy keeps the pickle's bytes
    ]
    values = [bytearray(b"ab"), bytearray(), b"", 1.5, True, None, (1, (2,)), 2**100, -3, "é"]
    payload = pickle.dumps([arrays, values], protocol=protocol)
    loaded_arrays, loaded_values = load_pickle(write_bytes(tmp_path / "values", payload))
    assert loaded_values == values
    assert [type(value) for value in loaded_values] == [type(value) for value in values]
    # As pickle.loads gives them (which turns big-endian arrays into native ones).
    for loaded, expected in zip(loaded_arrays, pickle.loads(payload)[0], strict=True):
        assert loaded.dtype == expected.dtype
        assert loaded.flags.f_contiguous == expected.flags.f_contiguous
        np.testing.assert_array_equal(loaded, expected)


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


# ---------------------------------------------------------------------------------------------
# Bounded allocations: small files that ask for gigabytes.

_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]


class _Calls:
    """Pickles as ``func(*args)``, followed by ``BUILD state`` when a state is given."""

    def __init__(self, func, *args, state=None) -> None:
        self.reduced = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.reduced


def _dumps(obj, protocol: int = 2) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


# name -> (pickle, exception it raises or None, what its message says or what it loads as)
_MEMORY_BOMBS = {
    "bytes(n)": (_dumps(_Calls(bytes, 6 * 2**30)), UnsafePickleError, "bytes(int)"),
    "bytearray(n)": (_dumps(_Calls(bytearray, 6 * 2**30)), UnsafePickleError, "bytearray(int)"),
    "numpy.ndarray(shape)": (
        _dumps(_Calls(np.ndarray, (2**33,))),
        UnsafePickleError,
        "numpy.ndarray is only admitted as the first argument",
    ),
    "_reconstruct(ndarray, huge shape)": (
        _dumps(_Calls(_RECONSTRUCT, np.ndarray, (2**33,), b"b")),
        UnsafePickleError,
        "8,589,934,592 bytes, more than max_bytes=67,108,864",
    ),
    "_reconstruct(ndarray, sub-array dtype string)": (
        _dumps(_Calls(_RECONSTRUCT, np.ndarray, (2,), "(30000,30000)u1")),
        UnsafePickleError,
        "1,800,000,000 bytes, more than max_bytes",
    ),
    "object array of 2**30 items filled by BUILD": (
        _dumps(
            _Calls(
                _RECONSTRUCT, np.ndarray, (0,), b"b", state=(1, (2**30,), np.dtype("O"), False, [])
            )
        ),
        UnsafePickleError,
        "8,589,934,592 bytes, more than max_bytes",
    ),
    "dtype whose BUILD sets a 4 GB item size": (
        _dumps(_Calls(np.dtype, "V4", False, True, state=(3, "|", None, None, None, 2**32, 1, 0))),
        UnsafePickleError,
        "only the byte order of a plain dtype",
    ),
    "BINBYTES8 announcing 1 TB": (
        b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc.",
        ValueError,
        "(it ends in the middle of the pickle). It may be truncated or corrupt",
    ),
    "BYTEARRAY8 announcing 1 TB": (
        b"\x80\x05\x96" + (2**40).to_bytes(8, "little") + b"abc.",
        ValueError,
        "BYTEARRAY8 announces 1,099,511,627,776 bytes but the file holds 4",
    ),
    "LONG_BINPUT at memo index 2**31": (b"\x80\x02Nr\xff\xff\xff\x7f.", None, "None"),
    "300,000 empty sets": (
        b"\x80\x04" + b"\x8f" * 300_000 + b".",
        UnsafePickleError,
        "more than max_opcodes=250,000",
    ),
}

_LOAD_IN_CHILD = """
import json, resource, sys, time, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a failure, not a frozen host
from simclr_tf.data.safe_pickle import UnsafePickleError, load_pickle
tracemalloc.start()
results = []
for path in sys.argv[1:]:
    tracemalloc.reset_peak()
    start = time.process_time()  # CPU time: the host may be busy
    try:
        outcome = (None, repr(load_pickle(path)))
    except Exception as exc:
        unsafe = isinstance(exc, UnsafePickleError)
        outcome = ("UnsafePickleError" if unsafe else type(exc).__name__, str(exc))
    seconds = time.process_time() - start
    results.append([*outcome, tracemalloc.get_traced_memory()[1], seconds])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def memory_bomb_results(tmp_path_factory):
    """Loads every file of _MEMORY_BOMBS in one child process (a memory limit guards the host)
    and returns, per name, (exception name or None, message or repr, peak bytes, CPU seconds)."""
    folder = tmp_path_factory.mktemp("bombs")
    paths = []
    for index, (payload, _, _) in enumerate(_MEMORY_BOMBS.values()):
        paths.append(write_bytes(folder / f"data_batch_{index}", payload))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_CHILD, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    results = json.loads(child.stdout)
    rows = zip(_MEMORY_BOMBS, paths, results, strict=True)
    return {name: (str(path), *result) for name, path, result in rows}


@pytest.mark.parametrize("name", list(_MEMORY_BOMBS))
def test_small_pickles_cannot_allocate_gigabytes(memory_bomb_results, name):
    _, expected_error, expected_text = _MEMORY_BOMBS[name]
    path, error, message, peak_bytes, seconds = memory_bomb_results[name]
    if expected_error is None:
        assert (error, message) == (None, expected_text)
    else:
        # UnsafePickleError is a ValueError; a plain ValueError means a corrupt file.
        assert error == expected_error.__name__, message
        assert path in message and expected_text in message
    assert peak_bytes < 80 * 2**20, f"{name}: peak {peak_bytes:,} bytes"
    assert seconds < 2, f"{name}: {seconds:.2f} s of CPU"


def _refusal(tmp_path, payload: bytes, **limits) -> str:
    """The UnsafePickleError message that loading ``payload`` gives; it must name the file."""
    path = write_bytes(tmp_path / "data_batch_1", payload)
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path, **limits)
    assert str(path) in str(info.value)
    return str(info.value)


def test_copies_of_one_byte_string_add_up_to_a_limit(tmp_path):
    # Ten calls bytes(B) on one memoised 600-byte B: each copy is small, but a file of a few
    # kilobytes could make millions of them.
    text = b"x" * 600
    payload = pickle.dumps([_Calls(bytes, text) for _ in range(10)], protocol=3)
    assert payload.count(text) == 1 and len(payload) < 1000
    message = _refusal(tmp_path, payload, max_bytes=1000)
    assert "add up to more than 4 x max_bytes = 4,000 bytes" in message
    assert len(load_pickle(write_bytes(tmp_path / "ok", payload), max_bytes=1500)) == 10


def test_a_file_larger_than_max_bytes_is_refused(tmp_path):
    payload = pickle.dumps(b"x" * 2000, protocol=3)
    message = _refusal(tmp_path, payload, max_bytes=1000)
    assert "larger than max_bytes=1,000 bytes" in message and "pass a larger max_bytes" in message
    # A stream of unknown size is refused when the reading gets past the limit.
    with pytest.raises(UnsafePickleError, match="larger than max_bytes=1,000"):
        RestrictedUnpickler(io.BytesIO(payload), max_bytes=1000).load()
    assert RestrictedUnpickler(io.BytesIO(payload), max_bytes=len(payload)).load() == b"x" * 2000


@pytest.mark.parametrize("kind", [list, tuple, dict, str, int, float, bool])
def test_builtins_that_no_pickle_names_are_refused(tmp_path, kind):
    # list(bytes) takes 8 bytes per byte, str(bytes) four: and no pickle writer calls them.
    message = _refusal(tmp_path, pickle.dumps(_Calls(kind, b"abc"), protocol=4))
    assert f"'builtins.{kind.__name__}'" in message


def test_build_only_sets_the_state_of_what_was_just_made_once(tmp_path):
    # On an admitted global: would set attributes of the function (protocol 0: MARK DICT
    # 'x' 1 SETITEM BUILD).
    message = _refusal(tmp_path, b"c_codecs\nencode\n(dVx\nI1\nsb.")
    assert "sets the state of a method (opcode BUILD)" in message
    # Twice on an array: the second would free memory that views of the first may hold.
    array = pickle.dumps(np.zeros(2000, np.uint8), protocol=3)[:-1]
    state = pickle.dumps((1, (1,), np.dtype("u1"), False, b"x"), protocol=3)[2:-1]
    message = _refusal(tmp_path, array + state + b"b.")
    assert "sets the state of a ndarray" in message


def test_calls_take_a_tuple_and_instances_are_not_made(tmp_path):
    # REDUCE on bytes b"abc": pickle._Unpickler would call bytes(97, 98, 99).
    message = _refusal(tmp_path, b"\x80\x03cbuiltins\nbytes\nC\x03abcR.")
    assert "arguments of a call (opcode REDUCE) are a bytes" in message
    # NEWOBJ: bytes.__new__(bytes).
    message = _refusal(tmp_path, b"\x80\x02c__builtin__\nbytes\n)\x81.")
    assert "opcode NEWOBJ" in message
