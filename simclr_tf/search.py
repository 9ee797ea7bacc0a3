"""Search an index folder (written by :mod:`simclr_tf.embed`) for the images nearest a query.

    python -m simclr_tf.search --index ~/photos-index --query cat.jpg [more.jpg ...] -k 10

prints the ``k`` most similar images of each query with their cosine similarities, and with
``--report search.html`` writes them as a self-contained HTML page with thumbnails. The query
images are embedded by the encoder that built the index (its path is in the manifest; pass
``--encoder`` if it moved): an encoder that is not the one of the index is refused, because its
vectors would not be comparable.

From Python::

    index = EmbeddingIndex.load("~/photos-index")     # embeddings memory-mapped, not loaded
    similarities, rows = index.search(vectors, k=10)  # vectors: [Q, D] from the same encoder
    index.paths[rows[0, 0]]                           # the best match of the first query

**Exact search** (the default) compares each query with every vector, in blocks of bounded
memory (:func:`simclr_tf.similarity.top_k`): a million vectors are searched without loading
them at once, at a cost that grows with the index. **Approximate search**
(:meth:`EmbeddingIndex.approximate`, ``--approximate ivf`` or ``hnsw``) uses the FAISS library
(``pip install faiss-cpu``; optional): an inverted-file index (IVF) visits only the clusters
nearest a query, a graph index (HNSW) walks a neighbour graph; both can miss true neighbours,
so :func:`recall_at_k` measures how many of the exact ones they find. A built approximate index
is saved in the index folder and reused.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simclr_tf import atomic
from simclr_tf.embed import display_path
from simclr_tf.similarity import DEFAULT_BLOCK_BYTES, normalize, top_k

__all__ = [
    "ApproximateIndex",
    "EmbeddingIndex",
    "embed_images",
    "main",
    "recall_at_k",
]

APPROXIMATE_KINDS = ("ivf", "hnsw")


def _faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "Approximate search needs the FAISS library, which is not installed: "
            "pip install faiss-cpu (or leave out --approximate for exact search)."
        ) from error
    return faiss


@dataclass
class EmbeddingIndex:
    """An index folder in memory: the embeddings (memory-mapped) and what each row is.

    Attributes:
        embeddings: ``[N, D]`` float32 or float16, unit rows when ``normalized``.
        paths: the image file of each row.
        labels: int64 ``[N]`` class of each row (when the embedded folder had class
            subfolders), else None.
        manifest: the folder's ``manifest.json``.
        folder: the index folder.
    """

    embeddings: np.ndarray
    paths: list[str]
    labels: np.ndarray | None
    manifest: dict[str, Any]
    folder: str

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = True) -> EmbeddingIndex:
        """Opens an index folder.

        Args:
            folder: a folder written by :func:`simclr_tf.embed.embed_folder`.
            mmap: memory-map ``embeddings.npy`` (read on demand) instead of loading it.

        Raises:
            FileNotFoundError: if ``folder`` is not a complete index.
            ValueError: if its files disagree with its manifest.
        """
        from simclr_tf.index_folder import read_manifest

        folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        manifest = read_manifest(folder)
        files = manifest["files"]
        embeddings = np.load(
            os.path.join(folder, files["embeddings"]), mmap_mode="r" if mmap else None
        )
        table = os.path.join(folder, files["paths"])
        with open(table, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            rows = list(csv.DictReader(handle))
        expected = (manifest["count"], manifest["dim"])
        if embeddings.shape != expected or len(rows) != manifest["count"]:
            raise ValueError(
                f"The index at {folder!r} is inconsistent: its manifest says {expected}, "
                f"embeddings.npy is {embeddings.shape} and paths.csv has {len(rows)} rows. "
                "Embed the folder again."
            )
        paths = [row["path"] for row in rows]
        labels = (
            np.array([int(row["label"]) for row in rows]) if rows and "label" in rows[0] else None
        )
        return cls(embeddings, paths, labels, manifest, folder)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def normalized(self) -> bool:
        return self.manifest.get("normalization") == "l2"

    def __len__(self) -> int:
        return len(self.embeddings)

    def search(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        exclude: np.ndarray | None = None,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine search: the ``k`` rows most similar to each of ``vectors``.

        Args:
            vectors: ``[Q, D]`` query representations from the index's encoder.
            k: neighbours per query (capped at the index size).
            exclude: optional ``[Q]`` row per query to leave out (-1: none), e.g. the query's
                own row when the queries are rows of the index.
            block_bytes: memory for one block of similarities.

        Returns:
            ``(similarities, rows)``: float32 and int64 ``[Q, k]``, most similar first.

        Raises:
            ValueError: if the vectors' width is not the index's.
        """
        vectors = self._check_queries(vectors)
        return top_k(
            normalize(vectors),
            self.embeddings,
            min(k, len(self)),
            exclude=exclude,
            normalized=self.normalized,
            block_bytes=block_bytes,
        )

    def approximate(
        self, kind: str = "ivf", *, cache: bool = True, **options: Any
    ) -> ApproximateIndex:
        """An approximate (FAISS) index of the same vectors, built once and kept beside them.

        Args:
            kind: "ivf" or "hnsw" (see :class:`ApproximateIndex`).
            cache: save the built index in the index folder and load it next time.
            **options: for :meth:`ApproximateIndex.build`.

        Raises:
            ImportError: if FAISS is not installed.
        """
        path = os.path.join(self.folder, ApproximateIndex.file_name(kind, options))
        if cache and os.path.isfile(path):
            return ApproximateIndex.read(path, kind)
        built = ApproximateIndex.build(self.embeddings, kind, **options)
        if cache:
            try:
                built.write(path)
            except OSError:  # a read-only index folder: rebuild next time
                pass
        return built

    def _check_queries(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None]
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(
                f"The queries have shape {vectors.shape} but the index at {self.folder!r} holds "
                f"vectors of width {self.dim}: embed the queries with the index's encoder "
                f"({self.manifest['encoder'].get('path')})."
            )
        return vectors


class ApproximateIndex:
    """A FAISS index for inner-product (cosine, on unit vectors) search.

    Kinds:
        "ivf": ``IndexIVFFlat``: k-means cells (``nlist``, default ``sqrt(N)``, trained on a
            sample of 64 vectors per cell), a query visits the ``nprobe`` nearest cells (default
            ``nlist / 16``, at least 8). Quick to build; memory as the vectors.
        "hnsw": ``IndexHNSWFlat``: a navigable small-world graph with ``m`` links per vector
            (default 32), searched with a beam of ``ef_search`` (default 64). Slow to build,
            fast to query; memory as the vectors plus the graph.
    """

    def __init__(self, index: Any, kind: str):
        self.index, self.kind = index, kind

    @staticmethod
    def file_name(kind: str, options: dict[str, Any]) -> str:
        settings = "".join(f"-{name}{value}" for name, value in sorted(options.items()))
        return f"approximate-{kind}{settings}.faiss"

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: str = "ivf",
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        m: int = 32,
        ef_search: int = 64,
        block_rows: int = 65536,
        seed: int = 0,
    ) -> ApproximateIndex:
        """Builds an index of ``vectors`` (rows are normalised first, in blocks).

        Raises:
            ImportError: if FAISS is not installed.
            ValueError: for an unknown ``kind``.
        """
        if kind not in APPROXIMATE_KINDS:
            raise ValueError(
                f"kind must be one of {', '.join(APPROXIMATE_KINDS)}; received kind={kind!r}."
            )
        faiss = _faiss()
        count, dim = vectors.shape
        if kind == "ivf":
            nlist = nlist or max(1, min(count // 39, int(np.sqrt(count))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # k-means on a sample (FAISS asks for at least 39 vectors per cell).
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(count, min(count, 64 * nlist), replace=False))
            index.cp.seed = seed
            index.train(normalize(vectors[sample]))
            index.nprobe = nprobe or min(nlist, max(8, nlist // 16))
        else:
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        for start in range(0, count, block_rows):
            index.add(normalize(vectors[start : start + block_rows]))
        return cls(index, kind)

    @classmethod
    def read(cls, path: str, kind: str) -> ApproximateIndex:
        return cls(_faiss().read_index(path), kind)

    def write(self, path: str) -> None:
        """Saves the index at ``path`` atomically."""
        with atomic.replacing(path) as partial:
            _faiss().write_index(self.index, partial)

    def search(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Approximate ``(similarities, rows)``, float32 and int64 ``[Q, k]`` (-1: not found)."""
        similarities, rows = self.index.search(normalize(vectors), min(k, self.index.ntotal))
        return similarities.astype(np.float32), rows.astype(np.int64)


def recall_at_k(approximate_rows: np.ndarray, exact_rows: np.ndarray) -> float:
    """The share of the exact ``k`` nearest neighbours that an approximate search found.

    Args:
        approximate_rows: int ``[Q, k]`` rows from the approximate search.
        exact_rows: int ``[Q, k]`` rows from the exact search.

    Returns:
        ``mean over queries of |approximate ∩ exact| / k``, in [0, 1].
    """
    found = [
        len(set(a[a >= 0].tolist()) & set(e.tolist())) / len(e)
        for a, e in zip(approximate_rows, exact_rows, strict=True)
    ]
    return float(np.mean(found))


# -- queries: images to vectors with the index's encoder ----------------------------------------


def index_encoder(index: EmbeddingIndex, encoder: str | os.PathLike | None = None):
    """The :class:`~simclr_tf.evaluate.features.FeatureEncoder` that built ``index``.

    Args:
        index: the index.
        encoder: the export to use instead of the path in the manifest (when it moved).

    Raises:
        FileNotFoundError: if the encoder is gone.
        ValueError: if the encoder is not the one that built the index (other fingerprint).
    """
    from simclr_tf.evaluate.features import FeatureEncoder

    recorded = index.manifest["encoder"]
    path = encoder if encoder is not None else recorded.get("path")
    if path is None:
        raise ValueError(
            f"The index at {index.folder!r} was built with an in-memory encoder: pass the "
            "folder of its export (--encoder)."
        )
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"The encoder of the index, {os.fspath(path)!r}, does not exist (any more): pass "
            "--encoder with the folder it was moved to."
        )
    loaded = FeatureEncoder(os.fspath(path))
    fingerprint = loaded.fingerprint()
    if fingerprint != recorded.get("fingerprint"):
        raise ValueError(
            f"The encoder {loaded.path!r} (fingerprint {fingerprint}) is not the one that built "
            f"the index at {index.folder!r} ({recorded.get('path')!r}, fingerprint "
            f"{recorded.get('fingerprint')}): their vectors are not comparable. Query with the "
            "index's encoder, or embed the images again with this one."
        )
    return loaded


def embed_images(
    encoder, paths: Sequence[str], image_size: tuple[int, int], normalized: bool
) -> np.ndarray:
    """Embeds image files as :mod:`simclr_tf.embed` does (same reading, resizing, scaling).

    Raises:
        ValueError: naming the files that are not readable images.
    """
    import warnings

    from simclr_tf.data import UnreadableImageWarning
    from simclr_tf.embed import image_batches

    vectors: list[np.ndarray] = []
    found: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImageWarning)  # reported below, as an error
        for images, positions in image_batches(list(paths), image_size, 64):
            vectors.append(encoder(images))
            found.extend(positions.numpy().tolist())
    missing = sorted(set(range(len(paths))) - set(found))
    if missing:
        names = ", ".join(repr(display_path(paths[i])) for i in missing)
        raise ValueError(
            f"Not a readable image (PNG, JPEG, BMP, GIF or WebP): {names}. Pass image files."
        )
    result = np.concatenate(vectors)
    return normalize(result) if normalized else result


def _query_files(queries: Sequence[str]) -> list[str]:
    """Image files named on the command line; a folder stands for the images in it."""
    from simclr_tf.data import list_image_folder

    files: list[str] = []
    for query in queries:
        query = os.path.expanduser(query)
        if os.path.isdir(query):
            files.extend(list_image_folder(os.path.abspath(query), labeled=False).file_paths)
        elif os.path.isfile(query):
            files.append(os.path.abspath(query))
        else:
            raise FileNotFoundError(f"query={query!r} does not exist; pass image files or folders.")
    return files


# -- command line -------------------------------------------------------------------------------


def index_parser(
    prog: str, description: str, k_help: str, approximate_help: str
) -> argparse.ArgumentParser:
    """A parser with the flags ``search`` and ``duplicates`` share: --index, -k, --approximate,
    --report (checked by :func:`check_report_and_faiss`)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--index", required=True, help="index folder (python -m simclr_tf.embed)")
    parser.add_argument("-k", type=int, default=10, help=k_help)
    parser.add_argument(
        "--approximate", choices=APPROXIMATE_KINDS, default=None, help=approximate_help
    )
    parser.add_argument("--report", default=None, help="write an HTML page with thumbnails here")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = index_parser(
        "python -m simclr_tf.search",
        "Find the images of an index most similar to query images (cosine).",
        k_help="neighbours per query",
        approximate_help="approximate search with FAISS (built once, then kept in the index)",
    )
    parser.add_argument(
        "--query", required=True, nargs="+", help="query image file(s), or folders of them"
    )
    parser.add_argument(
        "--encoder", default=None, help="the index's encoder export, if it moved since"
    )
    return parser


def check_report_and_faiss(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The flags ``search`` and ``duplicates`` share: -k, --report, --approximate."""
    if args.k < 1:
        parser.error(f"-k must be at least 1; received -k {args.k}.")
    if args.report is not None and not args.report.endswith((".html", ".htm")):
        parser.error(f"--report must name an .html file; received {args.report!r}.")
    if args.approximate and importlib.util.find_spec("faiss") is None:
        parser.error(
            "--approximate needs the FAISS library, which is not installed: pip install "
            "faiss-cpu (or leave out --approximate for exact search)."
        )


def _search(args: argparse.Namespace) -> int:
    index = EmbeddingIndex.load(args.index)
    query_files = _query_files(args.query)
    encoder = index_encoder(index, args.encoder)
    vectors = embed_images(encoder, query_files, encoder.image_size, normalized=True)
    if args.approximate:
        similarities, rows = index.approximate(args.approximate).search(vectors, args.k)
    else:
        similarities, rows = index.search(vectors, args.k)
    results = []
    for query, scores, found in zip(query_files, similarities, rows, strict=True):
        matches = [(index.paths[r], float(s)) for s, r in zip(scores, found, strict=True) if r >= 0]
        results.append((query, matches))
        print(f"query: {display_path(query)}")
        for rank, (path, score) in enumerate(matches, start=1):
            print(f"  {rank:>3}  {score:.4f}  {display_path(path)}")
    if args.report:
        from simclr_tf import report

        method = f"approximate ({args.approximate})" if args.approximate else "exact"
        report.write_search_report(
            args.report,
            results,
            title=f"Search in {index.folder}",
            note=f"{method} cosine search, "
            f"{len(index):,} images, encoder {index.manifest['encoder'].get('path')}",
        )
        print(f"Report written to {os.path.abspath(args.report)}")
    return 0


def run_command_line(parser: argparse.ArgumentParser, argv, body) -> int:
    """Parses ``argv`` for ``search`` or ``duplicates`` and runs ``body(args)``.

    Returns:
        The exit code: 0, 2 for a user error (one ``error:`` line on stderr; argparse exits
        with 2 itself for a bad flag).
    """
    from simclr_tf import cli

    args = parser.parse_args(argv)
    check_report_and_faiss(parser, args)
    return cli.run_command(lambda: body(args))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code (see :func:`run_command_line`)."""
    return run_command_line(build_parser(), argv, _search)


if __name__ == "__main__":
    sys.exit(main())
