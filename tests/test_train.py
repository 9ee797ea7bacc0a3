"""The training loop: one step on every precision and strategy, the run directory, exact resume
after a kill, divergence handling, and the command line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import pretrainer, train
from simclr_tf.augment import two_views
from simclr_tf.config import preset
from simclr_tf.data.sources import ArrayImages


def _images(count: int = 64, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count).astype(np.int32)
    return images, labels


def _config(tmp_path, **overrides):
    values = {"image_size": 16, "batch_size": 16, "out_dir": str(tmp_path / "run")}
    return preset("smoke", **{**values, **overrides})


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fit_writes_the_run_directory(tmp_path):
    images, labels = _images()
    config = _config(tmp_path, steps=0, epochs=2, checkpoint_every=3)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
    rows = trainer.fit(images, labels)
    assert trainer.steps_per_epoch == 4
    assert [row["epoch"] for row in rows] == [1, 2]
    assert int(trainer.step.numpy()) == 8
    run = tmp_path / "run"
    assert [int(r["step"]) for r in _read_csv(run / "steps.csv")] == list(range(1, 9))
    epochs = _read_csv(run / "metrics.csv")
    assert list(epochs[0]) == list(train.METRIC_COLUMNS)
    for row in epochs:
        for name in ("loss", "contrastive_accuracy", "probe_accuracy", "alignment", "uniformity"):
            assert np.isfinite(float(row[name])), name
    checkpoints = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith("ckpt-8")
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run / "logs"))


def test_unlabeled_data_trains_without_probe(tmp_path):
    images, _ = _images()
    config = _config(tmp_path)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=None)
    assert trainer.probe is None
    rows = trainer.fit(images, None)
    assert np.isnan(rows[0]["probe_accuracy"])
    assert np.isfinite(rows[0]["loss"])


def test_a_callback_can_stop_training_and_the_epoch_is_closed(tmp_path):
    images, labels = _images()
    config = _config(tmp_path, steps=0, epochs=3)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)

    def stop_after_six(step, metrics):
        if step == 6:
            trainer.stop_training = True

    rows = trainer.fit(images, labels, callbacks=[stop_after_six])
    assert int(trainer.step.numpy()) == 6
    assert [(row["epoch"], row["step"]) for row in rows] == [(1, 4), (2, 6)]
    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith("ckpt-6")


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step(tmp_path, precision):
    images, labels = _images(32)
    config = _config(tmp_path, precision=precision)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
    metrics = trainer.train_step(images[:16], labels[:16])
    assert np.isfinite(metrics["loss"])
    assert trainer.encoder.output.dtype == "float32"
    # The policy is restored for models built afterwards.
    import keras

    assert keras.config.dtype_policy().name == "float32"


def test_views_smaller_than_the_images(tmp_path):
    """view_size_ratio=0.5 trains on 8x8 crops; the encoder keeps its declared 16x16 input."""
    images, labels = _images(32)
    config = _config(tmp_path, view_size_ratio=0.5)
    assert config.view_size == 8
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
    assert trainer.augment_config.output_size == 8
    assert trainer.encoder.input_shape == (None, 16, 16, 3)
    view1, view2 = two_views(images[:4], config.seed, 0, trainer.augment_config)
    assert view1.shape == view2.shape == (4, 8, 8, 3)
    metrics = trainer.train_step(images[:16], labels[:16])
    assert np.isfinite(metrics["loss"])
    # The trained encoder still embeds whole images of its declared size.
    assert trainer.encoder(images[:2] / 255.0, training=False).shape == (2, 256)
    # At the default ratio of 1 the views have the size of the images.
    assert _config(tmp_path).augment_config().output_size is None
    assert _config(tmp_path, image_size=32, view_size_ratio=0.75).view_size == 24


def test_jit_compiled_step_matches_eager_loss(tmp_path):
    images, labels = _images(32)
    results = []
    for jit in (False, True):
        config = _config(tmp_path, jit_compile=jit, out_dir=str(tmp_path / f"jit{jit}"))
        trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
        results.append(trainer.train_step(images[:16], labels[:16])["loss"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_two_replicas_match_one_device(tmp_path, two_replicas):
    """Global batch over 2 logical CPUs, all-gathered negatives and synchronised BatchNorm give
    the same loss and the same updated weights as one device on the same batch, with the real
    augmentation (each image's views depend on its place in the global batch, not on the
    replica that holds it)."""
    images, labels = _images(32)
    results = []
    one_cpu = tf.distribute.OneDeviceStrategy("/cpu:0")  # also on a machine with a GPU
    for name, strategy in (("one", one_cpu), ("two", two_replicas)):
        # Plain SGD: the weight change is the gradient itself (Adam's first step would turn
        # float rounding in near-zero gradients into full-size sign flips).
        config = _config(tmp_path, optimizer="sgd", lr=0.5, out_dir=str(tmp_path / name))
        trainer = train.Pretrainer(config, len(images), num_classes=10, strategy=strategy)
        batch = tf.data.Dataset.from_tensor_slices((images[:16], labels[:16])).batch(16)
        distributed = next(iter(trainer.strategy.experimental_distribute_dataset(batch)))
        metrics = trainer.train_step(*distributed)
        kernel = trainer.encoder.trainable_variables[0]
        results.append((trainer.num_replicas, metrics["loss"], np.array(kernel.numpy())))
    (one, loss_one, weights_one), (two, loss_two, weights_two) = results
    assert (one, two) == (1, 2)
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
    np.testing.assert_allclose(weights_two, weights_one, atol=1e-6)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    images, labels = _images()
    config = _config(tmp_path, steps=4, checkpoint_every=1)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
    real_loss = pretrainer.nt_xent_loss

    def loss_that_diverges(z1, z2, temperature):
        loss, accuracy = real_loss(z1, z2, temperature)
        poisoned = tf.where(trainer.step >= 2, tf.constant(float("nan")), loss)
        return poisoned, accuracy

    monkeypatch.setattr(pretrainer, "nt_xent_loss", loss_that_diverges)
    with pytest.raises(train.TrainingDivergedError, match="step 3"):
        trainer.fit(images, labels)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest.endswith("ckpt-2")
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if reader.get_variable_to_dtype_map()[name].is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from simclr_tf import pretrainer, train
    from simclr_tf.config import preset

    out_dir, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=64).astype(np.int32)
    config = preset("smoke", image_size=16, batch_size=16, steps=0, epochs=3,
                    checkpoint_every=3, out_dir=out_dir, resume=resume)
    trainer = train.Pretrainer(config, num_examples=64, num_classes=10)

    def kill(step, metrics):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.fit(images, labels, callbacks=[kill])
    """
)


@pytest.mark.slow
def test_killed_and_resumed_run_repeats_the_same_losses(tmp_path):
    script = tmp_path / "run_training.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def run(out_dir, kill_at, resume):
        return subprocess.run(
            [sys.executable, str(script), str(out_dir), str(kill_at), "1" if resume else "0"],
            env=env,
            capture_output=True,
            text=True,
        )

    whole = run(tmp_path / "whole", 0, False)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = run(tmp_path / "killed", 8, False)  # last checkpoint: step 6, steps 7-8 are lost
    assert killed.returncode == -9
    assert int(_read_csv(tmp_path / "killed" / "steps.csv")[-1]["step"]) == 8
    resumed = run(tmp_path / "killed", 0, True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = _read_csv(tmp_path / "whole" / "steps.csv")
    got = _read_csv(tmp_path / "killed" / "steps.csv")
    assert [row["step"] for row in got] == [str(step) for step in range(1, 13)]
    for want, have in zip(expected, got, strict=True):
        assert have["loss"] == want["loss"], (want, have)
        assert have["contrastive_accuracy"] == want["contrastive_accuracy"]


def test_pretrain_refuses_to_overwrite_a_run(tmp_path, monkeypatch):
    images, labels = _images()
    monkeypatch.setattr(train, "load_training_images", lambda config: ArrayImages(images, labels))
    config = _config(tmp_path, steps=2)
    result = train.pretrain(config)
    assert os.path.isfile(os.path.join(result.encoder_path, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="--resume"):
        train.pretrain(config)
    with pytest.raises(ValueError, match=r"--width=2 \(the run has 1\)"):
        train.pretrain(config.replace(resume=True, width=2))


def test_batch_larger_than_data_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="larger than the data set"):
        train.Pretrainer(_config(tmp_path, batch_size=128), num_examples=64)


def test_pretrain_streams_an_image_folder(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for index in range(12):
            image = rng.integers(0, 256, size=(20 + index, 24, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{index}.png"), image)
    config = _config(tmp_path, dataset="folder", data_dir=str(tmp_path / "images"), batch_size=8)
    result = train.pretrain(config)
    assert result.pretrainer.probe is not None  # two classes found: the online probe runs
    assert result.pretrainer.steps_per_epoch == 3
    assert np.isfinite(result.epochs[-1]["loss"])
    assert os.path.isfile(os.path.join(result.encoder_path, "saved_model.pb"))


def test_metrics_csv_and_evaluation_measure_the_same_alignment(tmp_path):
    """The alignment and uniformity logged by the training loop are the ones the evaluation
    reports for the exported encoder, on the same images: one definition, the run's own
    augmentation (here crop area from 0.5 and 12-px views of 16-px images)."""
    from simclr_tf import evaluate
    from simclr_tf.export import export_encoder

    images, labels = _images(count=64)
    config = _config(tmp_path, crop_min_area=0.5, view_size_ratio=0.75, precision="float32")
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
    trainer.fit(images, labels)
    logged = trainer.representation_quality(images[:32])
    path = export_encoder(
        trainer.encoder, str(tmp_path / "encoder"), 16, metadata={"config": config.to_dict()}
    )
    results = evaluate.evaluate_encoder(
        path,
        protocols=("quality",),
        data=((images, labels), (images[:32], labels[:32])),
        seed=config.seed,
    )
    reported = results["protocols"]["quality"]
    for name in ("alignment", "uniformity", "embedding_std"):
        assert reported[name] == pytest.approx(logged[name], rel=1e-3, abs=1e-5), name


def test_several_steps_per_call_train_exactly_like_one(tmp_path):
    """steps_per_execution runs k steps in one compiled call; the steps, their losses and the
    checkpoints are those of one step per call."""
    images, labels = _images()
    losses = []
    for k in (1, 3):
        config = _config(
            tmp_path,
            steps=0,
            epochs=2,
            checkpoint_every=4,
            steps_per_execution=k,
            optimizer="sgd",
            out_dir=str(tmp_path / f"k{k}"),
        )
        trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)
        seen: list[int] = []
        trainer.fit(images, labels, callbacks=[lambda step, metrics, seen=seen: seen.append(step)])
        assert seen == list(range(1, 9))
        rows = _read_csv(tmp_path / f"k{k}" / "steps.csv")
        losses.append([float(row["loss"]) for row in rows])
        names = os.listdir(tmp_path / f"k{k}" / "checkpoints")
        assert "ckpt-4.index" in names and "ckpt-8.index" in names
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
