"""Checker of notebook 08 (what SimCLR buys): the batch of the rotation pretext task."""

from __future__ import annotations

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

MISTAKES["rotate_batch"] = {
    "not_a_pair": "return two things: the rotated images [4B, S, S, C] and their labels [4B].",
    "shape": "return all four rotations of every image: 4B images of the input's shape, and "
    "4B labels (one integer per rotated image).",
    "clockwise": "the images turn clockwise: label k means k quarter turns counter-clockwise, "
    "as np.rot90(image, k) and tf.image.rot90(images, k) turn them.",
    "interleaved": "the rotations are interleaved (image 0 turned 0, 1, 2, 3 times, then image "
    "1, ...): put all B images turned 0 times first, then all B turned once, and so on "
    "(tf.concat of the four turned batches), with labels tf.repeat(tf.range(4), B).",
    "flips": "one of the turns is a flip: turning by 180 degrees reverses both the height and "
    "the width axis, and a flip of one axis is not a rotation at all.",
    "labels_not_turns": "the labels are not the number of quarter turns: the B images turned k "
    "times get label k (0, 1, 2 or 3), not their index or the angle in degrees.",
}


def _rotations(images: np.ndarray, mistake: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rotation batch of NumPy ``images [B, S, S, C]``, correct or with one mistake."""
    direction = -1 if mistake == "clockwise" else 1
    turned = [np.rot90(images, direction * k, axes=(1, 2)) for k in range(4)]
    if mistake == "flips":
        turned[2] = images[:, ::-1]
    batch = len(images)
    labels = np.repeat(np.arange(4), batch)
    if mistake == "labels_not_turns":
        labels = labels * 90
    rotated = np.concatenate(turned)
    if mistake == "interleaved":
        rotated = np.stack(turned, axis=1).reshape((4 * batch, *images.shape[1:]))
        labels = np.tile(np.arange(4), batch)
    return rotated, labels


def check_rotate_batch(fn: Callable[[Any], Any]) -> CheckResult:
    """Checks ``fn(images) -> (rotated, labels)``, the batch of rotation prediction.

    ``images`` is a float32 tensor ``[B, S, S, C]``; the answer must equal
    ``st.pretext.rotate_batch``: the ``B`` images turned 0, 1, 2 and 3 quarter turns
    counter-clockwise, in that order (``[4B, S, S, C]``), and the number of turns of each as
    its label (``[4B]``). Images with distinct pixels make every turn and flip distinguishable.
    """
    import tensorflow as tf

    from simclr_tf import pretext

    name = "rotate_batch"

    def body() -> str:
        rng = np.random.default_rng(8)
        cases = ((2, 4, 1), (3, 5, 3), (8, 8, 3))
        for batch, size, channels in cases:
            case = record_case(f"case B={batch}, S={size}, C={channels}")
            images = rng.uniform(size=(batch, size, size, channels)).astype(np.float32)
            reference, reference_labels = (
                to_numpy(value) for value in pretext.rotate_batch(tf.constant(images))
            )
            answer = fn(tf.constant(images))
            if not isinstance(answer, tuple | list) or len(answer) != 2:
                fail(
                    name,
                    f"{case}: the answer is a {type(answer).__name__}, not a pair.",
                    "not_a_pair",
                )
            rotated, labels = (np.asarray(to_numpy(value)) for value in answer)
            labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
            if rotated.shape != reference.shape or labels.shape != reference_labels.shape:
                fail(
                    name,
                    f"{case}: images {rotated.shape} and labels {labels.shape}, expected "
                    f"{reference.shape} and {reference_labels.shape}.",
                    "shape",
                )
            if np.allclose(rotated, reference) and np.array_equal(labels, reference_labels):
                continue
            mistake = None
            for key in MISTAKES[name]:
                if key in ("not_a_pair", "shape"):
                    continue
                wrong_rotated, wrong_labels = _rotations(images, key)
                if np.allclose(rotated, wrong_rotated) and np.array_equal(labels, wrong_labels):
                    mistake = key
                    break
            wrong = [
                index
                for index in range(len(reference))
                if not np.allclose(rotated[index], reference[index])
                or labels[index] != reference_labels[index]
            ]
            first = wrong[0]
            fail(
                name,
                f"{case}: {len(wrong)} of {len(reference)} rotated images or labels differ "
                f"from the library's (first: row {first}, which should be image "
                f"{first % batch} turned {first // batch} times, label {first // batch}; your "
                f"label {labels[first]}).",
                mistake,
                None
                if mistake
                else "print labels, and compare rotated[B] with np.rot90(images[0], 1) for "
                "one small image.",
            )
        return (
            f"{len(cases)} batches agree with st.pretext.rotate_batch (all four turns, "
            "in order, with their labels)."
        )

    return run_check(name, body)
