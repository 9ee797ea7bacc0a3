"""The pretrained encoder in the repository: what an hour of a 2-core CPU on CIFAR-10 buys.

``pretrained/cifar10-cpu/`` holds a SimCLR encoder trained with the ``cpu`` preset on the
50,000 CIFAR-10 training images for 21,962 steps (56 epochs, about an hour on a quiet 2-core
CPU), with the configuration and command that made it, its training curves and the results
it measured (``pretrained/cifar10-cpu/README.md``). It loads offline, in one call::

    encoder = st.pretrained.load_encoder()          # float [B, 32, 32, 3] in [0, 1] -> [B, 1024]
    st.pretrained.results()["cifar10"]["linear"]     # its linear-probe top-1 on CIFAR-10 test

Notebooks 06 and 07 put it beside the encoder the class trained, and the main job prints how
its own result compares (:func:`comparison_line`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
"""``pretrained/`` at the root of the repository."""
DEFAULT_NAME = "cifar10-cpu"
"""The encoder :func:`load_encoder` loads when given no name."""
ENCODER_FILE = "encoder.keras"
RESULTS_FILE = "results.json"


def path(name: str = DEFAULT_NAME) -> Path:
    """The folder of a pretrained encoder.

    Raises:
        FileNotFoundError: if there is no such encoder (naming those there are).
    """
    folder = PRETRAINED_DIR / name
    if not (folder / ENCODER_FILE).is_file():
        available = sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / ENCODER_FILE).is_file())
        raise FileNotFoundError(
            f"No pretrained encoder {name!r} in {os.fspath(PRETRAINED_DIR)!r}; available: "
            f"{', '.join(available) or 'none (use a clone of the repository, which ships them)'}."
        )
    return folder


def load_encoder(name: str = DEFAULT_NAME):
    """The pretrained Keras encoder: float images ``[B, H, W, 3]`` in [0, 1] -> ``h [B, D]``.

    Args:
        name: the folder under ``pretrained/`` (default :data:`DEFAULT_NAME`).

    Returns:
        A ``keras.Model`` in inference use (call it with ``training=False``); it can be
        fine-tuned like any Keras model.

    Raises:
        FileNotFoundError: if there is no such encoder.
    """
    import keras

    return keras.models.load_model(path(name) / ENCODER_FILE, compile=False)


def results(name: str = DEFAULT_NAME) -> dict[str, Any]:
    """What the encoder measured, how it was made: the folder's ``results.json``."""
    with open(path(name) / RESULTS_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def comparison_line(dataset: str, image_size: int, linear_top1: float | None) -> str | None:
    """One line comparing a run's linear probe with the pretrained encoder's, or ``None``.

    The pretrained encoder was evaluated with the same protocol on the bundled sample's split
    and on the CIFAR-10 test set; other data sets or image sizes are not comparable.

    Args:
        dataset: the run's data set ("sample", "cifar10", "folder").
        image_size: the run's image side.
        linear_top1: the run's linear-probe top-1, in [0, 1], or ``None``.
    """
    if dataset not in ("sample", "cifar10") or image_size != 32 or linear_top1 is None:
        return None
    try:
        measured = results()
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    reference = measured.get(dataset, {}).get("linear")
    if reference is None:
        return None
    return (
        f"For comparison: the pretrained encoder in pretrained/{DEFAULT_NAME} "
        f"({measured.get('summary', 'the cpu preset, an hour on 50,000 CIFAR-10 images')}) "
        f"reaches {100 * reference:.1f} % linear probe on this evaluation; this run "
        f"{100 * linear_top1:.1f} %."
    )
