"""Inputs shared by the tests of simclr_tf.data (tests/test_data*.py): fake CIFAR-10 batches,
pickles that try to run code, and small image files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from simclr_tf.data import CIFAR10_CLASSES

BATCH_NAMES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


class RunsShellCommand:
    """Unpickling this object runs a shell command: the classic pickle exploit."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def write_bytes(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


def fake_batch(count: int, seed: int, label_offset: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"labels": [(i + label_offset) % 10 for i in range(count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [f"{i}.png".encode() for i in range(count)],
    }


def make_tiny_cifar(tmp_path: Path, monkeypatch) -> Path:
    """A fake cifar-10-batches-py/ of 20 images per batch, with the loader told to expect 20."""
    from simclr_tf.data import cifar10 as cifar10_module

    monkeypatch.setattr(cifar10_module, "IMAGES_PER_BATCH", 20)
    monkeypatch.delenv("SIMCLR_DATA_DIR", raising=False)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for seed, name in enumerate((*BATCH_NAMES, "test_batch")):
        (folder / name).write_bytes(pickle.dumps(fake_batch(20, seed), protocol=2))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=2)
    )
    return folder


RGB = (200, 30, 90)


def solid(height: int, width: int, colour=RGB) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def palette(rgb: np.ndarray) -> Image.Image:
    """A palette ("P" mode) image holding exactly the colours of ``rgb`` (no dithering)."""
    return Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        palette(rgb).save(path)
    elif path.suffix == ".webp":
        cv2.imwrite(
            str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_WEBP_QUALITY, 101]
        )
    else:
        assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def images_of(dataset: tf.data.Dataset) -> list[np.ndarray]:
    return [(e[0] if isinstance(e, tuple) else e).numpy() for e in dataset]


def make_class_folders(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int, int]]]:
    """train/<class>/ with 3 cats, 2 dogs (one nested deeper) and 1 owl."""
    root = tmp_path / "train"
    colours = {"cat": (255, 0, 0), "dog": (0, 255, 0), "owl": (0, 0, 255)}
    for name, count in (("cat", 3), ("dog", 2), ("owl", 1)):
        for i in range(count):
            sub = "deep/" if (name, i) == ("dog", 1) else ""
            write_image(root / name / f"{sub}{i}.png", solid(10, 10, colours[name]))
    return root, colours
