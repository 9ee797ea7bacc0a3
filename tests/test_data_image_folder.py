"""Tests of simclr_tf.data.image_folder: a folder of image files as a tf.data.Dataset."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from data_helpers import (
    RGB,
    images_of,
    make_class_folders,
    palette,
    solid,
    write_bytes,
    write_image,
)
from PIL import Image

from simclr_tf.data import UnreadableImageWarning, list_image_folder, load_image_folder


@pytest.fixture
def class_folders(tmp_path):
    """train/<class>/ with 3 cats, 2 dogs and 1 owl (see data_helpers.make_class_folders)."""
    return make_class_folders(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".gif", ".webp", ".jpg"])
def test_every_format_decodes_to_rgb_uint8(tmp_path, suffix):
    write_image(tmp_path / f"image{suffix}", solid(12, 20))
    (image,) = images_of(load_image_folder(tmp_path, (12, 20)))
    assert image.shape == (12, 20, 3) and image.dtype == np.uint8
    tolerance = 3 if suffix == ".jpg" else 0  # JPEG is lossy; the others are exact.
    assert np.abs(image.astype(int) - np.array(RGB)).max() <= tolerance


def test_grayscale_rgba_palette_and_animated_images_become_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((8, 8), 77, np.uint8))
    bgra = np.dstack([solid(8, 8)[..., ::-1], np.full((8, 8), 10, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    palette(solid(8, 8)).save(tmp_path / "palette.png")
    frames = [palette(solid(8, 8, c)) for c in (RGB, (0, 0, 255))]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "gray.bmp")
    folder = load_image_folder(tmp_path, 8, shuffle_files=False)
    names = [Path(p).name for p in folder.file_paths]
    colours = {
        name: tuple(image[0, 0]) for name, image in zip(names, images_of(folder), strict=True)
    }
    assert colours == {
        "animated.gif": RGB,  # first frame
        "gray.bmp": (77, 77, 77),
        "gray.png": (77, 77, 77),
        "palette.png": RGB,
        "rgba.png": RGB,  # alpha dropped
    }


def test_images_are_resized_to_int_or_pair(tmp_path):
    write_image(tmp_path / "a.png", solid(40, 30))
    write_image(tmp_path / "b.jpg", solid(7, 90))
    for size, shape in ((16, (16, 16, 3)), ((6, 10), (6, 10, 3))):
        dataset = load_image_folder(tmp_path, size)
        assert dataset.element_spec.shape == shape
        assert [image.shape for image in images_of(dataset)] == [shape, shape]
    for bad in (0, -3, (4,), (4, 0), 2.5, (4, 4.0), True):
        with pytest.raises(ValueError, match="image_size"):
            load_image_folder(tmp_path, bad)


def test_labeled_folder_is_detected_and_labels_follow_class_names(class_folders):
    root, colours = class_folders
    dataset = load_image_folder(root, 10)
    assert dataset.class_names == ("cat", "dog", "owl")
    assert len(dataset.file_paths) == 6
    pairs = [(tuple(image.numpy()[0, 0]), int(label)) for image, label in dataset]
    assert sorted(label for _, label in pairs) == [0, 0, 0, 1, 1, 2]
    for colour, label in pairs:
        assert colour == colours[dataset.class_names[label]]
    listing = list_image_folder(root)
    assert listing.labeled and listing.class_names == dataset.class_names


def test_class_names_fix_the_label_order(class_folders):
    root, _ = class_folders
    dataset = load_image_folder(root, 10, class_names=["owl", "cat"])
    assert dataset.class_names == ("owl", "cat")
    assert sorted(int(label) for _, label in dataset) == [0, 1, 1, 1]
    with pytest.raises(FileNotFoundError, match="bat"):
        load_image_folder(root, 10, class_names=["cat", "bat"])


def test_unlabeled_folder_takes_every_image_recursively(class_folders):
    root, _ = class_folders
    forced = load_image_folder(root, 10, labeled=False)
    assert forced.class_names == () and forced.element_spec.dtype == tf.uint8
    assert len(images_of(forced)) == 6
    write_image(root / "loose.png", solid(10, 10))
    detected = load_image_folder(root, 10)  # an image at the top: unlabelled
    assert detected.class_names == () and len(images_of(detected)) == 7
    with pytest.raises(ValueError, match=r"labeled=True.*loose\.png.*labeled=False"):
        load_image_folder(root, 10, labeled=True)


def test_file_order_is_sorted_or_shuffled_with_a_seed(tmp_path):
    for i in range(12):
        write_image(tmp_path / f"{i:02d}.png", solid(4, 4, (i, i, i)))

    def order(dataset):
        return [int(image[0, 0, 0]) for image in images_of(dataset)]

    assert order(load_image_folder(tmp_path, 4, shuffle_files=False)) == list(range(12))
    shuffled = load_image_folder(tmp_path, 4, seed=3)
    first, second = order(shuffled), order(shuffled)
    assert sorted(first) == sorted(second) == list(range(12))
    assert first != second  # a new order on every pass
    assert order(load_image_folder(tmp_path, 4, seed=3)) == first
    assert order(load_image_folder(tmp_path, 4, seed=4)) != first


def test_images_are_read_when_iterated_not_when_listed(tmp_path):
    path = write_image(tmp_path / "a.png", solid(4, 4, (1, 2, 3)))
    dataset = load_image_folder(tmp_path, 4)
    write_image(path, solid(4, 4, (9, 8, 7)))
    assert tuple(images_of(dataset)[0][0, 0]) == (9, 8, 7)


def test_unreadable_files_are_named_and_skipped(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"good{i}.png", solid(6, 6))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    palette(solid(6, 6)).save(tmp_path / "palette.bmp")
    good = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / ".hidden").write_text("ignored")

    with pytest.warns(UnreadableImageWarning) as listed:
        dataset = load_image_folder(tmp_path, 6)
    message = str(listed[0].message)
    assert "notes.txt" in message and "empty.jpg (empty file)" in message
    assert "palette.bmp (8-bit colour-palette BMP" in message and ".hidden" not in message
    with pytest.warns(UnreadableImageWarning, match="truncated.png"):
        images = images_of(dataset)
    assert len(images) == 3


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "absent", 8)
    image = write_image(tmp_path / "one.png", solid(4, 4))
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        load_image_folder(image, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no files"):
        load_image_folder(tmp_path / "empty", 8)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("a")
    (tmp_path / "junk" / "b.png").write_bytes(b"PNG but not really")
    with pytest.raises(ValueError, match=r"none of its 2 file.*a\.txt.*b\.png"):
        load_image_folder(tmp_path / "junk", 8)


# ---------------------------------------------------------------------------------------------
# Image size caps, read from the headers


def _encoded(variant: str, rgb: np.ndarray) -> bytes:
    """``rgb`` as a file of one ``variant`` of the five formats."""
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if variant == "gif":
        palette(rgb).save(buffer, "GIF")
    elif variant in ("png", "bmp", "jpeg"):
        image.save(buffer, variant.upper())
    elif variant == "bmp top-down":  # a negative height: rows stored from the top
        data = bytearray(_encoded("bmp", rgb[::-1]))
        data[22:26] = struct.pack("<i", -struct.unpack("<i", data[22:26])[0])
        return bytes(data)
    elif variant == "progressive jpeg":
        image.save(buffer, "JPEG", progressive=True)
    elif variant == "jpeg after 900 kB of metadata":  # ICC profile in 14 APP2 segments
        image.save(buffer, "JPEG", icc_profile=bytes(900_000))
    elif variant == "lossy webp":  # VP8
        image.save(buffer, "WEBP", quality=80)
    elif variant == "lossless webp":  # VP8L
        image.save(buffer, "WEBP", lossless=True)
    elif variant == "extended webp":  # VP8X, here for the EXIF chunk
        image.save(
            buffer, "WEBP", lossless=True, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"
        )
    return buffer.getvalue()


_VARIANTS = [
    "png",
    "bmp",
    "bmp top-down",
    "gif",
    "jpeg",
    "progressive jpeg",
    "jpeg after 900 kB of metadata",
    "lossy webp",
    "lossless webp",
    "extended webp",
]


@pytest.mark.parametrize("variant", _VARIANTS)
def test_images_above_max_pixels_are_skipped_from_their_header(tmp_path, variant):
    path = write_bytes(tmp_path / "image", _encoded(variant, solid(13, 21)))
    listing = list_image_folder(tmp_path, max_pixels=13 * 21)
    assert listing.file_paths == (str(path),) and listing.skipped == ()
    with pytest.raises(ValueError, match=r"image: 21x13 = 273 pixels, more than max_pixels=272"):
        list_image_folder(tmp_path, max_pixels=13 * 21 - 1)
    (image,) = images_of(load_image_folder(tmp_path, (13, 21), max_pixels=13 * 21))
    assert np.abs(image.astype(int) - np.array(RGB)).max() <= 3  # the file decodes as written


def _png_header(width: int, height: int) -> bytes:
    """The signature and IHDR chunk of an RGB PNG, and a little deflate data: what a small PNG
    that decodes to ``width`` x ``height`` pixels starts with."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    idat = b"IDAT" + zlib.compress(bytes(100_000))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(idat) - 4) + idat


def test_a_huge_image_is_named_with_its_size_and_never_decoded(tmp_path):
    write_image(tmp_path / "small.png", solid(4, 4))
    write_bytes(tmp_path / "bomb.png", _png_header(20_000, 20_000))
    with pytest.warns(UnreadableImageWarning) as warned:
        dataset = load_image_folder(tmp_path, 4)
    message = str(warned[0].message)
    assert "bomb.png (20000x20000 = 400,000,000 pixels, more than max_pixels=89,478,485" in message
    assert "raise max_pixels (the flag --max_image_pixels" in message
    assert [Path(p).name for p in dataset.file_paths] == ["small.png"]
    assert len(images_of(dataset)) == 1
    listing = list_image_folder(tmp_path, max_pixels=None)
    assert [Path(p).name for p in listing.file_paths] == ["bomb.png", "small.png"]
    for bad in (0, -1, 2.5, True, "100"):
        with pytest.raises(ValueError, match=rf"max_pixels=.*{bad!r}"):
            list_image_folder(tmp_path, max_pixels=bad)


def test_a_jpeg_whose_frame_header_is_beyond_the_first_mib_is_skipped(tmp_path):
    jpeg = _encoded("jpeg", solid(8, 8))
    metadata = (b"\xff\xe1" + struct.pack(">H", 65535) + bytes(65533)) * 17  # 1.1 MB of APP1
    write_bytes(tmp_path / "deep.jpg", jpeg[:2] + metadata + jpeg[2:])
    write_image(tmp_path / "small.png", solid(4, 4))
    with pytest.warns(UnreadableImageWarning, match=r"deep\.jpg \(no JPEG frame header"):
        listing = list_image_folder(tmp_path)
    assert [Path(p).name for p in listing.file_paths] == ["small.png"]
    # Such a file decodes: the skip is the price of not decoding what could not be measured.
    assert tf.io.decode_jpeg((tmp_path / "deep.jpg").read_bytes()).shape == (8, 8, 3)


# ---------------------------------------------------------------------------------------------
# File names that are not UTF-8


def _write_raw(folder: Path, name: bytes, payload: bytes) -> None:
    """Writes a file whose name is raw bytes (not necessarily UTF-8) into ``folder``."""
    directory = os.fsencode(folder)
    os.makedirs(os.path.dirname(os.path.join(directory, name)), exist_ok=True)
    with open(os.path.join(directory, name), "wb") as handle:
        handle.write(payload)


def test_file_names_that_are_not_utf8_are_read_or_named(tmp_path):
    png = _encoded("png", solid(4, 4))
    _write_raw(tmp_path, b"good.png", png)
    _write_raw(tmp_path, b"bad\xff.png", png)  # an image: read like any other
    _write_raw(tmp_path, b"junk\xfe.png", b"not an image")  # named in the listing's warning
    _write_raw(tmp_path, b"cut\xfd.png", png[: len(png) // 2])  # named when it fails to decode
    with pytest.warns(UnreadableImageWarning) as listed:
        dataset = load_image_folder(tmp_path, 4, shuffle_files=False)
    assert r"junk\xfe.png (not a PNG, JPEG" in str(listed[0].message)
    names = [os.fsencode(Path(path).name) for path in dataset.file_paths]
    assert names == [b"bad\xff.png", b"cut\xfd.png", b"good.png"]
    with pytest.warns(UnreadableImageWarning, match=r"cut\\xfd\.png: it has an image signature"):
        images = images_of(dataset)
    assert len(images) == 2 and all(tuple(image[0, 0]) == RGB for image in images)


def test_class_folder_names_that_are_not_utf8_are_classes_like_others(tmp_path):
    png = _encoded("png", solid(4, 4))
    _write_raw(tmp_path, b"caf\xe9/0.png", png)
    _write_raw(tmp_path, b"dog/0.png", png)
    _write_raw(tmp_path, b"emp\xe8ty/notes.txt", b"no image here")
    with pytest.warns(UnreadableImageWarning) as warned:
        dataset = load_image_folder(tmp_path, 4, shuffle_files=False)
    assert [os.fsencode(name) for name in dataset.class_names] == [b"caf\xe9", b"dog", b"emp\xe8ty"]
    assert r"without readable images under" in str(warned[1].message)
    assert str(warned[1].message).count(r"emp\xe8ty") == 1
    assert [int(label) for _, label in dataset] == [0, 1]
