"""Embedding a folder, searching it, finding its near-duplicates, and the command lines' errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import duplicates, embed, search
from simclr_tf.data import (
    UnreadableImageWarning,
    list_image_folder,
    load_image_folder,
    load_sample,
)
from simclr_tf.evaluate.features import FeatureEncoder
from simclr_tf.export import export_encoder
from simclr_tf.models import build_encoder

SIZE = 16  # the encoder's input; the 32x32 sample images are resized to it
COUNT = 24


def _export(path, seed: int) -> str:
    tf.keras.utils.set_random_seed(seed)
    encoder = build_encoder("small_cnn", SIZE, width=1)
    return export_encoder(encoder, path, SIZE, include_keras=False, include_tflite=False)


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory) -> str:
    return _export(tmp_path_factory.mktemp("encoder") / "encoder", seed=0)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> str:
    """Two class folders of sample images (PNG and JPEG, one 40x50, one grey), a text file, a
    truncated PNG and an exact copy of the first image."""
    root = tmp_path_factory.mktemp("images")
    _, (x_test, y_test) = load_sample()
    for i in range(COUNT):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        data = tf.io.encode_png(x_test[i]) if i % 3 else tf.io.encode_jpeg(x_test[i], quality=95)
        (folder / f"{i:03d}.{'png' if i % 3 else 'jpg'}").write_bytes(data.numpy())
    big = tf.image.resize(x_test[COUNT : COUNT + 1], (40, 50))[0]
    (root / "cats" / "wide.png").write_bytes(tf.io.encode_png(tf.cast(big, tf.uint8)).numpy())
    grey = tf.image.rgb_to_grayscale(x_test[COUNT + 1])
    (root / "dogs" / "grey.png").write_bytes(tf.io.encode_png(grey).numpy())
    (root / "dogs" / "copy-of-000.jpg").write_bytes((root / "dogs" / "000.jpg").read_bytes())
    (root / "cats" / "notes.txt").write_text("not an image")
    # A valid header (the listing reads the image size from it) and then the file ends.
    whole = tf.io.encode_png(x_test[COUNT + 2]).numpy()
    (root / "cats" / "truncated.png").write_bytes(whole[:60])
    return str(root)


def _embed(encoder_path, images, out, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImageWarning)
        return embed.embed_folder(encoder_path, images, out, verbose=False, **options)


def test_embeds_every_readable_image(encoder_path, images, tmp_path):
    with pytest.warns(UnreadableImageWarning) as caught:
        manifest = embed.embed_folder(
            encoder_path, images, tmp_path / "index", batch_size=5, shard_size=7, verbose=False
        )
    named = " ".join(str(warning.message) for warning in caught)
    assert "notes.txt" in named and "truncated.png" in named
    index = search.EmbeddingIndex.load(tmp_path / "index")
    assert manifest["count"] == len(index) == COUNT + 3
    assert manifest["dim"] == index.dim == 256 and manifest["normalization"] == "l2"
    assert manifest["encoder"]["path"] == encoder_path
    assert manifest["encoder"]["metadata"]["image_size"] == [SIZE, SIZE]
    assert manifest["images"]["class_names"] == ["cats", "dogs"]
    assert isinstance(index.embeddings, np.memmap) and index.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    assert list(index.labels) == [0 if "/cats/" in path else 1 for path in index.paths]
    assert all(os.path.isabs(path) for path in index.paths)
    with open(tmp_path / "index" / "skipped.csv", encoding="utf-8") as handle:
        skipped = {os.path.basename(row["path"]): row["reason"] for row in csv.DictReader(handle)}
    assert skipped == {
        "notes.txt": "not a PNG, JPEG, BMP, GIF or WebP image",
        "truncated.png": "could not be decoded",
    }
    # A row is the export's h of its image resized as in training, L2-normalised.
    row = index.paths.index(os.path.join(images, "cats", "wide.png"))
    pixels = tf.io.decode_png(open(index.paths[row], "rb").read(), channels=3)
    resized = tf.cast(tf.round(tf.image.resize(pixels, (SIZE, SIZE), antialias=True)), tf.uint8)
    h = FeatureEncoder(encoder_path)(resized[None])[0]
    np.testing.assert_allclose(index.embeddings[row], h / np.linalg.norm(h), atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no work folder left behind


def test_decodes_images_as_training_does(images):
    with pytest.warns(UnreadableImageWarning):
        listing = list_image_folder(images)
        training = list(load_image_folder(listing, SIZE, shuffle_files=False))
    streamed = list(embed.image_batches(listing.file_paths, (SIZE, SIZE), 5).unbatch())
    assert [int(position) for _, position in streamed] == [
        i for i, path in enumerate(listing.file_paths) if not path.endswith("truncated.png")
    ]
    assert len(streamed) == len(training) == COUNT + 3
    for (image, _), (expected, _) in zip(streamed, training, strict=True):
        np.testing.assert_array_equal(image.numpy(), expected.numpy())


def test_interrupted_run_continues_where_it_stopped(encoder_path, images, tmp_path, monkeypatch):
    reference = _embed(encoder_path, images, tmp_path / "reference", batch_size=4, shard_size=6)
    calls = {"count": 0}
    original = FeatureEncoder.__call__

    def stop_at_third_batch(self, batch):
        calls["count"] += 1
        if calls["count"] == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(FeatureEncoder, "__call__", stop_at_third_batch)
    with pytest.raises(KeyboardInterrupt):
        _embed(encoder_path, images, tmp_path / "index", batch_size=4, shard_size=6)
    assert not os.path.exists(tmp_path / "index")  # nothing half-written where readers look
    work = tmp_path / ".index.partial"
    assert sorted(name for name in os.listdir(work) if name.startswith("shard")) == [
        "shard-000000.npz"  # 2 batches of 4 = 8 images: the first shard of 6 was complete
    ]
    with pytest.raises(FileNotFoundError, match="interrupted; run the embed command again"):
        search.EmbeddingIndex.load(tmp_path / "index")

    calls["count"] = -100  # no more interruptions
    manifest = _embed(encoder_path, images, tmp_path / "index", batch_size=4, shard_size=6)
    assert calls["count"] == -100 + 6  # 27 - 6 images left = 21, in 6 batches of at most 4
    assert manifest["count"] == reference["count"]
    np.testing.assert_allclose(
        np.load(tmp_path / "index" / "embeddings.npy"),
        np.load(tmp_path / "reference" / "embeddings.npy"),
        atol=1e-6,
    )
    assert not os.path.exists(work)
    # Run again: complete already, nothing is encoded.
    calls["count"] = 0
    assert _embed(encoder_path, images, tmp_path / "index", batch_size=4, shard_size=6)["count"]
    assert calls["count"] == 0


def test_another_index_is_replaced_only_when_asked(encoder_path, images, tmp_path):
    _embed(encoder_path, images, tmp_path / "index")
    with pytest.raises(FileExistsError, match=r"another index \(dtype 'float32' -> 'float16'\)"):
        _embed(encoder_path, images, tmp_path / "index", dtype="float16")
    manifest = _embed(encoder_path, images, tmp_path / "index", dtype="float16", overwrite=True)
    assert manifest["dtype"] == "float16"
    assert np.load(tmp_path / "index" / "embeddings.npy", mmap_mode="r").dtype == np.float16
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not an index folder"):
        _embed(encoder_path, images, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_search_finds_the_image_and_its_copy(encoder_path, images, tmp_path):
    _embed(encoder_path, images, tmp_path / "index")
    index = search.EmbeddingIndex.load(tmp_path / "index")
    first = index.paths.index(os.path.join(images, "dogs", "000.jpg"))
    similarities, rows = index.search(index.embeddings[first], k=3)
    copy = index.paths.index(os.path.join(images, "dogs", "copy-of-000.jpg"))
    assert set(rows[0, :2]) == {first, copy}
    np.testing.assert_allclose(similarities[0, :2], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="width 256"):
        index.search(np.ones((1, 7)))
    groups = duplicates.find_duplicates(index.embeddings, 0.9999, normalized=True)
    assert [group["rows"] for group in groups] == [sorted([first, copy])]


def test_approximate_search_agrees_with_exact():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    vectors = centres[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 16))
    queries = vectors[:50] + 0.1 * rng.normal(size=(50, 16))
    from simclr_tf.similarity import top_k

    _, exact = top_k(queries, vectors, 10)
    for kind in ("ivf", "hnsw"):
        _, found = search.ApproximateIndex.build(vectors, kind).search(queries, 10)
        assert search.recall_at_k(found, exact) > 0.9, kind
    groups = duplicates.find_duplicates(vectors[:300], 0.999, approximate="ivf")
    assert groups == duplicates.find_duplicates(vectors[:300], 0.999)


def test_command_lines_work(encoder_path, images, tmp_path, capsys):
    assert (
        embed.main(["--encoder", encoder_path, "--images", images, "--out", str(tmp_path / "i")])
        == 0
    )
    assert "Wrote 27 embeddings of dimension 256" in capsys.readouterr().out
    query = os.path.join(images, "cats", "001.png")
    report = tmp_path / "search.html"
    code = search.main(
        ["--index", str(tmp_path / "i"), "--query", query, "-k", "2", "--report", str(report)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert f"query: {query}\n    1  1.0000  {query}\n" in printed
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 3 and "(itself)" in page
    code = duplicates.main(
        [
            "--index",
            str(tmp_path / "i"),
            "--threshold",
            "0.9999",
            "--json",
            str(tmp_path / "d.json"),
            "--report",
            str(tmp_path / "d.html"),
        ]
    )
    assert code == 0 and "1 group(s) of near-duplicates, 2 of 27 images" in capsys.readouterr().out
    groups = json.loads((tmp_path / "d.json").read_text())["groups"]
    assert [os.path.basename(path) for path in groups[0]["paths"]] == ["000.jpg", "copy-of-000.jpg"]
    assert (tmp_path / "d.html").read_text().count("data:image/png;base64,") == 2


def _fails(main, argv, capsys, *phrases) -> None:
    """``main(argv)`` ends with exit code 2 and one error line on stderr, without a traceback.

    (A bad flag makes argparse print its usage and raise ``SystemExit(2)``, as every command of
    the package does.)
    """
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert error and "error: " in error[-1], captured.err
    assert "Traceback" not in captured.err
    for phrase in phrases:
        assert phrase in error[-1], error[-1]


def test_bad_input_is_one_clear_error(encoder_path, images, tmp_path, capsys):
    out = str(tmp_path / "index")
    not_export = tmp_path / "not-an-export"
    not_export.mkdir()
    _fails(
        embed.main,
        ["--encoder", str(not_export), "--images", images, "--out", out],
        capsys,
        "No SavedModel",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(
        embed.main,
        ["--encoder", encoder_path, "--images", str(empty), "--out", out],
        capsys,
        "contains no files",
    )
    _fails(
        embed.main,
        ["--encoder", encoder_path, "--images", images, "--out", out, "--dtype", "int8"],
        capsys,
        "invalid choice: 'int8'",
    )
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ["empty", "not-an-export"]

    _fails(search.main, ["--index", out, "--query", images], capsys, "is not an index folder")
    assert embed.main(["--encoder", encoder_path, "--images", images, "--out", out]) == 0
    capsys.readouterr()
    text = os.path.join(images, "cats", "notes.txt")
    _fails(
        search.main, ["--index", out, "--query", text], capsys, "Not a readable image", "notes.txt"
    )
    other = _export(tmp_path / "other-encoder", seed=1)
    _fails(
        search.main,
        ["--index", out, "--query", images, "--encoder", other],
        capsys,
        "is not the one that built the index",
        "not comparable",
    )
    _fails(duplicates.main, ["--index", out, "--threshold", "1.5"], capsys, "in [-1, 1]")
    _fails(search.main, ["--index", out, "--query", images, "--report", "r.txt"], capsys, ".html")
    assert not os.path.exists("r.txt")


KILL_COUNT = 600  # enough work that the job is still running when the signal arrives


@pytest.mark.slow
def test_kill_then_rerun_from_the_shell(encoder_path, tmp_path):
    """The real thing: SIGTERM a running embed, then the same command finishes the job."""
    images = tmp_path / "images"
    images.mkdir()
    _, (x_test, _) = load_sample()
    for i in range(KILL_COUNT):
        data = tf.io.encode_png(x_test[i % len(x_test)]).numpy()
        (images / f"{i:04d}.png").write_bytes(data)
    command = [
        sys.executable,
        "-m",
        "simclr_tf.embed",
        "--encoder",
        encoder_path,
        "--images",
        str(images),
        "--out",
        str(tmp_path / "index"),
        "--batch_size",
        "1",
        "--shard_size",
        "2",
        "--log_every",
        "100",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    work = tmp_path / ".index.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (work / "shard-000001.npz").exists():
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "index").exists()
    done = len(list(work.glob("shard-*.npz")))
    assert 2 <= done < KILL_COUNT // 2, done
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "Continuing in" in finished.stdout
    assert len(np.load(tmp_path / "index" / "embeddings.npy", mmap_mode="r")) == KILL_COUNT


def test_file_names_that_are_not_utf8(encoder_path, tmp_path, capsys):
    """A name whose bytes are not UTF-8 is embedded, kept exactly in paths.csv, and printed
    with \\xNN."""
    folder = tmp_path / "images"
    folder.mkdir()
    _, (x_test, _) = load_sample()
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(odd, "wb") as handle:
        handle.write(tf.io.encode_png(x_test[0]).numpy())
    (folder / "plain.png").write_bytes(tf.io.encode_png(x_test[1]).numpy())
    out = str(tmp_path / "index")
    assert embed.main(["--encoder", encoder_path, "--images", str(folder), "--out", out]) == 0
    index = search.EmbeddingIndex.load(out)
    assert sorted(os.fsencode(path) for path in index.paths) == sorted(
        [odd, os.fsencode(folder / "plain.png")]
    )
    capsys.readouterr()
    report = str(tmp_path / "search.html")
    code = search.main(["--index", out, "--query", os.fsdecode(odd), "-k", "1", "--report", report])
    assert code == 0
    assert "caf\\xe9.png" in capsys.readouterr().out
    assert "caf\\xe9.png" in open(report, encoding="utf-8").read()
