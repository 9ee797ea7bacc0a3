"""Files and folders written whole or not at all.

Every output of this package that a person or another program reads later (an exported
encoder, an embedding index, a report) is first written under a temporary name beside its
target and then renamed into place. A rename within one file system is atomic, so a reader sees
either the previous version or the complete new one, never half a file, even when the writer is
interrupted (Ctrl-C, ``kill``, a full disk) in the middle.

    with atomic.replacing("index/paths.csv") as partial:
        write_the_file(partial)      # an exception here leaves index/paths.csv untouched

Temporary names start with "." and live in the target's folder, so they are on the same file
system as the target and hidden from folder listings (and from
:func:`simclr_tf.data.list_image_folder`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = ["replace_folder", "replacing", "staging_folder", "write_json", "write_text"]


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary file path that is renamed to ``path`` when the block succeeds.

    Args:
        path: the file to write. Its folder is created if needed.

    Yields:
        The temporary path to write to (in the same folder, name starting with ".").

    On an exception (including ``KeyboardInterrupt``) the temporary file is removed and
    ``path`` keeps its previous content, if it had any.
    """
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    os.close(handle)
    os.chmod(partial, 0o666 & ~_umask())  # mkstemp makes it private; give it a file's usual mode
    try:
        yield partial
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with replacing(path) as partial, open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Writes ``value`` as indented JSON to ``path`` atomically (non-JSON values as ``str``)."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def staging_folder(target: str | os.PathLike, prefix: str = "staging") -> str:
    """Creates an empty hidden folder beside ``target`` to build it in.

    Args:
        target: the folder that will eventually be replaced by :func:`replace_folder`.
        prefix: a word in the hidden folder's name, to tell what it is for.

    Returns:
        The new folder's path (``.<prefix>-<random>`` in the parent of ``target``).
    """
    parent = os.path.dirname(os.path.abspath(os.fspath(target)))
    os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f".{prefix}-", dir=parent)
    os.chmod(folder, 0o777 & ~_umask())  # mkdtemp makes it private; give it a folder's usual mode
    return folder


def replace_folder(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves folder ``source`` to ``target``; an old ``target`` is removed only once that is done.

    Both must be on the same file system (:func:`staging_folder` makes sure of it). If the move
    fails, an old ``target`` is put back.
    """
    source, target = os.fspath(source), os.path.abspath(os.fspath(target))
    if not os.path.exists(target):
        os.replace(source, target)
        return
    retired = tempfile.mkdtemp(prefix=".retired-", dir=os.path.dirname(target))
    os.rmdir(retired)
    os.replace(target, retired)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
