"""The main job: pretrain, export, evaluate against random weights, plots, summary; and it
continues the run already in its folder instead of refusing or overwriting it."""

from __future__ import annotations

import json
import os

import numpy as np

from simclr_tf import evaluate, pipeline, train
from simclr_tf.data.sources import ArrayImages


def _data(count: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(count) % 10
    return images, labels


def test_main_job_writes_every_artefact_and_reuses_the_run(tmp_path, monkeypatch, capsys):
    train_split, test_split = _data(200, 0), _data(40, 1)
    monkeypatch.setattr(train, "load_training_images", lambda config: ArrayImages(*train_split))
    monkeypatch.setattr(
        evaluate, "load_evaluation_data", lambda *args, **kwargs: (train_split, test_split)
    )
    out_dir = str(tmp_path / "run")
    argv = [
        "--preset=smoke",
        f"--out_dir={out_dir}",
        "--steps=2",
        "--protocols=linear,knn,random_init",
    ]
    assert pipeline.main(argv) == 0
    summary = capsys.readouterr().out
    assert "Linear probe, random-init encoder" in summary
    # The sample at 32 px is what the repository's pretrained encoder was also measured on.
    assert "For comparison: the pretrained encoder in pretrained/cifar10-cpu" in summary
    with open(os.path.join(out_dir, "evaluation", "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    assert set(results["protocols"]) == {"linear", "knn", "random_init"}
    assert results["command"].startswith("python -m simclr_tf.pipeline --preset=smoke")
    for name in ("training_curves.png", "retrieval.png", "tsne.png"):
        with open(os.path.join(out_dir, "plots", name), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n", name
    assert os.path.isfile(os.path.join(out_dir, "plots", "projector", "projector_config.pbtxt"))
    assert os.path.isfile(os.path.join(out_dir, "encoder", "saved_model.pb"))

    # Running the same command again continues the finished run: no new steps, same encoder.
    steps_before = open(os.path.join(out_dir, "steps.csv"), encoding="utf-8").read()
    assert pipeline.main(argv) == 0
    assert open(os.path.join(out_dir, "steps.csv"), encoding="utf-8").read() == steps_before


def test_main_job_refuses_another_architecture_in_the_same_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "load_training_images", lambda config: ArrayImages(*_data(64, 0)))
    out_dir = str(tmp_path / "run")
    train.pretrain(train.config_from_args(["--preset=smoke", f"--out_dir={out_dir}", "--steps=1"]))
    assert pipeline.main(["--preset=smoke", f"--out_dir={out_dir}", "--width=2"]) == 2
    assert "--width=2 (the run has 1)" in capsys.readouterr().err


def test_main_job_checks_its_protocols_before_pretraining(tmp_path, monkeypatch, capsys):
    def pretrain(config):
        raise AssertionError("pretraining started before --protocols was checked")

    monkeypatch.setattr(train, "pretrain", pretrain)
    out_dir = tmp_path / "run"
    argv = ["--preset=smoke", f"--out_dir={out_dir}", "--protocols=linear,telepathy"]
    assert pipeline.main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown: telepathy" in err and "Traceback" not in err
    assert not out_dir.exists()


def test_main_job_runs_end_to_end_on_an_image_folder(tmp_path, capsys):
    """--dataset folder: pretraining streams the folder, the evaluation reads it at the
    encoder's size (it once got no image size and failed after the pretraining)."""
    import cv2

    rng = np.random.default_rng(0)
    for label, name in enumerate(("cats", "dogs")):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for index in range(24):
            image = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
            image[..., label] = 255  # one colour channel saturated per class
            cv2.imwrite(str(folder / f"{index}.png"), image)
    out_dir = tmp_path / "run"
    code = pipeline.main(
        [
            "--preset=smoke",
            "--dataset=folder",
            f"--data_dir={tmp_path / 'photos'}",
            "--image_size=16",
            "--batch_size=16",
            "--protocols=linear,knn,quality",
            f"--out_dir={out_dir}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    results = json.loads((out_dir / "evaluation" / "results.json").read_text())
    assert results["dataset"] == "folder"
    assert {"linear", "knn", "quality"} <= set(results["protocols"])
