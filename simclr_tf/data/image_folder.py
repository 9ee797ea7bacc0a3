"""Your own images: a folder of image files as a streaming ``tf.data.Dataset``.

Two layouts are understood:

* **unlabelled**: every image file anywhere under the folder, e.g. ``photos/**/*.jpg``. SimCLR
  needs nothing more: it learns from the images alone.
* **labelled**: one subfolder per class, e.g. ``train/cat/*.png``, ``train/dog/*.png``. The
  labels are the subfolder names, numbered in alphabetical order (``class_names[label]``), and
  are used to evaluate the learned representation.

The folder is handled in two steps. :func:`list_image_folder` walks it and reads only the first
bytes of every file to recognise PNG, JPEG, BMP, GIF and WebP files by their signature (not by
their extension), and their width and height from the header (for a JPEG, from its first
frame header, looked for in the first MiB). Other files, and images of more than
``max_pixels`` pixels (default :data:`MAX_IMAGE_PIXELS`, Pillow's limit: a small compressed
file can decode to gigabytes), are reported in one :class:`UnreadableImageWarning` that names
them, and skipped; hidden files and folders (names starting with ".") are ignored silently.

File and folder names need not be valid UTF-8: such a name is kept as :func:`os.fsdecode`
gives it (with surrogate escapes, so that it still opens the file), the file is read like any
other, and messages show its undecodable bytes as ``\\xNN``.

:func:`load_image_folder` then streams the listed files: ``tf.data`` reads and decodes each file
in ``Dataset.map`` only when it is needed, so a folder of any size never sits in memory. A file
whose signature looked right can still fail to decode (truncated, corrupt). Such a file is
dropped from the stream and named in an :class:`UnreadableImageWarning` the first time it is
met; the rest of the folder is unaffected.

Every image comes out as RGB (grayscale is repeated into three channels, the alpha channel of
RGBA is dropped, palette colours are looked up, an animated GIF gives its first frame) and is
resized to ``image_size`` (bilinear with antialiasing; the aspect ratio is not kept).
"""

from __future__ import annotations

import os
import struct
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import tensorflow as tf

__all__ = [
    "MAX_IMAGE_PIXELS",
    "ImageFolder",
    "UnreadableImageWarning",
    "list_image_folder",
    "load_image_folder",
]

MAX_IMAGE_PIXELS = 89_478_485
"""Default ``max_pixels``: Pillow's ``Image.MAX_IMAGE_PIXELS`` (a 24-bit image of this size is
a quarter of a GiB once decoded; resizing it takes four times that as float32)."""

_HEADER_BYTES = 64
_JPEG_SCAN_BYTES = 2**20
# Start-of-frame markers, which carry a JPEG's size (C4, C8 and CC are other segments).
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class UnreadableImageWarning(UserWarning):
    """Files in an image folder were skipped because they are not readable images."""


@dataclass(frozen=True)
class ImageFolder:
    """What :func:`list_image_folder` found in a folder.

    Attributes:
        root: the folder.
        file_paths: the image files to load, sorted (by class folder first when labelled). A
            name that is not valid UTF-8 is kept as :func:`os.fsdecode` gives it.
        labels: the class index of each file, or None for an unlabelled folder.
        class_names: the class folder names, in label order (empty when unlabelled).
        skipped: ``(path, reason)`` of every file that was not recognised as an image or is
            larger than ``max_pixels``.
    """

    root: str
    file_paths: tuple[str, ...]
    labels: tuple[int, ...] | None
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]

    @property
    def labeled(self) -> bool:
        return self.labels is not None


def _image_file_problem(path: str, max_pixels: int | None) -> str | None:
    """Why ``path`` is not an image file to load, from its header only; None if it is one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER_BYTES)
            problem = _format_problem(header, handle)
            if problem is None and max_pixels is not None:
                problem = _size_problem(header, handle, max_pixels)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return problem


def _format_problem(header: bytes, handle: BinaryIO) -> str | None:
    """Why a file that starts with ``header`` is not a PNG, JPEG, BMP, GIF or WebP image that
    TensorFlow decodes; None if it looks like one.

    TensorFlow's BMP decoder reads an 8-bit BMP as grayscale and ignores its colour table, so
    an 8-bit BMP is only accepted when that table (read from ``handle``) is the grey ramp
    (entry i is (i, i, i)).
    """
    if not header:
        return "empty file"
    if header.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")):
        return None
    if header.startswith(b"RIFF") and header[8:12] == b"WEBP":
        return None
    if header.startswith(b"BM") and len(header) >= 50:
        dib_size = int.from_bytes(header[14:18], "little")
        # BITMAPCOREHEADER (12 bytes, OS/2) keeps the bit depth elsewhere: leave it to the decoder.
        if dib_size == 12:
            return None
        bits_per_pixel = header[28]
        if bits_per_pixel < 8:
            return f"{bits_per_pixel}-bit BMP, which TensorFlow cannot decode; convert it to PNG"
        if bits_per_pixel == 8:
            colours = int.from_bytes(header[46:50], "little") or 256
            handle.seek(14 + dib_size)
            table = handle.read(4 * min(colours, 256))
            grey_ramp = b"".join(bytes((i, i, i, 0)) for i in range(len(table) // 4))
            if not table or table != grey_ramp:
                return (
                    "8-bit colour-palette BMP, which TensorFlow decodes as grey; convert it to PNG"
                )
        return None
    return "not a PNG, JPEG, BMP, GIF or WebP image"


def _size_problem(header: bytes, handle: BinaryIO, max_pixels: int) -> str | None:
    """Why an image file that starts with ``header`` is too large to decode, or why its size
    cannot be told; None if it has at most ``max_pixels`` pixels."""
    if header.startswith(b"\xff\xd8\xff"):
        size = _jpeg_size(handle)
        if size is None:
            return (
                f"no JPEG frame header (SOF marker) in its first {_JPEG_SCAN_BYTES // 2**20} MiB, "
                "so its size cannot be checked: the file is corrupt, or has that much metadata "
                "before the image (re-save it without)"
            )
    else:
        size = _header_size(header)
        if size is None:
            return "its header does not give the image size (corrupt or truncated file)"
    width, height = size
    if width * height > max_pixels:
        return (
            f"{width}x{height} = {width * height:,} pixels, more than max_pixels="
            f"{max_pixels:,}; raise max_pixels (the flag --max_image_pixels; 0 or None: no "
            "limit) to load it"
        )
    return None


def _header_size(header: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG, GIF, BMP or WebP image from its first bytes, or None."""
    if header.startswith(b"\x89PNG\r\n\x1a\n"):  # IHDR, the first chunk
        return struct.unpack(">II", header[16:24]) if header[12:16] == b"IHDR" else None
    if header.startswith((b"GIF87a", b"GIF89a")):  # the logical screen, the canvas of frames
        return struct.unpack("<HH", header[6:10]) if len(header) >= 10 else None
    if header.startswith(b"BM"):  # at least 50 bytes, as _format_problem checked
        if int.from_bytes(header[14:18], "little") == 12:  # BITMAPCOREHEADER
            return struct.unpack("<HH", header[18:22])
        width, height = struct.unpack("<ii", header[18:26])
        return abs(width), abs(height)  # a negative height means rows stored top-down
    chunk, data = header[12:16], header[20:30]  # WebP: the first chunk and its first bytes
    if chunk == b"VP8 " and len(data) == 10 and data[3:6] == b"\x9d\x01\x2a":  # lossy
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:  # lossless
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) == 10:  # extended: the canvas
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    return None


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's first start-of-frame segment, or None when there is
    none in the first ``_JPEG_SCAN_BYTES``.

    The markers are walked as libjpeg reads them: from the segment lengths, skipping any bytes
    up to the next 0xFF, 0xFF fill bytes and stuffed zeros. A SOS (image data) or EOI marker
    before any SOF ends the search, as libjpeg would fail there too.
    """
    handle.seek(2)  # after SOI
    while handle.tell() < _JPEG_SCAN_BYTES:
        byte = handle.read(1)
        if byte != b"\xff":
            if not byte:
                return None
            continue
        marker = handle.read(1)
        while marker == b"\xff":
            marker = handle.read(1)
        if not marker or marker in (b"\xd9", b"\xda"):
            return None
        if marker == b"\x00" or marker == b"\x01" or b"\xd0" <= marker <= b"\xd8":
            continue  # stuffed zero, TEM, RSTn, SOI: no length field
        length = int.from_bytes(handle.read(2), "big")
        if marker[0] in _JPEG_SOF_MARKERS:
            frame = handle.read(5)  # precision, height, width
            if len(frame) < 5:
                return None
            return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
        if length < 2:
            return None
        handle.seek(length - 2, os.SEEK_CUR)
    return None


def _shown(path: str) -> str:
    """``path`` for a message: as it is, except that bytes of a file name that are not UTF-8
    (surrogate escapes in ``path``) are shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is not None and (
        not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels <= 0
    ):
        raise ValueError(
            "max_pixels must be a positive int (the most pixels an image may have to be loaded) "
            f"or None (no limit); received max_pixels={max_pixels!r}."
        )


def _walk_files(folder: Path) -> list[str]:
    """Every non-hidden file under ``folder``, recursively, sorted."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        found.extend(os.path.join(directory, name) for name in files if not name.startswith("."))
    return sorted(found)


def _check_folder(path: str | os.PathLike) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"path={os.fspath(path)!r} does not exist; pass a folder of images."
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"path={os.fspath(path)!r} is a file, not a folder. Pass the folder that contains "
            "the images (for one image, put it in a folder of its own)."
        )
    return folder


def list_image_folder(
    path: str | os.PathLike,
    labeled: bool | None = None,
    class_names: Sequence[str] | None = None,
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> ImageFolder:
    """Finds the image files under ``path`` and, for a labelled folder, their classes.

    Args:
        path: the folder.
        labeled: True for one subfolder per class, False to take every image under ``path``
            without labels, None to decide from the layout: labelled when there is no image
            directly in ``path`` and at least one subfolder holds images.
        class_names: for a labelled folder, the class subfolders to use, in label order (so
            that a training and a test folder number their classes alike). None means every
            non-hidden subfolder, sorted alphabetically.
        max_pixels: images with more pixels (width x height, read from the file's header) are
            skipped with a warning, before anything is decoded; None for no limit.

    Returns:
        An :class:`ImageFolder` listing.

    Raises:
        FileNotFoundError: if ``path`` is missing, is a file, or holds no files at all, or if
            a folder in ``class_names`` does not exist.
        ValueError: if no file under ``path`` is a readable image, if ``labeled=True`` but
            the layout is not one subfolder per class, or if ``max_pixels`` is not a positive
            int or None.
    """
    return _list_image_folder(path, labeled, class_names, max_pixels)


def _class_folders(folder: Path, class_names: Sequence[str] | None) -> list[str]:
    """The class folder names: the given ones (which must exist), else every visible subfolder."""
    if class_names is None:
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.is_dir() and not entry.name.startswith(".")
        )
    absent = [name for name in class_names if not (folder / name).is_dir()]
    if absent:
        raise FileNotFoundError(
            f"class_names lists folder(s) {absent} that do not exist under {os.fspath(folder)}."
        )
    return list(class_names)


def _list_image_folder(
    path: str | os.PathLike,
    labeled: bool | None,
    class_names: Sequence[str] | None,
    max_pixels: int | None,
) -> ImageFolder:
    """:func:`list_image_folder`. Its warnings (stacklevel 3) name the line of user code that
    called :func:`list_image_folder` or :func:`load_image_folder`."""
    _check_max_pixels(max_pixels)
    folder = _check_folder(path)
    files = _walk_files(folder)
    if not files:
        raise FileNotFoundError(
            f"path={os.fspath(path)!r} contains no files. Put PNG, JPEG, BMP, GIF or WebP images "
            "in it (or one subfolder of images per class)."
        )
    problems = {file: _image_file_problem(file, max_pixels) for file in files}
    skipped = tuple((file, reason) for file, reason in problems.items() if reason is not None)
    images = [file for file, reason in problems.items() if reason is None]
    if not images:
        listing = "; ".join(f"{_shown(file)}: {reason}" for file, reason in skipped[:10])
        raise ValueError(
            f"path={os.fspath(path)!r}: none of its {len(files)} file(s) is a readable PNG, JPEG, "
            f"BMP, GIF or WebP image ({listing}{'; ...' if len(skipped) > 10 else ''})."
        )
    if skipped:
        warnings.warn(
            UnreadableImageWarning(
                f"Skipped {len(skipped)} file(s) under {_shown(os.fspath(path))} that are not "
                "readable images or are too large: "
                + "; ".join(f"{_shown(file)} ({reason})" for file, reason in skipped)
            ),
            stacklevel=3,
        )

    loose = [file for file in images if Path(file).parent == folder]
    if labeled is None:
        labeled = not loose
    if not labeled:
        return ImageFolder(os.fspath(folder), tuple(images), None, (), skipped)

    if loose:
        raise ValueError(
            f"labeled=True needs one subfolder per class, but path={os.fspath(path)!r} has "
            f"{len(loose)} image(s) directly inside it (e.g. {_shown(Path(loose[0]).name)}). Move "
            "them into class subfolders, or pass labeled=False to load them without labels."
        )
    class_names = _class_folders(folder, class_names)
    class_of = {name: label for label, name in enumerate(class_names)}
    paths, labels = [], []
    for file in images:
        label = class_of.get(Path(file).relative_to(folder).parts[0])
        if label is not None:
            paths.append(file)
            labels.append(label)
    counts = Counter(labels)
    empty = [name for label, name in enumerate(class_names) if counts[label] == 0]
    if len(empty) == len(class_names):
        raise ValueError(f"path={os.fspath(path)!r}: no class folder holds a readable image.")
    if empty:
        warnings.warn(
            UnreadableImageWarning(
                f"Class folder(s) without readable images under {_shown(os.fspath(path))}: "
                f"{', '.join(map(_shown, empty))}. They keep their label numbers but have no "
                "examples."
            ),
            stacklevel=3,
        )
    return ImageFolder(os.fspath(folder), tuple(paths), tuple(labels), tuple(class_names), skipped)


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        size = (image_size, image_size)
    elif isinstance(image_size, Sequence) and not isinstance(image_size, str):
        size = tuple(image_size)
    else:
        size = ()
    if len(size) != 2 or not all(
        isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in size
    ):
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair of positive ints; "
            f"received image_size={image_size!r}."
        )
    return size


class _DecodeFailureReport:
    """Warns once per file that failed to decode (called from inside the tf.data pipeline)."""

    def __init__(self) -> None:
        self.reported: set[str] = set()

    def __call__(self, path: tf.Tensor) -> bool:
        name = _shown(os.fsdecode(path.numpy()))
        if name not in self.reported:
            self.reported.add(name)
            warnings.warn(
                UnreadableImageWarning(
                    f"Skipped {name}: it has an image signature but could not be decoded "
                    "(truncated or corrupt file, or a variant TensorFlow does not support)."
                ),
                stacklevel=1,
            )
        return False


def load_image_folder(
    path: str | os.PathLike | ImageFolder,
    image_size: int | Sequence[int],
    labeled: bool | None = None,
    class_names: Sequence[str] | None = None,
    shuffle_files: bool = True,
    seed: int = 0,
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> tf.data.Dataset:
    """Streams the images of a folder as a ``tf.data.Dataset``.

    Args:
        path: the folder, or a listing returned by :func:`list_image_folder`.
        image_size: output size, an int for square images or ``(height, width)``.
        labeled: see :func:`list_image_folder` (ignored when ``path`` is a listing).
        class_names: see :func:`list_image_folder` (ignored when ``path`` is a listing).
        shuffle_files: visit the files in a new seeded random order on every pass. Only file
            names are shuffled, which is cheap and mixes the classes fully; False keeps the
            sorted order.
        seed: seed of that order.
        max_pixels: see :func:`list_image_folder` (ignored when ``path`` is a listing).

    Returns:
        A dataset of uint8 images [height, width, 3] for an unlabelled folder, or of
        ``(image, label)`` pairs with int64 scalar labels for a labelled one. It carries two
        attributes, as Keras's ``image_dataset_from_directory`` does: ``class_names`` (tuple,
        empty when unlabelled) and ``file_paths``. They are lost by any further transformation
        (``.map``, ``.batch``, ...); :func:`list_image_folder` gives them too.

    Raises:
        FileNotFoundError, ValueError: as :func:`list_image_folder`, and ``ValueError`` for an
            invalid ``image_size``.
    """
    height, width = _image_size(image_size)
    if isinstance(path, ImageFolder):
        folder = path
    else:
        folder = _list_image_folder(path, labeled, class_names, max_pixels)
    report = _DecodeFailureReport()

    def decode(file_path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(file_path), channels=3, expand_animations=False)
        image = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    # As bytes: TensorFlow opens any file name, but takes a str only if it encodes to UTF-8.
    paths = tf.constant([os.fsencode(file) for file in folder.file_paths], tf.string)
    labels = tf.constant(folder.labels if folder.labeled else [], dtype=tf.int64)

    def decode_or_flag(index: tf.Tensor) -> tf.data.Dataset:
        # A one-element dataset: (image, True, index), or (blank image, False, index) when
        # decoding raises. ignore_errors() swallows the error; the index still names the file.
        decoded = tf.data.Dataset.from_tensors(paths[index]).map(lambda p: (decode(p), True))
        failed = tf.data.Dataset.from_tensors((tf.zeros((height, width, 3), tf.uint8), False))
        flagged = decoded.ignore_errors().concatenate(failed).take(1)
        return flagged.map(lambda image, ok: (image, ok, index))

    def keep(image: tf.Tensor, ok: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        def report_failure() -> tf.Tensor:
            return tf.ensure_shape(tf.py_function(report, [paths[index]], tf.bool), ())

        return tf.cond(ok, lambda: tf.constant(True), report_failure)

    indices = tf.data.Dataset.range(len(folder.file_paths))
    if shuffle_files:
        indices = indices.shuffle(len(folder.file_paths), seed=seed, reshuffle_each_iteration=True)
    # interleave() runs decode_or_flag on several files in parallel; deterministic=True keeps
    # the order of `indices`.
    dataset = indices.interleave(
        decode_or_flag,
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).filter(keep)
    if folder.labeled:
        dataset = dataset.map(lambda image, ok, index: (image, labels[index]))
    else:
        dataset = dataset.map(lambda image, ok, index: image)
    dataset.class_names = folder.class_names
    dataset.file_paths = folder.file_paths
    return dataset
