"""Reading pickle files without letting them run code or exhaust memory.

A pickle is not a data format but a small program: its opcodes may name any importable
function (``os.system``, ``builtins.eval``, ...) and call it while the file is being loaded.
``pickle.load`` on a file of unknown origin therefore runs whatever the file's author wanted.
Even without calling anything, a few bytes can ask for gigabytes: ``bytes(4_000_000_000)``,
``numpy.ndarray((10**9,))``, a length field announcing a 4 GB byte string, or a million
one-byte opcodes that each build an empty set.

The CIFAR-10 "python version" ships as pickles, so we read them with
:class:`RestrictedUnpickler`. It overrides :meth:`~pickle.Unpickler.find_class` (the one place
where a pickle can reach a global name) and hands out, instead of the globals themselves,
checked stand-ins for the handful that pickled numpy arrays need. Dicts, lists, tuples, bytes,
str and int are built by dedicated opcodes and need no global at all, so their types are not
admitted as globals either (``list(b)`` would take eight bytes per byte of ``b``). Everything
else is refused with :class:`UnsafePickleError` before it can be called.

Every allocation the pickle can cause is bounded before it happens:

* the file: at most ``max_bytes`` (default :data:`MAX_PICKLE_BYTES`) are read, and a length
  field can never make the reader allocate more than what is left of that;
* the opcodes: at most ``max_opcodes`` (default :data:`MAX_PICKLE_OPCODES`), each of which
  builds at most one small object;
* the admitted calls (``bytes``, ``bytearray``, ``_codecs.encode``, numpy's array
  reconstruction) and the ``BUILD`` opcode that fills an array: each one's result is computed
  from its arguments first, and refused when it holds more than ``max_bytes`` or brings what
  they built together past four times that.

``BUILD`` (which calls ``__setstate__``) is only admitted once on each array or dtype that an
admitted call has just made, as numpy's own pickles use it: setting the state of an array that
is already in use would free memory that other objects still point to, and changing a dtype in
use would make the arrays that have it read past their memory. A dtype's state may change only
its byte order, so structured, sub-array and datetime dtypes are refused.

This needs hooks that :class:`pickle.Unpickler` (the C implementation) does not have, so
:class:`RestrictedUnpickler` extends the pure-Python one, ``pickle._Unpickler``: a CIFAR-10
batch (30,000 opcodes) loads in about 50 ms, as with the C one.

Which globals a pickled numpy array names depends on the pickle protocol and on the numpy
version that wrote it (measured with numpy 2.4 and from the official CIFAR-10 files):

* protocols 3 and 4: ``numpy._core.multiarray._reconstruct`` (``numpy.core.multiarray`` before
  numpy 2), ``numpy.ndarray`` and ``numpy.dtype``;
* protocols 0 to 2 written by Python 3 add ``_codecs.encode`` (to rebuild the array's bytes from
  a latin-1 string) and ``__builtin__.bytes`` (for empty byte strings);
* protocol 5: ``numpy._core.numeric._frombuffer`` and ``numpy.dtype``.
"""

from __future__ import annotations

import codecs
import functools
import math
import os
import pickle
import reprlib
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPCODES",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_pickle",
]

MAX_PICKLE_BYTES = 64 * 2**20
"""Default ``max_bytes``: the largest pickle file read (64 MiB), and the most bytes one array
or byte string built from it may hold. A CIFAR-10 batch is a 31 MB file holding a 30 MB array
(47 MB when Python 3 writes it with protocol 2)."""

MAX_PICKLE_OPCODES = 250_000
"""Default ``max_opcodes``: a CIFAR-10 batch has 30,000 (90,000 when Python 3 writes it with
protocol 2). Each opcode builds at most one object of at most a few hundred bytes (an empty set
is the largest), so this also bounds the memory they take."""

_BUILT_BYTES_FACTOR = 4
"""What the admitted calls build in one load may add up to this many times ``max_bytes``."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global, a call or a size that :class:`RestrictedUnpickler` does
    not admit."""


# numpy's own reconstruction helpers, taken from what numpy itself pickles, so that the same
# function is found whichever numpy version (1.x: numpy.core, 2.x: numpy._core) is installed.
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_FROMBUFFER = np.arange(1).__reduce_ex__(5)[0]

# (module, name) a pickle may ask for -> the RestrictedUnpickler method that stands in for it.
# Python 2 pickles (and protocols < 3) spell the builtins module "__builtin__".
_ALLOWED_GLOBALS: dict[tuple[str, str], str] = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy.core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy", "ndarray"): "_ndarray",
    ("numpy", "dtype"): "_dtype",
    ("_codecs", "encode"): "_codecs_encode",
    ("builtins", "bytes"): "_bytes",
    ("__builtin__", "bytes"): "_bytes",
    ("builtins", "bytearray"): "_bytearray",
    ("__builtin__", "bytearray"): "_bytearray",
}

_BYTE_ORDERS = ("<", ">", "=", "|")


def _is_latin1(encoding: Any) -> bool:
    try:
        return codecs.lookup(encoding).name == "iso8859-1"
    except (LookupError, TypeError):
        return False


def _array_bytes(shape: Any, dtype: Any) -> int:
    """How many bytes an array of ``shape`` (an int or a sequence of ints) and ``dtype`` holds.

    Raises:
        ValueError: if ``shape`` is not made of ints.
    """
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(dim, int) for dim in dims):
        raise ValueError(f"an array shape must be ints, got {reprlib.repr(shape)}")
    return max(math.prod(dims), 0) * np.dtype(dtype).itemsize


class _BoundedReader:
    """``read`` and ``readline`` of a binary file that stop at ``limit`` bytes in all.

    The file is never asked for more than it holds (when it is a regular file) or than what is
    left of the limit, plus one byte to tell that there is more. A length field in the pickle
    thus cannot make the reader allocate a buffer of that length; a regular file larger than
    ``limit`` is refused at the first read.
    """

    def __init__(self, file: BinaryIO, limit: int, too_large: Callable[[], Exception]) -> None:
        self._file = file
        self._too_large = too_large
        try:
            in_file = os.fstat(file.fileno()).st_size - file.tell()
        except (AttributeError, OSError, ValueError):  # not a regular file (io.BytesIO, a pipe)
            in_file = limit
        self._left = min(limit, in_file)
        self._oversized = in_file > limit

    def read(self, size: int = -1) -> bytes:
        return self._count(self._file.read(self._bounded(size)))

    def readline(self, size: int = -1) -> bytes:
        return self._count(self._file.readline(self._bounded(size)))

    def _bounded(self, size: int) -> int:
        if self._oversized:
            raise self._too_large()
        return self._left + 1 if size is None or size < 0 else min(size, self._left + 1)

    def _count(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise self._too_large()
        return data


def _count_opcodes(load: Callable[[RestrictedUnpickler], None]) -> Callable:
    """Wraps the handler of one opcode so that it first counts the opcode against the limit."""

    def counted(self: RestrictedUnpickler) -> None:
        self._opcodes_left -= 1
        if self._opcodes_left < 0:
            raise self._refuse(
                f"it has more than max_opcodes={self.max_opcodes:,} pickle opcodes (a CIFAR-10 "
                "batch has about 30,000)",
                "or pass a larger max_opcodes if you trust it",
            )
        load(self)

    return counted


# Opcodes that no data file needs: NEWOBJ and NEWOBJ_EX make an instance of a class, and no
# admitted global is one; READONLY_BUFFER is for out-of-band buffers (which load_pickle never
# passes), and on an array it would export memory that a later BUILD frees.
_REFUSED_OPCODES = ("NEWOBJ", "NEWOBJ_EX", "READONLY_BUFFER")


def _refused(opcode: str) -> Callable:
    """The handler of an opcode that is refused."""

    def refuse(self: RestrictedUnpickler) -> None:
        raise self._refuse(f"the pickle uses the opcode {opcode}, which no data file needs")

    return refuse


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that only rebuilds numpy arrays and plain Python values, within a budget.

    Args:
        file: binary file object to read from.
        source: name of the file, used in error messages.
        encoding: how Python 2 ``str`` objects are decoded; CIFAR-10 needs ``"bytes"``.
        max_bytes: the most bytes read from ``file``, and the most that any one array or byte
            string built by a call may hold (the calls together: four times that).
        max_opcodes: the most pickle opcodes executed.

    Raises:
        UnsafePickleError: from :meth:`load`, when the pickle asks for a global outside the
            allowed set, calls an admitted one in a way numpy and pickle never do, or goes past
            one of the limits. Nothing it asked for has been called or allocated.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        source: str = "<pickle>",
        encoding: str = "bytes",
        max_bytes: int = MAX_PICKLE_BYTES,
        max_opcodes: int = MAX_PICKLE_OPCODES,
    ) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.max_opcodes = max_opcodes
        too_large = functools.partial(
            self._refuse,
            f"it is larger than max_bytes={max_bytes:,} bytes (a CIFAR-10 batch file is about "
            "31 MB)",
            "or pass a larger max_bytes if you trust it",
        )
        super().__init__(_BoundedReader(file, max_bytes, too_large), encoding=encoding)
        self._opcodes_left = max_opcodes
        self._bytes_built = 0
        # Arrays and dtypes just made by an admitted call, by id, until their one BUILD.
        self._unbuilt: dict[int, Any] = {}
        # One stand-in object per global, so that _reconstruct can tell numpy.ndarray by identity.
        self._globals = {key: getattr(self, method) for key, method in _ALLOWED_GLOBALS.items()}

    def _refuse(self, problem: str, remedy: str = "") -> UnsafePickleError:
        return UnsafePickleError(
            f"Refusing to load {self.source}: {problem}. The file is corrupt or malicious; "
            f"replace it with a copy from a trusted source{f' ({remedy})' if remedy else ''}."
        )

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to load {self.source}: the pickle asks for the global "
                f"'{module}.{name}', which a data file has no reason to call. Only numpy arrays "
                "and plain values (dict, list, bytes, str, int) are admitted. The file is corrupt "
                "or malicious; replace it with a copy from a trusted source."
            ) from None

    def _charge(self, nbytes: int, what: str) -> None:
        """Counts an object of ``nbytes`` that is about to be built, or refuses it."""
        remedy = "or pass a larger max_bytes if you trust it"
        if nbytes > self.max_bytes:
            raise self._refuse(
                f"the pickle asks for {what} of {nbytes:,} bytes, more than max_bytes="
                f"{self.max_bytes:,}",
                remedy,
            )
        self._bytes_built += nbytes
        if self._bytes_built > _BUILT_BYTES_FACTOR * self.max_bytes:
            raise self._refuse(
                f"the objects the pickle builds add up to more than {_BUILT_BYTES_FACTOR} x "
                f"max_bytes = {_BUILT_BYTES_FACTOR * self.max_bytes:,} bytes",
                remedy,
            )

    # Stand-ins for the admitted globals -------------------------------------------------------

    def _byte_string(self, kind: type, name: str, args: tuple, *, is_type: bool) -> Any:
        """``kind(*args)`` in the forms that pickle writes: ``(str, 'latin1')`` and, for the
        types ``bytes`` and ``bytearray`` themselves (``is_type``), ``()`` and ``(bytes,)``."""
        if len(args) == 2 and isinstance(args[0], str) and _is_latin1(args[1]):
            self._charge(len(args[0]), f"{name}() of a string")
            return kind(args[0].encode("latin-1"))
        if is_type and not args:
            return kind()
        if is_type and len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
            self._charge(len(args[0]), f"{name}() of a byte string")
            return kind(args[0])
        forms = f"{name}(str, 'latin1')" + (f", {name}() or {name}(bytes)" if is_type else "")
        called = ", ".join(type(arg).__name__ for arg in args)
        raise self._refuse(f"{name} is only admitted as {forms}; the pickle calls {name}({called})")

    def _bytes(self, *args: Any) -> bytes:
        return self._byte_string(bytes, "bytes", args, is_type=True)

    def _bytearray(self, *args: Any) -> bytearray:
        return self._byte_string(bytearray, "bytearray", args, is_type=True)

    def _codecs_encode(self, *args: Any) -> bytes:
        """``_codecs.encode`` as protocol-2 pickles of ``bytes`` use it: latin-1 on a str."""
        return self._byte_string(bytes, "_codecs.encode", args, is_type=False)

    def _ndarray(self, *args: Any) -> None:
        raise self._refuse(
            "numpy.ndarray is only admitted as the first argument of numpy's _reconstruct, but "
            "the pickle calls it"
        )

    def _dtype(self, obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(obj, (str, bytes)):
            raise self._refuse(
                "numpy.dtype is only admitted for a type code such as 'u1', as numpy writes "
                f"it; the pickle asks for numpy.dtype({type(obj).__name__})"
            )
        # Always a copy: numpy's BUILD must not change the dtype that numpy shares process-wide.
        dtype = np.dtype(
            obj.decode("latin-1") if isinstance(obj, bytes) else obj, bool(align), True
        )
        self._unbuilt[id(dtype)] = dtype
        return dtype

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not self._globals[("numpy", "ndarray")]:
            raise self._refuse(
                "numpy's _reconstruct is only admitted for numpy.ndarray; the pickle passes "
                f"{type(subtype).__name__}"
            )
        self._charge(_array_bytes(shape, dtype), f"a numpy array of shape {reprlib.repr(shape)}")
        array = _RECONSTRUCT(np.ndarray, shape, dtype)
        self._unbuilt[id(array)] = array
        return array

    def _frombuffer(self, buf: Any, dtype: Any, shape: Any, *args: Any) -> np.ndarray:
        if not isinstance(buf, (bytes, bytearray)):
            raise self._refuse(
                "numpy's _frombuffer is only admitted on bytes or a bytearray; the pickle passes "
                f"{type(buf).__name__}"
            )
        self._charge(_array_bytes(shape, dtype), f"a numpy array of shape {reprlib.repr(shape)}")
        return _FROMBUFFER(buf, dtype, shape, *args)

    # Opcodes that allocate or call ---------------------------------------------------------

    def load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        if self._unbuilt.pop(id(target), None) is not target:
            raise self._refuse(
                f"the pickle sets the state of a {type(target).__name__} (opcode BUILD); only a "
                "numpy array or dtype it has just made may have its state set, once"
            )
        if isinstance(target, np.ndarray):
            # ndarray.__setstate__ takes (version, shape, dtype, is_fortran, data), or the same
            # without version; it allocates shape x dtype.itemsize bytes.
            if not (
                isinstance(state, tuple)
                and len(state) in (4, 5)
                and isinstance(state[-4], tuple)
                and isinstance(state[-3], np.dtype)
            ):
                raise self._refuse(
                    "the state of a numpy array is not the (version, shape, dtype, is_fortran, "
                    "data) that numpy writes"
                )
            shape = state[-4]
            self._charge(_array_bytes(*state[-4:-2]), f"a numpy array of shape {shape}")
        else:
            self._check_dtype_state(target, state)
        super().load_build()

    def _check_dtype_state(self, dtype: np.dtype, state: Any) -> None:
        """Admits a dtype state that only sets the byte order, as numpy writes for plain dtypes:
        anything else (fields, sub-array, item size, flags) could contradict arrays that use
        the dtype already."""
        expected = dtype.__reduce__()[2]
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if isinstance(order, bytes):  # Python 2 pickles read with encoding="bytes"
            order = order.decode("latin-1")
        plain = (
            isinstance(state, tuple)
            and len(state) == len(expected)
            and order in _BYTE_ORDERS
            and (state[0], *state[2:]) == (expected[0], *expected[2:])
        )
        if not plain:
            raise self._refuse(
                f"the pickle sets the state of numpy.dtype({dtype.str!r}) to "
                f"{reprlib.repr(state)}; only the byte order of a plain dtype (numbers, bool, "
                "bytes, str) may be set, not fields, sub-arrays or sizes"
            )

    def load_bytearray8(self) -> None:
        # pickle._Unpickler allocates bytearray(size) before reading; read first instead.
        (size,) = struct.unpack("<Q", self.read(8))
        data = self.read(min(size, self.max_bytes + 1))
        if len(data) != size:
            raise pickle.UnpicklingError(
                f"BYTEARRAY8 announces {size:,} bytes but the file holds {len(data):,}"
            )
        self.append(bytearray(data))

    def load_reduce(self) -> None:
        # pickle._Unpickler would unpack any iterable into the call's arguments (a byte string
        # into one int per byte, eight times its size); pickle always writes a tuple.
        if not isinstance(self.stack[-1], tuple):
            raise self._refuse(
                "the arguments of a call (opcode REDUCE) are a "
                f"{type(self.stack[-1]).__name__}, not the tuple that pickle writes"
            )
        super().load_reduce()

    dispatch = {
        code: _count_opcodes(load)
        for code, load in {
            **pickle._Unpickler.dispatch,
            pickle.BUILD[0]: load_build,
            pickle.BYTEARRAY8[0]: load_bytearray8,
            pickle.REDUCE[0]: load_reduce,
            **{getattr(pickle, name)[0]: _refused(name) for name in _REFUSED_OPCODES},
        }.items()
    }


def load_pickle(
    path: str | os.PathLike,
    *,
    encoding: str = "bytes",
    max_bytes: int = MAX_PICKLE_BYTES,
    max_opcodes: int = MAX_PICKLE_OPCODES,
) -> Any:
    """Loads one pickle file with :class:`RestrictedUnpickler`.

    Args:
        path: the pickle file.
        encoding: how Python 2 ``str`` objects are decoded (``"bytes"`` keeps them as bytes).
        max_bytes: the largest file read, and the most bytes any one array or byte string
            built from it may hold (see :class:`RestrictedUnpickler`).
        max_opcodes: the most pickle opcodes executed.

    Returns:
        The unpickled object (for CIFAR-10: a dict with byte-string keys).

    Raises:
        UnsafePickleError: if the pickle names a global outside the allowed set, calls one in a
            way that numpy and pickle never do, or goes past ``max_bytes`` or ``max_opcodes``
            (nothing it asked for is called or allocated).
        ValueError: if the file is not a complete, valid pickle.
    """
    source = os.fspath(path)
    with open(source, "rb") as handle:
        unpickler = RestrictedUnpickler(
            handle, source=source, encoding=encoding, max_bytes=max_bytes, max_opcodes=max_opcodes
        )
        try:
            return unpickler.load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # whatever a malformed pickle makes the opcodes raise
            what = (
                "it ends in the middle of the pickle"
                if isinstance(exc, EOFError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise ValueError(
                f"{source} is not a valid pickle file ({what}). It may be truncated or corrupt; "
                "replace it with a fresh copy."
            ) from exc
