"""Tests of python -m simclr_tf.evaluate: the results it writes, and every user error."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from colour_data import IMAGE_SIZE, colour_images, write_image_folder

from simclr_tf import evaluate


def test_command_line_on_an_image_folder(exported_encoder, tmp_path, capsys):
    write_image_folder(tmp_path / "images", *colour_images(40, num_classes=2, seed=5))
    run_dir = os.path.dirname(exported_encoder)
    with open(os.path.join(run_dir, "metrics.csv"), "w") as handle:
        handle.write("epoch,step,loss,contrastive_accuracy,probe_accuracy\n1,5,4.0,0.1,\n")
    out = tmp_path / "out"
    argv = ["--encoder", exported_encoder, "--dataset", "folder", "--data_dir"]
    argv += [str(tmp_path / "images"), "--protocols", "linear,knn", "--knn_k", "5"]
    argv += ["--out", str(out), "--figures"]
    assert evaluate.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    names = ("tsne.png", "retrieval.png", "training_curves.png", "projector/sprite.png")
    for name in names:
        with open(out / "figures" / name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n", name
    assert set(results["figures"]) == {"tsne", "retrieval", "projector", "training_curves"}
    assert results["num_train"] == 32 and results["num_test"] == 8
    assert results["protocols"]["knn"]["top1"] == 1.0
    assert "| Weighted kNN |" in capsys.readouterr().out
    assert results["command"].startswith("python -m simclr_tf.evaluate --encoder")


def test_command_line_random_encoder_with_a_wider_representation(tmp_path):
    write_image_folder(tmp_path / "images", *colour_images(24, num_classes=2, seed=6))
    argv = ["--random_encoder", "small_cnn", "--representation_dim", "48"]
    argv += ["--image_size", str(IMAGE_SIZE), "--dataset", "folder", "--protocols", "quality"]
    argv += ["--data_dir", str(tmp_path / "images"), "--out_dir", str(tmp_path / "out")]
    assert evaluate.main(argv) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["feature_dim"] == 48


# -- User errors: one message, exit status 2, nothing written --------------------------------


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "images"
    write_image_folder(root, *colour_images(16, num_classes=2, seed=7))
    return str(root)


def _damaged_export(exported_encoder, folder, damage: str) -> str:
    """A copy of the export with one thing wrong, or another kind of wrong path."""
    import shutil

    if damage == "missing":
        return str(folder / "nowhere" / "encoder")
    if damage == "file":
        (folder / "encoder.keras").write_text("a file, not a folder")
        return str(folder / "encoder.keras")
    if damage == "empty":
        (folder / "empty").mkdir()
        return str(folder / "empty")
    copy = shutil.copytree(exported_encoder, folder / damage)
    if damage == "corrupt":
        (copy / "saved_model.pb").write_bytes(b"\x00garbage" * 32)
    elif damage == "bad_json":
        (copy / "simclr_tf.json").write_text('{"image_size": [8, 8],')
    return str(copy)


def _truncated_cifar10(folder) -> str:
    import pickle

    batches = folder / "cifar-10-batches-py"
    batches.mkdir()
    blob = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10})
    for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        (batches / name).write_bytes(blob[: len(blob) // 2])
    return str(folder)


def _assert_refused(argv, out, capsys, message):
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert not out.exists() or (out.is_file() and out.read_text() == "mine"), "half-written"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "does not exist: pass the folder of an exported encoder"),
        ("file", "is a file, not a folder: pass the folder of an exported encoder"),
        ("empty", "No SavedModel at"),
        ("corrupt", "could not be loaded"),
        ("bad_json", "simclr_tf.json is not valid JSON"),
    ],
)
def test_command_line_refuses_a_bad_encoder_folder(
    damage, message, exported_encoder, image_folder, tmp_path, capsys
):
    encoder = _damaged_export(exported_encoder, tmp_path, damage)
    out = tmp_path / "out"
    argv = ["--encoder", encoder, "--dataset", "folder", "--data_dir", image_folder]
    _assert_refused([*argv, "--protocols", "knn", "--out_dir", str(out)], out, capsys, message)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--protocols", "linear,telepathy"], "unknown: telepathy"),
        (["--protocols", ","], "protocols must be a non-empty list"),
        (["--knn_k", "0"], "knn_k must be an integer >= 1; received knn_k=0"),
        (["--knn_k", "many"], "argument --knn_k: invalid int value: 'many'"),
        (["--label_fractions", "0,abc"], "label_fractions must be comma-separated numbers"),
        (["--label_fractions", "0,0.5"], "label_fractions must be a list of numbers in (0, 1]"),
        (["--batch_size", "0"], "batch_size must be an integer >= 1; received batch_size=0"),
        (["--finetune_epochs", "0"], "epochs must be an integer >= 1"),
        (["--knn_temperature", "-1"], "knn_temperature must be a number > 0"),
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    ],
)
def test_command_line_refuses_bad_flags_before_any_work(
    flags, message, exported_encoder, image_folder, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["--encoder", exported_encoder, "--dataset", "folder", "--data_dir", image_folder]
    _assert_refused([*argv, "--out_dir", str(out), *flags], out, capsys, message)


def test_command_line_refuses_an_unknown_random_encoder_and_a_missing_source(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--random_encoder", "resnet9", "--out_dir", str(out)]
    _assert_refused(argv, out, capsys, "argument --random_encoder: invalid choice: 'resnet9'")
    message = "one of the arguments --encoder --random_encoder is required"
    _assert_refused(["--out_dir", str(out)], out, capsys, message)


def test_command_line_refuses_a_truncated_cifar10_pickle(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--random_encoder", "small_cnn", "--image_size", str(IMAGE_SIZE), "--out_dir"]
    argv += [str(out), "--dataset", "cifar10", "--data_dir", _truncated_cifar10(tmp_path)]
    _assert_refused(argv, out, capsys, "may be truncated or corrupt")


def test_command_line_refuses_a_file_as_the_results_folder(exported_encoder, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("mine")
    argv = ["--encoder", exported_encoder, "--out_dir", str(out)]
    _assert_refused(argv, out, capsys, "is a file; pass a folder")


def test_python_m_simclr_tf_evaluate_exits_2_without_a_traceback(tmp_path):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "simclr_tf.evaluate", "--random_encoder", "small_cnn"]
    argv += ["--knn_k", "0", "--out_dir", str(tmp_path / "out")]
    import simclr_tf

    root = os.path.dirname(os.path.dirname(os.path.abspath(simclr_tf.__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "knn_k must be an integer >= 1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
