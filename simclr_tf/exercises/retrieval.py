"""Checker of notebook 07 (export): nearest neighbours through the SavedModel."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    record_case,
    run_check,
    to_numpy,
)

MISTAKES["nearest_neighbours"] = {
    "shape": "return the indices of exactly k gallery images, an int array of shape [k].",
    "float_input": "the serve endpoint takes the uint8 pixels as they are, [1, 32, 32, 3], "
    "and divides by 255 itself: pass the image without converting it (an image divided by 255 "
    "is cast back to uint8 on the way in and arrives almost black).",
    "no_batch_axis": "the serve endpoint takes a batch: encoder.serve(image[None]) is a batch "
    "of one image.",
    "not_normalised": "the ranking used plain dot products: normalise the query's h and the "
    "gallery's features to length 1 first, so that the similarity is the cosine.",
    "euclidean": "the ranking used Euclidean distances between unnormalised features: rank by "
    "cosine similarity (normalise both, then one matrix product).",
    "farthest": "these are the least similar images: sort the similarities in decreasing "
    "order, np.argsort(-similarity)[:k].",
    "reversed": "the right neighbours in the wrong order: the most similar comes first.",
}


def _neighbour_variant(gallery, query, k, mistake=None) -> np.ndarray:
    """Indices of the k most similar gallery rows, correct (``None``) or with one mistake."""
    gallery, query = gallery.astype(np.float64), query.astype(np.float64)
    if mistake == "euclidean":
        return np.argsort(np.linalg.norm(gallery - query, axis=1))[:k]
    if mistake != "not_normalised":
        gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        query = query / np.linalg.norm(query)
    similarity = gallery @ query
    if mistake == "farthest":
        return np.argsort(similarity)[:k]
    nearest = np.argsort(-similarity)[:k]
    return nearest[::-1] if mistake == "reversed" else nearest


def _explain_serve_error(error: BaseException) -> str | None:
    text = str(error)
    if re.search(r"float", text):
        return "float_input"
    if re.search(r"rank|shape|signature|dimension", text):
        return "no_batch_axis"
    return None


def check_nearest_neighbours(
    fn: Callable[..., Any], encoder_path: str, gallery: np.ndarray | None = None
) -> CheckResult:
    """Checks ``fn(encoder, gallery_features, image, k)`` on an exported SavedModel.

    ``encoder`` is the loaded SavedModel (``tf.saved_model.load(encoder_path)``),
    ``gallery_features`` the ``h`` of the gallery images from its ``serve`` endpoint, ``image``
    one new uint8 image ``[H, W, 3]``. The answer must be the indices of the ``k`` gallery
    images whose ``h`` has the largest cosine similarity with the image's, most similar first.

    Args:
        fn: the function to check.
        encoder_path: folder of a SavedModel written by :func:`simclr_tf.export.export_encoder`.
        gallery: uint8 gallery images ``[N, H, W, 3]`` (at least 60); by default synthetic
            images of varied brightness.
    """
    import tensorflow as tf

    from simclr_tf.export import read_export_metadata

    name = "nearest_neighbours"

    def body() -> str:
        encoder = tf.saved_model.load(encoder_path)
        height, width = np.broadcast_to(read_export_metadata(encoder_path)["image_size"], 2)
        images = gallery
        if images is None:
            rng = np.random.default_rng(7)
            brightness = rng.uniform(0.1, 1.0, (203, 1, 1, 1))
            images = (rng.integers(0, 256, (203, height, width, 3)) * brightness).astype(np.uint8)
        images = np.asarray(images, np.uint8)
        bank, queries = images[:-3], images[-3:]
        features = encoder.serve(bank).numpy()
        query_features = encoder.serve(queries).numpy()
        cases = ((0, 1), (1, 5), (2, 10))
        for index, k in cases:
            case = record_case(f"case query {index} (k={k}, a gallery of {len(bank)} images)")
            reference = _neighbour_variant(features, query_features[index], k)
            answer = np.asarray(to_numpy(fn(encoder, features.copy(), queries[index].copy(), k)))
            if answer.shape != (k,):
                fail(name, f"{case}: {answer.shape} indices returned, expected ({k},).", "shape")
            if not np.array_equal(answer.astype(np.int64), reference):
                variants = {
                    key: _neighbour_variant(features, query_features[index], k, key)
                    for key in ("not_normalised", "euclidean", "farthest", "reversed")
                }
                # Pixels divided by 255 reach the endpoint cast to uint8: a nearly black image.
                black = (queries[index] == 255).astype(np.uint8)[None]
                variants["float_input"] = _neighbour_variant(
                    features, encoder.serve(black).numpy()[0], k
                )
                mistake = next(
                    (
                        key
                        for key, value in variants.items()
                        if np.array_equal(value, answer) and not np.array_equal(value, reference)
                    ),
                    None,
                )
                fail(
                    name,
                    f"{case}: yours {answer.tolist()}, expected {reference.tolist()}.",
                    mistake,
                    None
                    if mistake
                    else "print the cosine similarities of your k indices: they should be the "
                    "k largest, in decreasing order.",
                )
        return "the neighbours of 3 queries (k = 1, 5, 10) agree with cosine similarity of h."

    return run_check(name, body, _explain_serve_error)
