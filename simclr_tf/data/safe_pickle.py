"""Reading pickle files without letting them run code.

A pickle is not a data format but a small program: its opcodes may name any importable
function (``os.system``, ``builtins.eval``, ...) and call it while the file is being loaded.
``pickle.load`` on a file of unknown origin therefore runs whatever the file's author wanted.

The CIFAR-10 "python version" ships as pickles, so we read them with
:class:`RestrictedUnpickler`, which overrides :meth:`pickle.Unpickler.find_class` (the one
place where a pickle can reach a global name) and hands out only the handful of globals that
pickled numpy arrays need. Dicts, lists, tuples, bytes, str and int are built by dedicated
opcodes and need no global at all. Everything else is refused with :class:`UnsafePickleError`
before it can be called.

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
import os
import pickle
from typing import Any

import numpy as np

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "load_pickle"]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not admit."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of ``bytes`` use it: latin-1 on a str only."""
    try:
        is_latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except (LookupError, TypeError):
        is_latin1 = False
    if not (isinstance(text, str) and is_latin1):
        raise UnsafePickleError(
            f"_codecs.encode is only admitted as encode(str, 'latin1'); the pickle called "
            f"encode({type(text).__name__}, {encoding!r})."
        )
    return text.encode("latin-1")


# numpy's own reconstruction helpers, taken from what numpy itself pickles, so that the same
# function is found whichever numpy version (1.x: numpy.core, 2.x: numpy._core) is installed.
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_FROMBUFFER = np.arange(1).__reduce_ex__(5)[0]

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
# Plain value types. Python 2 pickles (and protocols < 3) spell the module "__builtin__".
for _module in ("builtins", "__builtin__"):
    for _type in (dict, list, tuple, bytes, bytearray, str, int, float, bool):
        _ALLOWED_GLOBALS[(_module, _type.__name__)] = _type


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays and plain Python values.

    Args:
        file: binary file object to read from.
        source: name of the file, used in error messages.
        encoding: how Python 2 ``str`` objects are decoded; CIFAR-10 needs ``"bytes"``.
    """

    def __init__(self, file: Any, *, source: str = "<pickle>", encoding: str = "bytes") -> None:
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to load {self.source}: the pickle asks for the global "
                f"'{module}.{name}', which a data file has no reason to call. Only numpy arrays "
                "and plain values (dict, list, bytes, str, int) are admitted. The file is corrupt "
                "or malicious; replace it with a copy from a trusted source."
            ) from None


def load_pickle(path: str | os.PathLike, *, encoding: str = "bytes") -> Any:
    """Loads one pickle file with :class:`RestrictedUnpickler`.

    Args:
        path: the pickle file.
        encoding: how Python 2 ``str`` objects are decoded (``"bytes"`` keeps them as bytes).

    Returns:
        The unpickled object (for CIFAR-10: a dict with byte-string keys).

    Raises:
        UnsafePickleError: if the pickle names a global outside the allowed set (nothing it
            asked for is called).
        ValueError: if the file is not a complete, valid pickle.
    """
    source = os.fspath(path)
    with open(source, "rb") as handle:
        try:
            return RestrictedUnpickler(handle, source=source, encoding=encoding).load()
        except UnsafePickleError as exc:
            if source in str(exc):
                raise
            raise UnsafePickleError(f"Refusing to load {source}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"{source} is not a valid pickle file ({type(exc).__name__}: {exc}). "
                "It may be truncated or corrupt; replace it with a fresh copy."
            ) from exc
