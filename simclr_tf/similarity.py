"""Cosine similarity between sets of vectors in bounded memory: top-k neighbours, close pairs.

Everything here is exact and plain NumPy. The similarity of every query with every database
vector is computed, as matrix products of blocks: a block of at most ``block_bytes`` of
float32 similarities (64 MiB by default) and what sorting it takes (about three times that in
all) are what is in memory besides the inputs and the results, so a database of a million
vectors, even a memory-mapped ``.npy`` file read in slices (``np.load(path, mmap_mode="r")``),
is searched without loading it whole.

* :func:`top_k`: the ``k`` most similar database rows of each query.
* :func:`pairs_above`: every pair of rows of one set whose similarity reaches a threshold.

Vectors are compared by cosine similarity: rows are scaled to unit length (a zero row stays
zero and is similar to nothing) before the products, unless they are known to be unit already
(``normalized=True``). float16 inputs are computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["DEFAULT_BLOCK_BYTES", "normalize", "pairs_above", "top_k"]

DEFAULT_BLOCK_BYTES = 64 * 2**20
_MAX_QUERY_ROWS = 4096


def normalize(vectors: np.ndarray, epsilon: float = 1e-12) -> np.ndarray:
    """Rows of ``vectors`` scaled to unit L2 norm, as float32 (zero rows stay zero).

    ``x / max(|x|, sqrt(epsilon))``, the NumPy twin of :func:`simclr_tf.losses.l2_normalize`
    (this module stays free of TensorFlow); the evaluation uses it as
    ``simclr_tf.evaluate.l2_normalize_rows``.

    Args:
        vectors: ``[N, D]``, any float dtype.
        epsilon: floor of the squared norm.

    Returns:
        float32 ``[N, D]``.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, math.sqrt(epsilon))  # a Python float keeps float32


def _check_matrix(name: str, value: np.ndarray, dim: int | None = None) -> None:
    if np.ndim(value) != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D]; received shape {np.shape(value)}.")
    if dim is not None and value.shape[1] != dim:
        raise ValueError(
            f"{name} has vectors of width {value.shape[1]} but the other side has width {dim}: "
            "both must come from the same encoder."
        )


def _blocks(
    queries: np.ndarray,
    database: np.ndarray,
    normalized: bool,
    block_bytes: int,
    upper_only: bool = False,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yields ``(query_start, database_start, similarities)`` blocks covering all pairs.

    ``upper_only`` (when ``queries`` is ``database``) skips blocks entirely below the diagonal.
    """
    query_rows = max(1, min(_MAX_QUERY_ROWS, len(queries)))
    database_rows = max(1, block_bytes // (4 * query_rows))
    for query_start in range(0, len(queries), query_rows):
        query_block = queries[query_start : query_start + query_rows]
        query_block = np.asarray(query_block, np.float32) if normalized else normalize(query_block)
        first = query_start if upper_only else 0
        for database_start in range(first, len(database), database_rows):
            block = database[database_start : database_start + database_rows]
            block = np.asarray(block, np.float32) if normalized else normalize(block)
            yield query_start, database_start, query_block @ block.T


def top_k(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    normalized: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` database rows most similar to each query, by cosine similarity.

    Args:
        queries: ``[Q, D]``.
        database: ``[N, D]``; a memory-mapped array is read one block of rows at a time.
        k: neighbours per query (> 0). With fewer than ``k`` candidates the missing places
            have index -1 and similarity ``-inf``.
        exclude: optional int ``[Q]``: a database row each query must not return (its own
            row when the queries are the database, ``np.arange(Q)``); -1 excludes nothing.
        normalized: the rows of both are unit vectors already (skips the scaling).
        block_bytes: memory for one block of similarities.

    Returns:
        ``(similarities, indices)``: float32 ``[Q, k]`` and int64 ``[Q, k]``, most similar
        first; equal similarities are ordered by database row.

    Raises:
        ValueError: for arrays that are not ``[*, D]`` with the same ``D``, ``k < 1``, or an
            ``exclude`` of another length.
    """
    _check_matrix("queries", queries)
    _check_matrix("database", database, dim=queries.shape[1])
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer; received k={k!r}.")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.shape != (len(queries),):
            raise ValueError(
                f"exclude must hold one row index per query, shape ({len(queries)},); "
                f"received shape {exclude.shape}."
            )
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_indices = np.full((len(queries), k), -1, dtype=np.int64)
    for query_start, database_start, block in _blocks(queries, database, normalized, block_bytes):
        rows = slice(query_start, query_start + len(block))
        if exclude is not None:
            own = exclude[rows] - database_start
            inside = (own >= 0) & (own < block.shape[1])
            block[np.flatnonzero(inside), own[inside]] = -np.inf
        # The block's own k best (the block is ours: negate it in place to sort descending),
        # then merged with the k best so far: no copy of the block is made.
        np.negative(block, out=block)
        if block.shape[1] > k:
            keep = np.argpartition(block, k - 1, axis=1)[:, :k]
            block = np.take_along_axis(block, keep, axis=1)
        else:
            keep = np.broadcast_to(np.arange(block.shape[1]), block.shape)
        scores = np.concatenate([best_scores[rows], -block], axis=1)
        indices = np.concatenate([best_indices[rows], keep + database_start], axis=1)
        if scores.shape[1] > k:
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, keep, axis=1)
            indices = np.take_along_axis(indices, keep, axis=1)
        best_scores[rows], best_indices[rows] = scores, indices
    # Most similar first; among equal similarities the lower row first (missing places last).
    order = np.lexsort(
        (np.where(best_indices < 0, np.iinfo(np.int64).max, best_indices), -best_scores)
    )
    best_scores = np.take_along_axis(best_scores, order, axis=1)
    best_indices = np.take_along_axis(best_indices, order, axis=1)
    best_indices[~np.isfinite(best_scores)] = -1
    return best_scores, best_indices


def pairs_above(
    vectors: np.ndarray,
    threshold: float,
    *,
    normalized: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every pair of distinct rows of ``vectors`` whose cosine similarity is >= ``threshold``.

    The work grows with the square of the number of rows (all pairs are compared).

    Args:
        vectors: ``[N, D]``; a memory-mapped array is read one block of rows at a time.
        threshold: the smallest similarity to report, in [-1, 1].
        normalized: the rows are unit vectors already.
        block_bytes: memory for one block of similarities.

    Yields:
        ``(first, second, similarity)`` arrays, one triple per block that has pairs: int64 row
        indices with ``first < second``, and their float32 similarities.

    Raises:
        ValueError: for an array that is not 2-D or a threshold outside [-1, 1].
    """
    _check_matrix("vectors", vectors)
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(
            f"threshold is a cosine similarity and must be in [-1, 1]; received {threshold!r}."
        )
    for start, other_start, block in _blocks(vectors, vectors, normalized, block_bytes, True):
        rows, columns = np.nonzero(block >= threshold)
        first = rows.astype(np.int64) + start
        second = columns.astype(np.int64) + other_start
        upper = first < second
        if upper.any():
            yield first[upper], second[upper], block[rows[upper], columns[upper]]
