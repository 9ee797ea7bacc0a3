"""Blocked cosine similarity: top-k neighbours and close pairs against brute-force loops."""

from __future__ import annotations

import numpy as np
import pytest

from simclr_tf import similarity


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a.astype(np.float64) @ b.astype(np.float64).T


@pytest.mark.parametrize("block_bytes", [64, 4096, similarity.DEFAULT_BLOCK_BYTES])
def test_top_k_matches_a_full_sort(block_bytes):
    rng = np.random.default_rng(0)
    queries, database = rng.normal(size=(37, 8)), rng.normal(size=(301, 8)).astype(np.float16)
    scores, indices = similarity.top_k(queries, database, 7, block_bytes=block_bytes)
    full = _cosine(queries, database.astype(np.float32))
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    assert scores.dtype == np.float32 and indices.dtype == np.int64


def test_top_k_excludes_own_row_and_pads_missing_places():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(5, 4))
    _, indices = similarity.top_k(vectors, vectors, 2, exclude=np.arange(5), block_bytes=32)
    assert not np.any(indices == np.arange(5)[:, None])
    scores, indices = similarity.top_k(vectors[:1], vectors[:3], 5, exclude=np.array([0]))
    assert list(indices[0, 2:]) == [-1, -1, -1] and np.all(np.isinf(scores[0, 2:]))
    assert set(indices[0, :2]) == {1, 2}


def test_normalize_keeps_float32_and_zero_rows():
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float16)
    unit = similarity.normalize(vectors)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]], atol=1e-3)
    assert similarity.normalize(np.ones((2, 3), np.float32)).dtype == np.float32


def test_ties_are_ordered_by_row():
    database = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 0.0]])
    _, indices = similarity.top_k(np.array([[1.0, 0.0]]), database, 3, block_bytes=16)
    assert list(indices[0]) == [0, 2, 3]


def test_pairs_above_matches_all_pairs():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(60, 6))
    vectors = np.concatenate([base, base[:10] + 0.05 * rng.normal(size=(10, 6))])
    full = _cosine(vectors, vectors)
    expected = {(i, j) for i in range(70) for j in range(i + 1, 70) if full[i, j] >= 0.9}
    found = {}
    for first, second, scores in similarity.pairs_above(vectors, 0.9, block_bytes=200):
        for i, j, s in zip(first, second, scores, strict=True):
            found[(int(i), int(j))] = float(s)
    assert set(found) == expected and len(expected) >= 10
    for (i, j), score in found.items():
        assert score == pytest.approx(full[i, j], abs=1e-5)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="width 3 but the other side has width 4"):
        similarity.top_k(np.ones((2, 4)), np.ones((5, 3)), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        similarity.top_k(np.ones((2, 4)), np.ones((5, 4)), 0)
    with pytest.raises(ValueError, match=r"2-D array \[N, D\]"):
        similarity.top_k(np.ones(4), np.ones((5, 4)), 1)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        next(similarity.pairs_above(np.ones((3, 2)), 1.5))
