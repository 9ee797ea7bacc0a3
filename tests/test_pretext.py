"""Pretext-task baselines: each task's pieces against NumPy, the trainer's fairness, the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import pretext
from simclr_tf.config import preset
from simclr_tf.data.sources import ArrayImages
from simclr_tf.evaluate.features import FeatureEncoder
from simclr_tf.pretext.__main__ import main as pretext_main
from simclr_tf.pretrainer import Pretrainer


def _images(count: int = 64, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    return images, (np.arange(count) % 4).astype(np.int32)


def _config(**overrides):
    values = {"dataset": "sample", "epochs": 1, "steps": 0, "batch_size": 16, "verbose": 0}
    return preset("smoke", **{**values, **overrides})


# -- rotation -------------------------------------------------------------------------------


def test_rotate_batch_matches_numpy_rot90_with_labels_in_blocks():
    images = np.random.default_rng(1).random((3, 5, 5, 2)).astype(np.float32)
    rotated, labels = pretext.rotate_batch(tf.constant(images))
    rotated = rotated.numpy()
    for k in range(4):
        expected = np.rot90(images, k, axes=(1, 2))
        np.testing.assert_array_equal(rotated[3 * k : 3 * k + 3], expected)
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(4), 3))


def test_rotate_batch_refuses_non_square_images():
    with pytest.raises(ValueError, match="square"):
        pretext.rotate_batch(tf.zeros([2, 4, 6, 3]))


def test_classification_loss_matches_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 7)
    loss, accuracy = pretext.classification_loss(tf.constant(logits), tf.constant(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -np.mean([log_softmax[i, labels[i]] for i in range(7)])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean(logits.argmax(1) == labels))


# -- inpainting -----------------------------------------------------------------------------


def test_block_masks_hide_one_square_block_per_image_inside_the_image():
    masks = pretext.block_masks(50, 12, 5, tf.constant([3, 4], tf.int64)).numpy()[..., 0]
    assert masks.shape == (50, 12, 12)
    corners = set()
    for mask in masks:
        rows, cols = np.nonzero(mask)
        assert len(rows) == 25
        assert rows.max() - rows.min() == 4 and cols.max() - cols.min() == 4
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 10  # positions vary from image to image


def test_block_masks_are_a_function_of_the_seed():
    def draw(seed):
        return pretext.block_masks(8, 16, 8, tf.constant(seed, tf.int64)).numpy()

    np.testing.assert_array_equal(draw([1, 2]), draw([1, 2]))
    assert not np.array_equal(draw([1, 2]), draw([1, 3]))


@pytest.mark.parametrize("block", [0, 13])
def test_block_masks_refuse_blocks_that_do_not_fit(block):
    with pytest.raises(ValueError, match="block must be in"):
        pretext.block_masks(2, 12, block, tf.constant([0, 0], tf.int64))


def test_weighted_reconstruction_loss_matches_a_numpy_loop():
    rng = np.random.default_rng(3)
    images = rng.random((2, 4, 4, 3)).astype(np.float32)
    reconstruction = rng.random((2, 4, 4, 3)).astype(np.float32)
    masks = np.zeros((2, 4, 4, 1), np.float32)
    masks[0, :2, :2] = 1
    masks[1, 1:3, 2:] = 1
    loss, masked_mse = pretext.weighted_reconstruction_loss(
        tf.constant(reconstruction), tf.constant(images), tf.constant(masks)
    )
    total = weights = hidden = hidden_count = 0.0
    for b in range(2):
        for y in range(4):
            for x in range(4):
                weight = 0.99 if masks[b, y, x, 0] else 0.01
                for c in range(3):
                    error = (reconstruction[b, y, x, c] - images[b, y, x, c]) ** 2
                    total += weight * error
                    weights += weight
                    if masks[b, y, x, 0]:
                        hidden += error
                        hidden_count += 1
    assert float(loss) == pytest.approx(total / weights, rel=1e-5)
    assert float(masked_mse) == pytest.approx(hidden / hidden_count, rel=1e-5)


def test_inpainting_batch_fills_the_block_and_keeps_the_clean_target():
    task = pretext.Inpainting(block_fraction=0.5)
    views = tf.random.stateless_uniform([4, 16, 16, 3], [0, 1])
    damaged, targets = task.make_batch(views, tf.zeros([4], tf.int32), tf.constant([5, 6]))
    masks = targets[..., 3:]
    np.testing.assert_allclose(targets[..., :3], views)
    np.testing.assert_allclose(tf.boolean_mask(damaged, masks[..., 0] > 0), 0.5)
    np.testing.assert_allclose(damaged * (1 - masks), views * (1 - masks))
    assert float(tf.reduce_sum(masks)) == 4 * 8 * 8


def test_inpainting_decoder_paints_whole_views_and_refuses_odd_sizes():
    head = pretext.Inpainting(decoder_width=16).build_head(32, 24, 10)
    assert head(tf.zeros([2, 32])).shape == (2, 24, 24, 3)
    with pytest.raises(ValueError, match="multiple of 8"):
        pretext.Inpainting().build_head(32, 20, 10)


# -- the trainer ----------------------------------------------------------------------------


def test_task_names_and_unknown_task():
    assert set(pretext.TASKS) == {"rotation", "inpainting", "supervised"}
    with pytest.raises(ValueError, match="received task='jigsaw'"):
        pretext.task("jigsaw")


def test_pretext_augmentation_is_the_runs_crop_and_flip_without_colour():
    config = _config(crop_min_area=0.3)
    augment = pretext.pretext_augment_config(config)
    assert augment.crop_area == (0.3, 1.0)
    assert augment.output_size == config.augment_config().output_size
    assert augment.color_prob == augment.grayscale_prob == augment.blur_prob == 0.0


def test_every_method_starts_from_simclrs_initial_encoder():
    config = _config()
    simclr = Pretrainer(config, 64)
    trainer = pretext.PretextTrainer(config, pretext.task("rotation"), 64)
    for ours, theirs in zip(trainer.encoder.weights, simclr.encoder.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("name", ["rotation", "inpainting", "supervised"])
def test_training_is_reproducible_and_stops_at_total_steps(name):
    images, labels = _images()
    config = _config(epochs=2, steps=5)

    def run():
        trainer = pretext.PretextTrainer(config, pretext.task(name), len(images), 4)
        losses = []
        rows = trainer.fit(ArrayImages(images, labels), [lambda s, m: losses.append(m["loss"])])
        return trainer, rows, losses

    trainer, rows, losses = run()
    assert int(trainer.step.numpy()) == 5 and len(losses) == 5
    assert [row["epoch"] for row in rows] == [1, 2] and rows[-1]["step"] == 5
    assert pretext.TASKS[name].metric in rows[0] and np.isfinite(losses).all()
    assert run()[2] == losses


def test_a_callback_can_stop_the_run():
    images, labels = _images()
    trainer = pretext.PretextTrainer(_config(epochs=3), pretext.task("supervised"), 64, 4)

    def stop(step, metrics):
        trainer.stop_training = step >= 2

    rows = trainer.fit(ArrayImages(images, labels), [stop])
    assert int(trainer.step.numpy()) == 2 and len(rows) == 1


def test_supervised_reference_learns_labels_of_separable_images():
    """A sanity check that the loop optimises: four flat colours are learnt within 30 steps."""
    colours = np.array([[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]], np.uint8)
    labels = np.arange(64) % 4
    images = np.broadcast_to(colours[labels][:, None, None, :], (64, 32, 32, 3)).copy()
    config = _config(epochs=30, lr=1e-2, warmup_epochs=0.0)
    trainer = pretext.PretextTrainer(config, pretext.task("supervised"), 64, 4)
    rows = trainer.fit(ArrayImages(images, labels))
    assert rows[-1]["train_accuracy"] > 0.9 > rows[0]["train_accuracy"]


# -- command line ---------------------------------------------------------------------------


def test_cli_trains_and_exports_an_encoder_the_evaluation_reads(tmp_path, capsys):
    out_dir = tmp_path / "rotation"
    flags = ["--preset=smoke", "--dataset=sample", "--epochs=1", "--steps=2"]
    code = pretext_main(["--task=rotation", *flags, f"--out_dir={out_dir}"])
    assert code == 0, capsys.readouterr().err
    assert "python -m simclr_tf.evaluate --encoder" in capsys.readouterr().out
    assert json.loads((out_dir / "config.json").read_text())["pretext_task"] == "rotation"
    assert (out_dir / "metrics.csv").read_text().startswith("epoch,step,loss,rotation_accuracy")
    encoder = FeatureEncoder(str(out_dir / "encoder"))
    assert encoder.metadata["pretext_task"] == "rotation"
    assert encoder(np.zeros([2, 32, 32, 3], np.uint8)).shape[0] == 2


def test_cli_refuses_a_used_out_dir_and_leaves_it_alone(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code = pretext_main(["--task=rotation", "--preset=smoke", f"--out_dir={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out_dir=") and "Traceback" not in err
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_cli_rejects_an_unknown_task_with_a_usage_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pretext_main(["--task=jigsaw", "--preset=smoke"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'jigsaw'" in capsys.readouterr().err


def test_cli_removes_an_interrupted_run(tmp_path, monkeypatch, capsys):
    def interrupt(self, source, callbacks=()):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretext.PretextTrainer, "fit", interrupt)
    out_dir = tmp_path / "run"
    code = pretext_main(["--task=inpainting", "--preset=smoke", f"--out_dir={out_dir}"])
    assert code == 130 and not out_dir.exists()
