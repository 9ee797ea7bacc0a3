"""Embed a folder of images with a trained encoder: one vector per image, on disk.

    python -m simclr_tf.embed --encoder runs/main/encoder --images ~/photos --out ~/photos-index

or, from Python, :func:`embed_folder`. Every image file under the folder (recursively) is read
as in training -- the same readers, the same :class:`~simclr_tf.data.UnreadableImageWarning`
for files that are skipped (:mod:`simclr_tf.data.image_folder`) -- resized to the encoder's
image size, decoded in parallel by ``tf.data``, and encoded batch by batch. The result is an
**index folder**::

    manifest.json    what the index is: encoder (path, fingerprint, metadata), count, dim,
                     dtype, normalisation, the folder embedded; written last
    embeddings.npy   float32 (or float16) [N, D], row i is the image on row i of paths.csv;
                     np.load(path, mmap_mode="r") reads it without loading it
    paths.csv        row,path[,label]: the absolute path of each row's image (and its class
                     number, when the folder has one subfolder per class)
    paths.parquet    the same table, when pandas and pyarrow are installed
    skipped.csv      path,reason of every file that was not embedded (only if there are any)

With ``normalize=True`` (the default) the rows are unit vectors (L2-normalised ``h``), so a dot
product is a cosine similarity; ``normalize=False`` keeps ``h`` as the encoder returns it.

**Interruptions.** The work is done in shards of ``shard_size`` images, each written atomically
to a hidden folder beside the output (``.<name>.partial/``) as soon as it is complete. Stopped
by ``Ctrl-C``, ``kill`` or a crash, the same command continues where it stopped: finished
shards are not embedded again. The index folder itself appears only when everything is done
(one rename), so a reader never sees half an index, and an existing index is replaced only by a
complete new one (``overwrite=True``). Running a finished command again does nothing. How the
folder and the unfinished work are kept on disk is :mod:`simclr_tf.index_folder`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from simclr_tf.index_folder import (
    FORMAT,
    MANIFEST_FILE,
    assemble_index,
    existing_index,
    prepare_work_folder,
    publish_index,
    read_manifest,
    shard_path,
    work_folder,
    write_shard,
)
from simclr_tf.similarity import normalize as unit_rows

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SHARD_SIZE",
    "MANIFEST_FILE",
    "Progress",
    "display_path",
    "embed_folder",
    "image_batches",
    "main",
    "read_manifest",
]

DEFAULT_BATCH_SIZE = 256
DEFAULT_SHARD_SIZE = 4096
_DTYPES = ("float32", "float16")


def display_path(path: str) -> str:
    """``path`` as text that can be printed anywhere: bytes of a file name that are not UTF-8
    (kept by Python as surrogates) are shown as ``\\xNN``, as the image-folder messages do."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def image_batches(
    paths: Sequence[str],
    image_size: tuple[int, int],
    batch_size: int,
    positions: Sequence[int] | None = None,
):
    """Streams image files as batches of ``(uint8 images, positions)``, decoded in parallel.

    Each file is decoded as :func:`simclr_tf.data.load_image_folder` decodes it for training
    (RGB, bilinear resizing with antialiasing to ``image_size``, aspect ratio not kept; a test
    checks that the pixels are the same), in the given order. A file that fails to decode is
    left out of the stream, silently: ``positions`` tells which file each image is, and the
    caller reports the missing ones. (``load_image_folder`` reports them from inside its
    stream, which it can do only with a slower pipeline: a small dataset per file.)

    Args:
        paths: the image files.
        image_size: ``(height, width)`` of the output images.
        batch_size: images per batch.
        positions: a number for each file (default ``0..len(paths)-1``), returned with its image.

    Returns:
        A ``tf.data.Dataset`` of ``(uint8 [B, H, W, 3], int64 [B])``.
    """
    import tensorflow as tf

    height, width = image_size
    # As bytes: TensorFlow opens any file name, but takes a str only if it encodes to UTF-8.
    files = tf.constant([os.fsencode(path) for path in paths], dtype=tf.string)
    numbers = tf.constant(
        list(range(len(paths))) if positions is None else list(positions), dtype=tf.int64
    )

    def decode(item: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        raw = tf.io.read_file(files[item])
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
        image = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8), numbers[item]

    dataset = tf.data.Dataset.range(len(paths)).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)


class Progress:
    """A progress line: rewritten in place on a terminal, one line every ``every`` batches else.

    Args:
        total: images to process in all (including those already done).
        done: images already done before this run.
        every: batches between two lines when the stream is not a terminal.
        stream: where to write (default ``sys.stdout``).
    """

    def __init__(self, total: int, done: int = 0, every: int = 20, stream: IO | None = None):
        self.total, self.done, self.every = total, done, max(1, every)
        self.stream = stream or sys.stdout
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start, self.start_done = time.perf_counter(), done
        self.batches, self.last_draw, self.last_line = 0, 0.0, ""
        self.after_first: tuple[float, int] | None = None  # (time, images) once a batch is done

    def update(self, images: int) -> None:
        """Counts ``images`` more and redraws when it is time."""
        self.done += images
        self.batches += 1
        now = time.perf_counter()
        if self.after_first is None:
            self.after_first = (now, self.done)
        if self.interactive and now - self.last_draw >= 0.2:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            self.last_draw = now
        elif not self.interactive and self.batches % self.every == 0:
            self.last_line = self.line()
            print(self.last_line, file=self.stream, flush=True)

    def close(self) -> None:
        """Writes the final line (unless it was the last one written)."""
        if self.interactive:
            print("\r" + self.line(), file=self.stream, flush=True)
        elif self.last_line != self.line():
            print(self.line(), file=self.stream, flush=True)

    @property
    def rate(self) -> float:
        """Images per second in this run."""
        return (self.done - self.start_done) / max(time.perf_counter() - self.start, 1e-9)

    @property
    def steady_rate(self) -> float | None:
        """Images per second after the first batch (which also pays for warming up), if any."""
        if self.after_first is None or self.done == self.after_first[1]:
            return None
        since, done = self.after_first
        return (self.done - done) / max(time.perf_counter() - since, 1e-9)

    def line(self) -> str:
        rate = self.rate
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = f", {left:,.0f} s left" if math.isfinite(left) and self.done < self.total else ""
        share = self.done / self.total if self.total else 1.0
        return f"{self.done:,}/{self.total:,} images ({share:.0%}), {rate:,.0f} images/s{eta}"


def embed_folder(
    encoder: Any,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: str = "float32",
    normalize: bool = True,
    shard_size: int = DEFAULT_SHARD_SIZE,
    overwrite: bool = False,
    image_size: int | tuple[int, int] | None = None,
    progress_every: int = 20,
    verbose: bool = True,
    stream: IO | None = None,
) -> dict[str, Any]:
    """Embeds every image under ``images`` and writes the index folder ``out``.

    Args:
        encoder: the folder of an exported encoder (``RUN_DIR/encoder``), an in-memory Keras
            encoder (float images in [0, 1] -> ``h``) or a
            :class:`~simclr_tf.evaluate.features.FeatureEncoder`.
        images: a folder of images, searched recursively.
        out: the index folder to write.
        batch_size: images per forward pass.
        dtype: "float32" or "float16" (half the disk and memory; similarities change in the
            third or fourth decimal).
        normalize: store unit vectors (cosine search needs them) instead of raw ``h``.
        shard_size: images per unit of resumable work.
        overwrite: replace an existing, different index at ``out``.
        image_size: the encoder's input size; only needed for an in-memory encoder whose input
            shape does not say it.
        progress_every: batches between two progress lines when ``stream`` is not a terminal.
        verbose: print progress and a summary.
        stream: where they go (default ``sys.stdout``).

    Returns:
        The manifest (the content of ``out/manifest.json``).

    Raises:
        FileNotFoundError: if ``encoder`` is not an export, or ``images`` is missing, not a
            folder, or empty.
        FileExistsError: if ``out`` holds something else than an index of this job (another
            index without ``overwrite``, or files that are not an index).
        ValueError: for invalid options, a folder without readable images, or images none of
            which could be decoded.
    """
    from simclr_tf.data import list_image_folder
    from simclr_tf.evaluate.features import FeatureEncoder

    stream = stream or sys.stdout

    def log(line: str) -> None:
        if verbose:
            print(line, file=stream, flush=True)

    _check_options(batch_size, dtype, shard_size)
    target = os.path.abspath(os.path.expanduser(os.fspath(out)))
    feature_encoder = FeatureEncoder(encoder)
    size = _encoder_image_size(feature_encoder, image_size)
    listing = list_image_folder(os.path.abspath(os.path.expanduser(os.fspath(images))))
    job = {
        "format": FORMAT,
        "encoder_fingerprint": feature_encoder.fingerprint(),
        "image_size": list(size),
        "dtype": dtype,
        "normalization": "l2" if normalize else "none",
        "shard_size": shard_size,
        "images_root": os.path.abspath(listing.root),
        "files": len(listing.file_paths),
        "files_digest": _digest(listing.file_paths),
    }
    finished = existing_index(target, job, overwrite)
    if finished is not None:
        log(f"{target} is complete already ({finished['count']:,} images); nothing to do.")
        return finished

    work = work_folder(target)
    prepare_work_folder(work, job, overwrite)
    shard_count = math.ceil(len(listing.file_paths) / shard_size)
    done = {k for k in range(shard_count) if os.path.isfile(shard_path(work, k))}
    todo = [k for k in range(shard_count) if k not in done]
    positions = [i for k in todo for i in range(k * shard_size, _shard_end(k, shard_size, listing))]
    if done:
        log(f"Continuing in {work}: {len(done)} of {shard_count} shards were done before.")
    progress = Progress(
        len(listing.file_paths),
        done=len(listing.file_paths) - len(positions),
        every=progress_every,
        stream=stream if verbose else io.StringIO(),
    )
    started = time.perf_counter()
    try:
        if positions:
            _embed_shards(
                feature_encoder, listing, positions, todo, work, size, job, batch_size, progress
            )
        progress.close()
    except KeyboardInterrupt:
        log(
            f"\nInterrupted: {progress.done:,} of {progress.total:,} images are embedded and "
            f"kept in {work}; run the same command again to continue."
        )
        raise
    manifest = assemble_index(work, listing, job, feature_encoder, shard_count)
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    steady = progress.steady_rate
    manifest["images_per_second"] = {  # of this run's stream
        "all": round(progress.rate, 1),
        "after_first_batch": None if steady is None else round(steady, 1),
    }
    publish_index(work, target, manifest)
    log(
        f"Wrote {manifest['count']:,} embeddings of dimension {manifest['dim']} "
        f"({dtype}, {manifest['normalization']}) to {target}"
        + (
            f"; skipped {manifest['images']['skipped']} file(s)"
            if manifest["images"]["skipped"]
            else ""
        )
    )
    return manifest


# -- the steps ----------------------------------------------------------------------------------


def _check_options(batch_size: int, dtype: str, shard_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; received {batch_size!r}.")
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer; received {shard_size!r}.")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}; received dtype={dtype!r}.")


def _encoder_image_size(encoder, image_size) -> tuple[int, int]:
    if image_size is not None:
        return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if encoder.image_size is None:
        raise ValueError(
            "The encoder does not say which image size it takes; pass image_size=(height, width)."
        )
    return tuple(encoder.image_size)


def _digest(paths: Sequence[str]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        digest.update(os.fsencode(os.path.abspath(path)) + b"\0")
    return digest.hexdigest()[:16]


def _shard_end(shard: int, shard_size: int, listing) -> int:
    return min((shard + 1) * shard_size, len(listing.file_paths))


def _embed_shards(encoder, listing, positions, todo, work, size, job, batch_size, progress):
    """Encodes the files at ``positions`` and writes each shard of ``todo`` once it is whole."""
    from simclr_tf.data import UnreadableImageWarning

    shard_size = job["shard_size"]
    dtype = np.dtype(job["dtype"])
    paths = [listing.file_paths[i] for i in positions]
    pending_rows: list[np.ndarray] = []
    pending_positions: list[np.ndarray] = []
    shards = iter(todo)
    shard = next(shards)

    def flush_until(position: int | None) -> None:
        """Writes every shard that ends at or before ``position`` (None: all the rest)."""
        nonlocal shard, pending_rows, pending_positions
        while shard is not None and (position is None or position >= (shard + 1) * shard_size):
            rows = np.concatenate(pending_rows) if pending_rows else None
            taken = np.concatenate(pending_positions) if pending_positions else np.zeros(0, int)
            inside = taken < (shard + 1) * shard_size
            write_shard(
                shard_path(work, shard),
                taken[inside],
                rows[inside] if rows is not None else np.zeros((0, 0), dtype),
            )
            pending_rows = [rows[~inside]] if rows is not None else []
            pending_positions = [taken[~inside]]
            shard = next(shards, None)

    seen: list[np.ndarray] = []
    for images, batch_positions in image_batches(paths, size, batch_size, positions):
        vectors = encoder(images)
        if job["normalization"] == "l2":
            vectors = unit_rows(vectors)
        batch_positions = batch_positions.numpy()
        pending_rows.append(vectors.astype(dtype))
        pending_positions.append(batch_positions)
        seen.append(batch_positions)
        # The files come in order: every shard whose last file is at or before this batch's
        # last one is complete (its undecodable files never come).
        flush_until(int(batch_positions[-1]) + 1)
        progress.update(len(batch_positions))
    flush_until(None)
    failed = sorted(set(positions) - set(np.concatenate(seen).tolist() if seen else []))
    if failed:
        warnings.warn(
            UnreadableImageWarning(
                f"Skipped {len(failed)} file(s) that have an image signature but could not be "
                "decoded (truncated or corrupt files, or variants TensorFlow does not support): "
                + "; ".join(display_path(listing.file_paths[i]) for i in failed)
            ),
            stacklevel=3,
        )


# -- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simclr_tf.embed",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Embed every image under a folder with an exported encoder: writes embeddings.npy, "
            "paths.csv and manifest.json to --out. Interrupted, the same command continues "
            "where it stopped."
        ),
    )
    parser.add_argument("--encoder", required=True, help="exported encoder folder (RUN/encoder)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="index folder to write")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--dtype", choices=_DTYPES, default="float32", help="of embeddings.npy")
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="store unit vectors (L2-normalised h), as cosine search needs",
    )
    parser.add_argument(
        "--shard_size", type=int, default=DEFAULT_SHARD_SIZE, help="images per resumable shard"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different index at --out (once the new one is complete)",
    )
    parser.add_argument(
        "--log_every",
        type=int,
        default=20,
        help="batches between progress lines when stdout is not a terminal",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Returns the exit code: 0, 2 for a user error (one ``error:`` line on
    stderr; argparse exits with 2 itself for a bad flag), 130 when interrupted."""
    from simclr_tf import cli

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("batch_size", "shard_size", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1; received {getattr(args, name)}.")

    def run() -> int:
        embed_folder(
            args.encoder,
            args.images,
            args.out,
            batch_size=args.batch_size,
            dtype=args.dtype,
            normalize=args.normalize,
            shard_size=args.shard_size,
            overwrite=args.overwrite,
            progress_every=args.log_every,
        )
        return 0

    return cli.run_command(run)


if __name__ == "__main__":
    sys.exit(main())
