"""Tests of simclr_tf.evaluate: every protocol on tiny data, with answers known in advance."""

from __future__ import annotations

import json
import os

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import evaluate
from simclr_tf.evaluate import linear as linear_probe_module
from simclr_tf.export import export_encoder
from simclr_tf.models import build_encoder

IMAGE_SIZE = 8


# -- Fixtures -------------------------------------------------------------------------------


def colour_images(count: int, num_classes: int = 3, seed: int = 0):
    """uint8 images whose class is their dominant colour channel: easy for any encoder."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    images = rng.integers(0, 60, size=(count, IMAGE_SIZE, IMAGE_SIZE, 3))
    images[np.arange(count), :, :, labels % 3] += 180
    return images.astype(np.uint8), labels.astype(np.int64)


def write_image_folder(root, images, labels) -> None:
    """Writes two-class images as PNG files under ``root/red`` and ``root/green``."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / ("red", "green")[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index}.png"), image[..., ::-1])


@pytest.fixture(scope="module")
def tiny_encoder() -> keras.Model:
    keras.utils.set_random_seed(123)
    return build_encoder("small_cnn", IMAGE_SIZE)


@pytest.fixture(scope="module")
def exported_encoder(tiny_encoder, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("run") / "encoder"
    config = {"encoder": "small_cnn", "width": 1, "stem": "auto", "image_size": IMAGE_SIZE}
    return export_encoder(tiny_encoder, path, IMAGE_SIZE, metadata={"config": config})


@pytest.fixture(scope="module")
def tiny_data():
    return colour_images(60, seed=1), colour_images(30, seed=2)


# -- Label-free quality measures ------------------------------------------------------------


def test_alignment_is_zero_for_identical_views_and_four_for_opposite_ones():
    h = tf.random.stateless_normal([16, 8], seed=[1, 2])
    assert float(evaluate.alignment(h, 3.0 * h)) == pytest.approx(0.0, abs=1e-6)
    assert float(evaluate.alignment(h, -h)) == pytest.approx(4.0, abs=1e-5)


def test_uniformity_of_collapsed_and_orthonormal_embeddings():
    collapsed = tf.ones([10, 4])
    assert float(evaluate.uniformity(collapsed)) == pytest.approx(0.0, abs=1e-6)
    # Orthonormal rows: every pair is at squared distance 2, so log E exp(-2 * 2) = -4.
    assert float(evaluate.uniformity(tf.eye(6))) == pytest.approx(-4.0, abs=1e-5)


def test_collapse_indicators():
    collapsed = tf.ones([32, 16]) * [[1.0] + [0.5] * 15]
    spread = tf.random.stateless_normal([4096, 16], seed=[3, 4])
    assert float(evaluate.embedding_std(collapsed)) == pytest.approx(0.0, abs=1e-6)
    assert float(evaluate.embedding_std(spread)) == pytest.approx(1.0 / 4.0, rel=0.05)
    assert float(evaluate.effective_rank(collapsed)) == pytest.approx(1.0, abs=1e-3)
    assert float(evaluate.effective_rank(tf.eye(8) - 1.0 / 8)) == pytest.approx(7.0, rel=1e-3)
    assert float(evaluate.effective_rank(spread)) > 15.0


def test_quality_measures_run_inside_tf_function_on_bfloat16():
    @tf.function
    def measures(h1, h2):
        return (
            evaluate.alignment(h1, h2),
            evaluate.uniformity(h1),
            evaluate.embedding_std(h1),
            evaluate.effective_rank(h1),
        )

    h = tf.cast(tf.random.stateless_normal([12, 6], seed=[5, 6]), tf.bfloat16)
    values = measures(h, h)
    assert all(value.dtype == tf.float32 and value.shape == () for value in values)
    assert all(np.isfinite(value.numpy()) for value in values)


# -- kNN ------------------------------------------------------------------------------------


def test_knn_is_perfect_on_one_hot_features_and_chance_on_random_ones():
    labels = np.arange(200) % 4
    one_hot = np.eye(4, dtype=np.float32)[labels]
    assert evaluate.knn_accuracy(one_hot, labels, one_hot, labels, k=20) == 1.0

    rng = np.random.default_rng(0)
    train, test = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32))
    train_labels, test_labels = rng.integers(0, 4, 2000), rng.integers(0, 4, 2000)
    accuracy = evaluate.knn_accuracy(train, train_labels, test, test_labels, k=50)
    assert abs(accuracy - 0.25) < 0.05


def test_knn_predictions_do_not_depend_on_the_batch_size_and_k_is_clipped():
    rng = np.random.default_rng(1)
    train, test = rng.standard_normal((50, 5)), rng.standard_normal((23, 5))
    labels = rng.integers(0, 3, 50)
    whole = evaluate.knn_predict(train, labels, test, k=500, batch_size=512)
    pieces = evaluate.knn_predict(train, labels, test, k=500, batch_size=4)
    np.testing.assert_array_equal(whole, pieces)


def test_knn_vote_is_weighted_by_similarity():
    # Two neighbours of class 1 that are far, one of class 0 that is very close: with a low
    # temperature the close one wins, with a high temperature the majority does.
    train = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    query = np.array([[1.0, 0.2]], dtype=np.float32)
    assert evaluate.knn_predict(train, labels, query, k=3, temperature=0.05)[0] == 0
    assert evaluate.knn_predict(train, labels, query, k=3, temperature=100.0)[0] == 1


# -- Linear probe ---------------------------------------------------------------------------


def test_linear_probe_is_perfect_on_one_hot_features_and_chance_on_random_ones():
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    features = np.eye(3, dtype=np.float32)[labels] + 0.01 * rng.standard_normal((300, 3))
    result = evaluate.linear_probe(features[:200], labels[:200], features[200:], labels[200:])
    assert result["top1"] == 1.0
    assert set(result["validation_top1"]) == set(linear_probe_module.DEFAULT_C_VALUES)

    train, test = rng.standard_normal((1500, 16)), rng.standard_normal((1500, 16))
    result = evaluate.linear_probe(train, rng.integers(0, 3, 1500), test, rng.integers(0, 3, 1500))
    assert abs(result["top1"] - 1.0 / 3.0) < 0.06


def test_regularisation_is_chosen_without_ever_seeing_the_test_set(monkeypatch):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    train = labels[:, None] + 1.5 * rng.standard_normal((400, 20))
    test = 1000.0 + rng.standard_normal((100, 20))  # recognisable: no training row is near 1000
    seen = []
    original = linear_probe_module.choose_regularization

    def spy(*arrays, **kwargs):
        seen.extend(np.asarray(a) for a in arrays[:4])
        return original(*arrays, **kwargs)

    monkeypatch.setattr(linear_probe_module, "choose_regularization", spy)
    first = evaluate.linear_probe(train, labels, test, rng.integers(0, 2, 100))
    assert seen, "the regularisation was not chosen by choose_regularization"
    for array in seen:
        if array.ndim == 2:
            assert np.abs(array).max() < 100.0, "test features reached the model selection"
    # Whatever the test set, the chosen C is the same: it only depends on the training set.
    second = evaluate.linear_probe(train, labels, -test, 1 - rng.integers(0, 2, 100))
    assert first["c"] == second["c"]
    assert first["validation_top1"] == second["validation_top1"]


def test_validation_split_partitions_and_stratifies():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    fit, validation = evaluate.split_train_validation(labels, 0.1, seed=3)
    assert len(np.intersect1d(fit, validation)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, validation])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(labels[validation]), [1, 2, 3, 4])
    again = evaluate.split_train_validation(labels, 0.1, seed=3)
    np.testing.assert_array_equal(validation, again[1])
    with pytest.raises(ValueError, match="validation_fraction"):
        evaluate.split_train_validation(labels, 1.5)


def test_class_balanced_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(5), 200)
    subset = evaluate.class_balanced_subset(labels, 0.01, seed=7)
    np.testing.assert_array_equal(np.bincount(labels[subset]), [2] * 5)
    np.testing.assert_array_equal(subset, evaluate.class_balanced_subset(labels, 0.01, seed=7))
    assert not np.array_equal(subset, evaluate.class_balanced_subset(labels, 0.01, seed=8))
    with pytest.raises(ValueError, match="fraction"):
        evaluate.class_balanced_subset(labels, 0.0)


# -- Features and encoders ------------------------------------------------------------------


def test_saved_model_and_keras_encoder_give_the_same_features(tiny_encoder, exported_encoder):
    images, _ = colour_images(10)
    from_keras = evaluate.extract_features(tiny_encoder, images, batch_size=4)
    from_export = evaluate.extract_features(exported_encoder, images, batch_size=3)
    assert from_keras.shape == (10, 256) and from_keras.dtype == np.float32
    np.testing.assert_allclose(from_keras, from_export, atol=1e-4)
    assert evaluate.FeatureEncoder(exported_encoder).image_size == (IMAGE_SIZE, IMAGE_SIZE)


def test_feature_cache_is_reused(tiny_encoder, tmp_path):
    images, _ = colour_images(6)
    cache = tmp_path / "cache.npz"
    first = evaluate.extract_features(tiny_encoder, images, cache_path=cache)
    assert cache.is_file()

    class Broken(keras.Model):
        def call(self, inputs):
            raise AssertionError("the cache should have been used")

    np.testing.assert_array_equal(first, evaluate.extract_features(Broken(), images, 4, cache))


def test_images_of_another_size_are_resized(tiny_encoder):
    images = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    assert evaluate.extract_features(tiny_encoder, images).shape == (3, 256)


def test_missing_encoder_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "encoder"
    with pytest.raises(FileNotFoundError, match="encoder=.*nowhere"):
        evaluate.FeatureEncoder(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        evaluate.evaluate_encoder(tmp_path / "empty", protocols=["knn"])


# -- evaluate_encoder ------------------------------------------------------------------------


def test_evaluate_encoder_runs_linear_knn_quality_and_random_init(
    exported_encoder, tiny_data, tmp_path
):
    results = evaluate.evaluate_encoder(
        exported_encoder,
        dataset="tiny",
        protocols=["linear", "knn", "quality", "random_init"],
        data=tiny_data,
        label_fractions=[0.25],
        knn_k=10,
        out_dir=tmp_path,
        command="pytest",
        cache_dir=tmp_path / "cache",
    )
    protocols = results["protocols"]
    # Colour classes are easy: even a random CNN separates them.
    assert protocols["linear"]["top1"] > 0.9
    assert protocols["knn"]["top1"] > 0.9
    assert protocols["random_init"]["fractions"]["0.25"]["num_labels"] == 15
    assert 0.0 <= protocols["quality"]["alignment"] <= 4.0
    assert protocols["quality"]["uniformity"] <= 0.0
    assert results["num_train"] == 60 and results["feature_dim"] == 256
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["protocols"]["knn"]["top1"] == protocols["knn"]["top1"]
    table = (tmp_path / "results.md").read_text()
    assert "Command: `pytest`" in table and "| Linear probe |" in table
    assert "random-init encoder" in table and "Effective rank" in table
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_finetune_protocol_trains_a_copy_and_leaves_the_encoder_alone(tiny_encoder, tiny_data):
    before = [np.array(w) for w in tiny_encoder.get_weights()]
    results = evaluate.evaluate_encoder(
        tiny_encoder,
        dataset="tiny",
        protocols=["finetune"],
        data=tiny_data,
        label_fractions=[0.5],
        finetune_options=evaluate.FinetuneOptions(epochs=1, batch_size=10),
    )
    entry = results["protocols"]["finetune"]["fractions"]["0.5"]
    assert entry["num_labels"] == 30
    for key in ("finetune", "supervised", "linear"):
        assert 0.0 <= entry[key]["top1"] <= 1.0
    assert entry["finetune"]["steps"] == 3  # 30 labels, batches of 10, one epoch
    for old, new in zip(before, tiny_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert "Fine-tuned encoder" in evaluate.format_results_table(results)


def test_encoder_rebuilt_from_an_export_has_its_weights(tiny_encoder, exported_encoder):
    from simclr_tf.evaluate.finetune import keras_copy

    loaded = evaluate.FeatureEncoder(exported_encoder)
    copy = keras_copy(loaded, pretrained=True)
    for a, b in zip(copy.get_weights(), tiny_encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = keras_copy(loaded, pretrained=False, seed=0)
    assert not np.array_equal(fresh.get_weights()[0], tiny_encoder.get_weights()[0])
    same_seed = keras_copy(loaded, pretrained=False, seed=0)
    np.testing.assert_array_equal(fresh.get_weights()[0], same_seed.get_weights()[0])


def test_encoder_with_a_wider_representation_is_rebuilt_from_its_export(tmp_path):
    from simclr_tf.evaluate.finetune import keras_copy

    keras.utils.set_random_seed(7)
    wide = build_encoder("small_cnn", IMAGE_SIZE, representation_dim=64)
    config = {"encoder": "small_cnn", "width": 1, "stem": "auto", "representation_dim": 64}
    path = export_encoder(wide, tmp_path / "encoder", IMAGE_SIZE, metadata={"config": config})
    copy = keras_copy(evaluate.FeatureEncoder(path), pretrained=True)
    assert copy.output_shape == (None, 64)
    for a, b in zip(copy.get_weights(), wide.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_classifier_learns_an_easy_task():
    keras.utils.set_random_seed(0)
    model = build_encoder("small_cnn", IMAGE_SIZE)
    (x_train, y_train), (x_test, y_test) = colour_images(90, seed=3), colour_images(30, seed=4)
    options = evaluate.FinetuneOptions(epochs=8, batch_size=15, learning_rate=0.05)
    result = evaluate.train_classifier(model, x_train, y_train, x_test, y_test, options)
    assert result["top1"] > 0.9


def test_labelled_protocols_on_unlabelled_data_are_refused(tiny_encoder):
    images, _ = colour_images(10)
    with pytest.raises(ValueError, match="need labels"):
        evaluate.evaluate_encoder(
            tiny_encoder, protocols=["knn"], data=((images, None), (images, None))
        )
    with pytest.raises(ValueError, match="protocols must"):
        evaluate.evaluate_encoder(tiny_encoder, protocols=["telepathy"])
    quality = evaluate.evaluate_encoder(
        tiny_encoder, protocols=["quality"], data=((images, None), (images, None))
    )
    assert "quality" in quality["protocols"]


def test_command_line_on_an_image_folder(exported_encoder, tmp_path, capsys):
    write_image_folder(tmp_path / "images", *colour_images(40, num_classes=2, seed=5))
    run_dir = os.path.dirname(exported_encoder)
    with open(os.path.join(run_dir, "metrics.csv"), "w") as handle:
        handle.write("epoch,step,loss,contrastive_accuracy,probe_accuracy\n1,5,4.0,0.1,\n")
    out = tmp_path / "out"
    argv = ["--encoder", exported_encoder, "--dataset", "folder", "--data_dir"]
    argv += [str(tmp_path / "images"), "--protocols", "linear,knn", "--knn_k", "5"]
    argv += ["--out", str(out), "--figures"]
    results = evaluate.main(argv)
    names = ("tsne.png", "retrieval.png", "training_curves.png", "projector/sprite.png")
    for name in names:
        with open(out / "figures" / name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n", name
    assert set(results["figures"]) == {"tsne", "retrieval", "projector", "training_curves"}
    assert results["num_train"] == 32 and results["num_test"] == 8
    assert results["protocols"]["knn"]["top1"] == 1.0
    assert "| Weighted kNN |" in capsys.readouterr().out
    assert os.path.isfile(out / "results.json")
    assert json.loads((out / "results.json").read_text())["command"].startswith(
        "python -m simclr_tf.evaluate --encoder"
    )


def test_command_line_random_encoder_with_a_wider_representation(tmp_path):
    write_image_folder(tmp_path / "images", *colour_images(24, num_classes=2, seed=6))
    argv = ["--random_encoder", "small_cnn", "--representation_dim", "48"]
    argv += ["--image_size", str(IMAGE_SIZE), "--dataset", "folder", "--protocols", "quality"]
    argv += ["--data_dir", str(tmp_path / "images"), "--out", str(tmp_path / "out")]
    results = evaluate.main(argv)
    assert results["feature_dim"] == 48


def test_linear_probe_with_one_label_per_class_uses_the_grid_middle():
    rng = np.random.default_rng(0)
    labels = np.arange(10)
    features = np.eye(10, dtype=np.float32)[labels] + 0.01 * rng.normal(size=(10, 10))
    result = evaluate.linear_probe(features, labels, features, labels, c_values=(0.01, 0.1, 1.0))
    assert result["c"] == 0.1
    assert result["validation_top1"] == {}
    assert result["top1"] == 1.0
