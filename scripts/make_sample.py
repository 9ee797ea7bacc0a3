"""Regenerates the bundled CIFAR-10 sample (``data/cifar10_sample.npz``) from the full data set.

Usage:
    python scripts/make_sample.py --data_dir /path/to/cifar10 \\
        [--train_per_class 450] [--test_per_class 100] [--seed 0] [--out data/cifar10_sample.npz]

``--data_dir`` may be omitted when ``SIMCLR_DATA_DIR`` is set or Keras can download CIFAR-10.
The script refuses to write a file larger than ``--max_bytes`` (10,000,000 by default) and
prints the size it measured. ``--compare_formats`` also prints how many bytes per image PNG,
lossless WebP and zlib-compressed raw arrays need for the selected training images.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from simclr_tf.data.cifar10 import CIFAR10_CLASSES, load_cifar10
from simclr_tf.data.sample import (
    DEFAULT_SAMPLE_PATH,
    encode_webp_images,
    load_sample,
    save_sample,
    stratified_indices,
)


def compare_formats(images: np.ndarray) -> None:
    """Prints the bytes per image of three lossless ways to store ``images``."""
    png = sum(
        len(cv2.imencode(".png", image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])[1])
        for image in images
    )
    webp = len(encode_webp_images(images)[0])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images)
    raw = len(buffer.getvalue())
    print(f"Bytes per image over {len(images)} training images (all lossless):")
    for name, size in (("PNG, level 9", png), ("WebP lossless", webp), ("npz zlib raw", raw)):
        print(f"  {name:14s} {size / len(images):8.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="Full CIFAR-10 (see load_cifar10).")
    parser.add_argument("--train_per_class", type=int, default=450)
    parser.add_argument("--test_per_class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.fspath(DEFAULT_SAMPLE_PATH))
    parser.add_argument("--max_bytes", type=int, default=10_000_000)
    parser.add_argument("--compare_formats", action="store_true")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_cifar10(args.data_dir)
    train_index = stratified_indices(y_train, args.train_per_class, seed=args.seed)
    # A different stream for the test split, so that changing one count leaves the other alone.
    test_index = stratified_indices(y_test, args.test_per_class, seed=args.seed + 1)
    train = (x_train[train_index], y_train[train_index])
    test = (x_test[test_index], y_test[test_index])
    if args.compare_formats:
        compare_formats(train[0])

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".npz", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        save_sample(
            temporary, train, test, train_index=train_index, test_index=test_index, seed=args.seed
        )
        size = temporary.stat().st_size
        if size > args.max_bytes:
            print(
                f"error: the sample would take {size:,} bytes, more than --max_bytes="
                f"{args.max_bytes:,}; lower --train_per_class.",
                file=sys.stderr,
            )
            return 1
        (x_train_back, y_train_back), (x_test_back, y_test_back) = load_sample(temporary)
        if not (
            np.array_equal(x_train_back, train[0])
            and np.array_equal(y_train_back, train[1])
            and np.array_equal(x_test_back, test[0])
            and np.array_equal(y_test_back, test[1])
        ):
            print("error: the written sample does not read back identically.", file=sys.stderr)
            return 1
        temporary.chmod(0o644)  # NamedTemporaryFile creates it readable by its owner only.
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)

    print(
        f"Wrote {out}: {len(train_index):,} training images ({args.train_per_class} per class) "
        f"and {len(test_index):,} test images ({args.test_per_class} per class) of "
        f"{len(CIFAR10_CLASSES)} classes, seed {args.seed}, {size:,} bytes "
        f"({size / (len(train_index) + len(test_index)):.0f} bytes per image); "
        "read back identical."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
