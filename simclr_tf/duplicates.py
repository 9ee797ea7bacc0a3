"""Near-duplicate images in an index folder: groups of images above a cosine threshold.

    python -m simclr_tf.duplicates --index ~/photos-index --threshold 0.99 \\
        --json duplicates.json --report duplicates.html

Two images are near-duplicates when the cosine similarity of their embeddings is at least the
threshold; a **group** is a connected component of that relation (if A is like B and B like C,
A, B and C are one group, even when A and C are further apart: ``min_similarity`` tells the
weakest link). Every pair is compared exactly, in blocks of bounded memory
(:func:`simclr_tf.similarity.pairs_above`); the work grows with the square of the number of
images. For large collections, ``approximate="ivf"`` (``--approximate ivf``) only compares each
image with its ``k`` approximate nearest neighbours (FAISS), which finds the groups of up to
``k + 1`` images directly and larger ones through chains.

A SimCLR encoder is trained to map two augmentations of one image (crops, flips, colour
changes) to nearby points, which is what near-duplicates are; the right threshold depends on
the encoder and on what counts as a copy: ``benchmarks/embed_search.py`` measures precision and
recall on planted copies (:data:`DEFAULT_THRESHOLD` comes from it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from simclr_tf import atomic
from simclr_tf.embed import display_path
from simclr_tf.similarity import DEFAULT_BLOCK_BYTES, normalize, pairs_above

__all__ = ["DEFAULT_THRESHOLD", "MAX_PAIRS", "find_duplicates", "main"]

MAX_PAIRS = 20_000_000
# Measured on CIFAR-10 with planted copies (benchmarks/embed_search.py): at 0.99 a short-trained
# cpu-preset encoder finds all the JPEG-recompressed and 99 % of the colour-shifted copies, and
# about half the pairs it reports are planted ones; at 0.95, one in a hundred. Flipped and
# cropped copies need a better-trained encoder.
DEFAULT_THRESHOLD = 0.99


def find_duplicates(
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    approximate: str | None = None,
    k: int = 10,
    normalized: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    approximate_index: Any = None,
) -> list[dict[str, Any]]:
    """Groups the rows of ``vectors`` that are near-duplicates of each other.

    Args:
        vectors: ``[N, D]`` embeddings (a memory-mapped array is read in blocks).
        threshold: the smallest cosine similarity of a near-duplicate pair, in [-1, 1].
        approximate: None for the exact comparison of all pairs, or "ivf"/"hnsw" to compare
            each row with its ``k`` approximate neighbours (needs FAISS).
        k: neighbours per row with ``approximate``.
        normalized: the rows are unit vectors already.
        block_bytes: memory for one block of similarities (exact comparison).
        approximate_index: an :class:`~simclr_tf.search.ApproximateIndex` of ``vectors`` to
            use instead of building one.

    Returns:
        One dict per group of two or more rows, largest group first (then by first row):
        ``rows`` (sorted int list), ``size``, ``min_similarity`` and ``max_similarity`` (over
        the pairs above the threshold that connect the group).

    Raises:
        ValueError: for a threshold outside [-1, 1], or more than :data:`MAX_PAIRS` pairs above
            it (a threshold too low for near-duplicates).
        ImportError: if ``approximate`` is set and FAISS is not installed.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not -1.0 <= threshold <= 1.0:
        raise ValueError(
            f"threshold is a cosine similarity and must be in [-1, 1]; received {threshold!r}."
        )
    if approximate is None and approximate_index is None:
        blocks = pairs_above(vectors, threshold, normalized=normalized, block_bytes=block_bytes)
    else:
        blocks = _approximate_pairs(vectors, threshold, approximate, k, approximate_index)
    firsts, seconds, scores, total = [], [], [], 0
    for first, second, similarity in blocks:
        total += len(first)
        if total > MAX_PAIRS:
            raise ValueError(
                f"More than {MAX_PAIRS:,} pairs have a similarity of at least {threshold}: that "
                "is not near-duplication any more. Raise the threshold (e.g. 0.99)."
            )
        firsts.append(first)
        seconds.append(second)
        scores.append(similarity)
    if not total:
        return []
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    similarity = np.concatenate(scores).astype(np.float64)
    count = len(vectors)
    graph = coo_matrix((np.ones(len(first), np.int8), (first, second)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component, minlength=component.max() + 1)
    low = np.full(len(sizes), np.inf)
    high = np.full(len(sizes), -np.inf)
    np.minimum.at(low, component[first], similarity)
    np.maximum.at(high, component[first], similarity)
    groups = []
    for label in np.flatnonzero(sizes >= 2):
        rows = np.flatnonzero(component == label).tolist()
        groups.append(
            {
                "rows": rows,
                "size": len(rows),
                "min_similarity": round(float(low[label]), 6),
                "max_similarity": round(float(high[label]), 6),
            }
        )
    groups.sort(key=lambda group: (-group["size"], group["rows"][0]))
    return groups


def _approximate_pairs(vectors, threshold, kind, k, index):
    from simclr_tf.search import ApproximateIndex

    index = index or ApproximateIndex.build(vectors, kind or "ivf")
    block_rows = 16384
    for start in range(0, len(vectors), block_rows):
        queries = normalize(vectors[start : start + block_rows])
        similarity, rows = index.search(queries, k + 1)
        first = np.broadcast_to(np.arange(start, start + len(queries))[:, None], rows.shape)
        keep = (rows >= 0) & (rows != first) & (similarity >= threshold)
        low, high = np.minimum(first[keep], rows[keep]), np.maximum(first[keep], rows[keep])
        yield low, high, similarity[keep]


# -- command line -------------------------------------------------------------------------------


def _cosine(text: str) -> float:
    value = float(text)
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a cosine similarity is in [-1, 1]; received {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from simclr_tf.search import index_parser

    parser = index_parser(
        "python -m simclr_tf.duplicates",
        "Find groups of near-duplicate images in an index (cosine >= threshold).",
        k_help="neighbours per image with --approximate",
        approximate_help="compare each image with its -k approximate neighbours only (FAISS)",
    )
    parser.add_argument(
        "--threshold", type=_cosine, default=DEFAULT_THRESHOLD, help="smallest cosine similarity"
    )
    parser.add_argument("--json", default=None, help="write every group to this JSON file")
    parser.add_argument("--show", type=int, default=20, help="groups to print")
    return parser


def _find(args: argparse.Namespace) -> int:
    from simclr_tf.search import EmbeddingIndex

    index = EmbeddingIndex.load(args.index)
    approximate_index = index.approximate(args.approximate) if args.approximate else None
    groups = find_duplicates(
        index.embeddings,
        args.threshold,
        k=args.k,
        normalized=index.normalized,
        approximate_index=approximate_index,
    )
    for group in groups:
        group["paths"] = [index.paths[row] for row in group["rows"]]
    in_groups = sum(group["size"] for group in groups)
    method = f"approximate ({args.approximate}, k={args.k})" if args.approximate else "exact"
    print(
        f"{len(groups)} group(s) of near-duplicates, {in_groups} of {len(index):,} images, at "
        f"cosine similarity >= {args.threshold} ({method})"
    )
    for number, group in enumerate(groups[: args.show], start=1):
        print(
            f"group {number}: {group['size']} images, similarity {group['min_similarity']:.3f}"
            f" to {group['max_similarity']:.3f}"
        )
        for path in group["paths"]:
            print(f"    {display_path(path)}")
    if len(groups) > args.show:
        print(f"... and {len(groups) - args.show} more (--show N, --json FILE)")
    if args.json:
        atomic.write_json(
            args.json,
            {
                "index": index.folder,
                "threshold": args.threshold,
                "method": method,
                "images": len(index),
                "groups": groups,
            },
        )
        print(f"Groups written to {args.json}")
    if args.report:
        from simclr_tf import report

        note = (
            f"{len(groups)} groups at cosine similarity >= {args.threshold} ({method}) among "
            f"{len(index):,} images of {index.folder}"
        )
        path = report.write_duplicates_report(args.report, groups, note=note)
        print(f"Report written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code (see :func:`simclr_tf.search.run_command_line`)."""
    from simclr_tf.search import run_command_line

    return run_command_line(build_parser(), argv, _find)


if __name__ == "__main__":
    sys.exit(main())
