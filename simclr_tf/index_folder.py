"""The index folder on disk: its files, its manifest, and the resumable work that builds it.

:func:`simclr_tf.embed.embed_folder` writes an index folder (the files are listed in
:mod:`simclr_tf.embed`); this module is how it is stored. The work happens in a hidden folder
beside the target, ``.<name>.partial/`` (:func:`work_folder`), that holds ``job.json`` (what is
being embedded: encoder, images, options; :func:`prepare_work_folder`) and one
``shard-NNNNNN.npz`` per finished shard (:func:`write_shard`). Every file is written atomically,
so a run stopped at any moment leaves only whole shards, and the same job continues from them.
When every shard is done, :func:`assemble_index` joins them into ``embeddings.npy`` and the
tables, and :func:`publish_index` writes the manifest, removes the shards and puts the folder
in place with one rename: a reader never sees half an index.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from simclr_tf import atomic

if TYPE_CHECKING:
    from simclr_tf.data.image_folder import ImageFolder
    from simclr_tf.evaluate.features import FeatureEncoder

__all__ = [
    "EMBEDDINGS_FILE",
    "FORMAT",
    "JOB_FILE",
    "MANIFEST_FILE",
    "PARQUET_FILE",
    "PATHS_FILE",
    "SKIPPED_FILE",
    "assemble_index",
    "existing_index",
    "prepare_work_folder",
    "publish_index",
    "read_manifest",
    "read_shard",
    "shard_path",
    "work_folder",
    "write_shard",
]

MANIFEST_FILE = "manifest.json"
EMBEDDINGS_FILE = "embeddings.npy"
PATHS_FILE = "paths.csv"
PARQUET_FILE = "paths.parquet"
SKIPPED_FILE = "skipped.csv"
FORMAT = "simclr_tf embeddings 1"
JOB_FILE = "job.json"
_SHARD_PREFIX = "shard-"


def work_folder(target: str) -> str:
    """The hidden folder beside the index folder ``target`` where its work happens.

    Args:
        target: the absolute path of the index folder.

    Returns:
        ``.<name>.partial`` in the folder that holds ``target``.
    """
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.partial")


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Reads an index folder's ``manifest.json``.

    Raises:
        FileNotFoundError: if ``folder`` holds no complete index (with the reason).
    """
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(path):
        if os.path.isdir(work_folder(folder)):
            reason = "its embedding was interrupted; run the embed command again to finish it"
        elif not os.path.exists(folder):
            reason = "it does not exist"
        else:
            reason = f"it has no {MANIFEST_FILE}"
        raise FileNotFoundError(
            f"index={folder!r} is not an index folder ({reason}). Make one with "
            "python -m simclr_tf.embed --encoder RUN/encoder --images FOLDER --out INDEX."
        )
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    if manifest.get("format") != FORMAT:
        raise FileNotFoundError(
            f"{path} is not an index manifest of this version (format "
            f"{manifest.get('format')!r}, expected {FORMAT!r}); embed the folder again."
        )
    return manifest


def existing_index(target: str, job: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The manifest of a finished index of this very job at ``target``, or None to build it.

    Args:
        target: the absolute path of the index folder to write.
        job: what is being embedded (encoder fingerprint, images, options), as stored in the
            manifest's ``job``.
        overwrite: whether another index at ``target`` may be replaced.

    Returns:
        The manifest when ``target`` already holds the index of ``job``; ``None`` when it is
        missing, empty, or another index that may be replaced.

    Raises:
        FileExistsError: if ``target`` is a file, a folder that is not an index, or another
            index and ``overwrite`` is false.
    """
    if not os.path.exists(target):
        return None
    if not os.path.isdir(target):
        raise FileExistsError(f"out={target!r} is a file; pass a folder for the index.")
    manifest_path = os.path.join(target, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        if os.listdir(target):
            raise FileExistsError(
                f"out={target!r} exists and is not an index folder (it has no {MANIFEST_FILE}); "
                "choose a new or empty folder, so that nothing of yours is replaced."
            )
        return None
    manifest = read_manifest(target)
    if manifest.get("job") == job:
        return manifest
    if not overwrite:
        differences = [
            f"{name} {manifest.get('job', {}).get(name)!r} -> {value!r}"
            for name, value in job.items()
            if manifest.get("job", {}).get(name) != value
        ]
        raise FileExistsError(
            f"out={target!r} holds another index ({'; '.join(differences)}). Pass --overwrite "
            "(overwrite=True) to replace it once the new one is complete, or choose another "
            "folder."
        )
    return None


def prepare_work_folder(work: str, job: dict[str, Any], overwrite: bool) -> None:
    """Makes ``work`` ready for ``job``: kept as it is (with its finished shards) when it holds
    the same job, else emptied and given ``job.json``.

    Args:
        work: the work folder (:func:`work_folder`).
        job: what is being embedded, as :func:`existing_index` takes it.
        overwrite: whether the unfinished work of another job may be discarded.

    Raises:
        FileExistsError: if ``work`` holds another job's work and ``overwrite`` is false.
    """
    job_path = os.path.join(work, JOB_FILE)
    if os.path.isdir(work):
        previous = None
        if os.path.isfile(job_path):
            with open(job_path, encoding="utf-8") as handle:
                previous = json.load(handle)
        if previous == job:
            return
        if previous is not None and not overwrite:
            raise FileExistsError(
                f"{work} holds the unfinished work of another embedding job (other encoder, "
                "images or options). Run that job again to finish it, or pass --overwrite "
                "(overwrite=True) to discard it."
            )
        shutil.rmtree(work)
    os.makedirs(work)
    atomic.write_json(job_path, job)


def shard_path(work: str, shard: int) -> str:
    """The file of shard number ``shard`` (counted from 0) in the work folder ``work``."""
    return os.path.join(work, f"{_SHARD_PREFIX}{shard:06d}.npz")


def write_shard(path: str, positions: np.ndarray, rows: np.ndarray) -> None:
    """Writes one finished shard, atomically.

    Args:
        path: its file (:func:`shard_path`).
        positions: int ``[n]``, the position in the listing of each embedded file.
        rows: ``[n, D]``, the embedding of each (``[0, 0]`` when no file of the shard could be
            decoded).
    """
    with atomic.replacing(path) as partial, open(partial, "wb") as handle:
        np.savez(handle, positions=positions.astype(np.int64), embeddings=rows)


def read_shard(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(positions, rows)`` that :func:`write_shard` wrote to ``path``."""
    with np.load(path) as shard:
        return shard["positions"], shard["embeddings"]


def assemble_index(
    work: str,
    listing: ImageFolder,
    job: dict[str, Any],
    encoder: FeatureEncoder,
    shard_count: int,
) -> dict[str, Any]:
    """Joins the shards into ``embeddings.npy`` and writes the tables, all in ``work``.

    Args:
        work: the work folder, holding every shard of the job.
        listing: the image files embedded (rows keep their order).
        job: what was embedded, as :func:`existing_index` takes it.
        encoder: the encoder that embedded them (its path and metadata go in the manifest).
        shard_count: the number of shards.

    Returns:
        The manifest's body (without the run's timing).

    Raises:
        ValueError: if no file could be decoded; the work folder is then removed.
    """
    shards = [shard_path(work, k) for k in range(shard_count)]
    count, dim = 0, None
    for path in shards:
        positions, rows = read_shard(path)
        count += len(positions)
        if len(positions):
            dim = rows.shape[1]
    if count == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ValueError(
            f"None of the {len(listing.file_paths)} image file(s) under {listing.root} could be "
            "decoded (see the warnings above); nothing was written."
        )
    kept = np.zeros(len(listing.file_paths), dtype=bool)
    with atomic.replacing(os.path.join(work, EMBEDDINGS_FILE)) as partial:
        embeddings = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.dtype(job["dtype"]), shape=(count, dim)
        )
        row = 0
        for path in shards:
            positions, rows = read_shard(path)
            embeddings[row : row + len(positions)] = rows
            kept[positions] = True
            row += len(positions)
        embeddings.flush()
        del embeddings
    order = np.flatnonzero(kept)
    labels = listing.labels
    table = {"row": np.arange(count), "path": [listing.file_paths[i] for i in order]}
    if labels is not None:
        table["label"] = [labels[i] for i in order]
    _write_csv(os.path.join(work, PATHS_FILE), table)
    files = {"embeddings": EMBEDDINGS_FILE, "paths": PATHS_FILE}
    if _write_parquet(os.path.join(work, PARQUET_FILE), table):
        files["parquet"] = PARQUET_FILE
    failed = [(listing.file_paths[i], "could not be decoded") for i in np.flatnonzero(~kept)]
    skipped = list(listing.skipped) + failed
    if skipped:
        _write_csv(
            os.path.join(work, SKIPPED_FILE),
            {"path": [p for p, _ in skipped], "reason": [r for _, r in skipped]},
        )
        files["skipped"] = SKIPPED_FILE
    return {
        "format": FORMAT,
        "count": count,
        "dim": int(dim),
        "dtype": job["dtype"],
        "normalization": job["normalization"],
        "encoder": {
            "path": encoder.path,
            "fingerprint": job["encoder_fingerprint"],
            "metadata": encoder.metadata,
        },
        "images": {
            "root": job["images_root"],
            "listed": len(listing.file_paths),
            "skipped": len(skipped),
            "labeled": labels is not None,
            "class_names": list(listing.class_names),
        },
        "files": files,
        "job": job,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write_csv(path: str, columns: dict[str, Sequence]) -> None:
    """A CSV table; file names that are not UTF-8 keep their bytes (``surrogateescape``)."""
    names = list(columns)
    with (
        atomic.replacing(path) as partial,
        open(partial, "w", newline="", encoding="utf-8", errors="surrogateescape") as f,
    ):
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(zip(*(columns[name] for name in names), strict=True))


def _write_parquet(path: str, columns: dict[str, Sequence]) -> bool:
    """Writes the table as Parquet when pandas and pyarrow are installed; says whether it did."""
    if importlib.util.find_spec("pandas") is None or importlib.util.find_spec("pyarrow") is None:
        return False
    import pandas as pd

    try:
        with atomic.replacing(path) as partial:
            pd.DataFrame({name: list(values) for name, values in columns.items()}).to_parquet(
                partial, index=False
            )
    except UnicodeEncodeError:  # a file name that is not UTF-8: Parquet strings must be
        return False
    return True


def publish_index(work: str, target: str, manifest: dict[str, Any]) -> None:
    """Writes ``manifest`` into the assembled work folder, removes the shards and the job file,
    and puts the folder in place of ``target`` in one rename (an old index there is replaced).

    Args:
        work: the work folder, after :func:`assemble_index`.
        target: the index folder.
        manifest: the content of ``manifest.json``.
    """
    atomic.write_json(os.path.join(work, MANIFEST_FILE), manifest)
    for name in os.listdir(work):
        if name.startswith(_SHARD_PREFIX) or name == JOB_FILE:
            os.remove(os.path.join(work, name))
    atomic.replace_folder(work, target)
