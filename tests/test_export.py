"""The exported encoder: a SavedModel that needs TensorFlow only and cannot be fed the wrong
pixels, a ``.keras`` file to fine-tune, a TFLite model with the same numbers, all written
atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import export

SIZE = 16


def _tiny_encoder(image_size: int = SIZE, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    encoder = keras.Model(inputs, x, name="encoder")
    # Moving statistics other than (0, 1), so that inference-mode BatchNorm is really tested.
    rng = np.random.default_rng(seed)
    bn = encoder.layers[2]
    bn.moving_mean.assign(rng.normal(0.0, 0.1, 8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 8).astype("float32"))
    return encoder


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


def _h(encoder: keras.Model, images: np.ndarray) -> np.ndarray:
    return encoder(images.astype("float32") / 255.0, training=False).numpy()


def _run_tensorflow_only(script: str, cwd) -> None:
    """Runs ``script`` in a new Python process that must not import simclr_tf.

    (``import tensorflow`` imports Keras itself, so Keras cannot be checked for.)
    """
    script = textwrap.dedent(script) + textwrap.dedent(
        """
        assert "simclr_tf" not in sys.modules, "the SavedModel needed simclr_tf"
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_reload_without_simclr_tf_matches_in_memory_encoder(tmp_path):
    encoder = _tiny_encoder()
    path = export.export_encoder(encoder, tmp_path / "encoder", SIZE, include_tflite=False)
    images = _images(7)
    np.save(tmp_path / "images.npy", images)
    _run_tensorflow_only(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({path!r})
        images = np.load("images.npy")
        np.save("h1.npy", model.serve(images[:1]).numpy())
        np.save("h.npy", model.serve(images).numpy())
        np.save("h_float.npy", model.serve_float(images.astype(np.float32) / 255.0).numpy())
        signature = model.signatures["serving_default"](images=tf.constant(images))
        np.save("sig.npy", signature["output_0"].numpy())
        # The weights are reachable, as in a Keras export (simclr_tf.evaluate.rebuild reads them).
        assert len(model.variables) == 6 and len(model.trainable_variables) == 4
        assert any("moving_mean" in v.name for v in model.non_trainable_variables)
        """,
        tmp_path,
    )
    expected = _h(encoder, images)
    # Same graph, same float32 weights: only summation order can differ.
    for name, rows in (("h", 7), ("h1", 1), ("sig", 7), ("h_float", 7)):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected[:rows], atol=1e-5)


def test_serving_contract_cannot_be_misused(tmp_path):
    """Issue #14 item 7: floats, wrapping ints, other sizes are refused; 0 images give [0, D]."""
    path = export.export_encoder(
        _tiny_encoder(), tmp_path / "encoder", SIZE, include_keras=False, include_tflite=False
    )
    np.save(tmp_path / "images.npy", _images(3))
    _run_tensorflow_only(
        f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({path!r})
        pixels = np.load("images.npy")
        unit = pixels.astype(np.float32) / 255.0
        calls = {{
            "serve float32 numpy": lambda: model.serve(unit),
            "serve float64 numpy": lambda: model.serve(unit.astype(np.float64)),
            "serve int32 numpy": lambda: model.serve(pixels.astype(np.int32) + 200),
            "serve float32 tensor": lambda: model.serve(tf.constant(unit)),
            "serve other size": lambda: model.serve(np.zeros((1, 8, 8, 3), np.uint8)),
            "serve one image without batch axis": lambda: model.serve(pixels[0]),
            "serve empty batch": lambda: model.serve(np.zeros((0, {SIZE}, {SIZE}, 3), np.uint8)),
            "serve_float float64": lambda: model.serve_float(unit.astype(np.float64)),
            "serve_float float16": lambda: model.serve_float(unit.astype(np.float16)),
            "serve_float 0..255 floats": lambda: model.serve_float(pixels.astype(np.float32)),
            "serve_float uint8": lambda: model.serve_float(pixels),
            "serve_float empty batch": lambda: model.serve_float(np.zeros((0, {SIZE}, {SIZE}, 3))),
            "signature float32 tensor": lambda: model.signatures["serving_default"](
                images=tf.constant(unit)
            )["output_0"],
            "signature serve_float": lambda: model.signatures["serve_float"](
                images=tf.constant(unit)
            )["output_0"],
        }}
        outcome = {{"reference": model.serve(pixels).numpy().tolist()}}
        for name, call in calls.items():
            try:
                outcome[name] = {{"shape": list(call().shape), "h": None}}
                outcome[name]["h"] = call().numpy().tolist()
            except (tf.errors.InvalidArgumentError, TypeError, ValueError) as error:
                outcome[name] = {{"error": str(error)}}
        with open("outcome.json", "w") as handle:
            json.dump(outcome, handle)
        """,
        tmp_path,
    )
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    reference = np.array(outcome.pop("reference"))

    def refused(name: str, *phrases: str) -> None:
        assert "error" in outcome[name], f"{name} was accepted: {outcome[name].get('shape')}"
        for phrase in phrases:
            assert phrase in outcome[name]["error"], (name, outcome[name]["error"][:500])

    refused("serve float32 numpy", "serve takes uint8", "received dtype float32", "serve_float")
    refused("serve float64 numpy", "received dtype float64")
    refused("serve int32 numpy", "received dtype int32")
    refused("serve float32 tensor", "received dtype float32")
    refused("serve other size", f"[N, {SIZE}, {SIZE}, 3]", "received shape", "[1 8 8 3]")
    refused("serve one image without batch axis", "add a batch axis", f"[{SIZE} {SIZE} 3]")
    refused("serve_float 0..255 floats", "values in [0, 1]", "divide 0..255 pixels by 255")
    refused("serve_float uint8", "serve_float takes float", "received dtype uint8", "call serve")
    refused("signature float32 tensor", "uint8")
    assert outcome["serve empty batch"]["shape"] == [0, 8]
    assert outcome["serve_float empty batch"]["shape"] == [0, 8]
    for name in ("serve_float float64", "signature serve_float"):
        np.testing.assert_allclose(np.array(outcome[name]["h"]), reference, atol=1e-5)
    # float16 rounds the images themselves (11-bit mantissa): h moves by about that much.
    np.testing.assert_allclose(np.array(outcome["serve_float float16"]["h"]), reference, atol=1e-2)


def test_keras_file_loads_for_fine_tuning(tmp_path):
    encoder = _tiny_encoder()
    path = export.export_encoder(encoder, tmp_path / "encoder", SIZE, include_tflite=False)
    loaded = keras.saving.load_model(os.path.join(path, export.KERAS_FILE))
    images = _images(8).astype("float32") / 255.0
    np.testing.assert_array_equal(
        loaded(images, training=False).numpy(), encoder(images, training=False).numpy()
    )
    # One training step of a classifier on top moves the encoder's weights.
    classifier = keras.Sequential([loaded, keras.layers.Dense(2)])
    classifier.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [weight.copy() for weight in loaded.get_weights()]
    classifier.fit(images, np.ones((8, 2), "float32"), batch_size=8, epochs=1, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, loaded.get_weights(), strict=True)]
    assert any(changed)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_tflite_matches_the_saved_model(tmp_path, precision):
    keras.mixed_precision.set_global_policy(precision)
    try:
        from simclr_tf.models import build_encoder

        encoder = build_encoder("small_cnn", SIZE)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    path = export.export_encoder(encoder, tmp_path / "encoder", SIZE, include_keras=False)
    images = _images(5)
    saved_model = tf.saved_model.load(path)  # keep a reference: its variables die with it
    saved_model_h = saved_model.serve(images).numpy()
    interpreter = tf.lite.Interpreter(model_path=os.path.join(path, export.TFLITE_FILE))
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inputs["dtype"] == np.uint8 and list(inputs["shape_signature"]) == [-1, SIZE, SIZE, 3]
    interpreter.resize_tensor_input(inputs["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs["index"], images)
    interpreter.invoke()
    tflite_h = interpreter.get_tensor(outputs["index"])
    largest = float(np.abs(tflite_h - saved_model_h).max())
    scale = float(np.abs(saved_model_h).max())
    print(f"{precision}: largest |h_tflite - h_savedmodel| = {largest:.2e} (max |h| {scale:.2f})")
    # float32: the same arithmetic in another order. mixed_bfloat16: the SavedModel computes in
    # bfloat16 (8-bit mantissa, relative steps of 2^-8), TFLite in float32.
    assert largest <= (1e-5 if precision == "float32" else 2**-6) * max(scale, 1.0)


def test_metadata_records_the_signature(tmp_path):
    path = export.export_encoder(
        _tiny_encoder(),
        tmp_path / "encoder",
        image_size=SIZE,
        metadata={"config": {"seed": 3}},
        include_keras=False,
        include_tflite=False,
    )
    facts = export.read_export_metadata(path)
    assert facts["image_size"] == [SIZE, SIZE]
    assert facts["endpoint"] == "serve"
    assert set(facts["endpoints"]) == {"serve", "serve_float"}
    assert facts["files"] == {}
    assert facts["config"] == {"seed": 3}
    assert "[None, 8]" in facts["output"]
    with open(os.path.join(path, export.METADATA_FILE), encoding="utf-8") as handle:
        assert json.load(handle) == facts
    assert sorted(os.listdir(path)) == sorted(
        ["assets", "fingerprint.pb", "saved_model.pb", "simclr_tf.json", "variables"]
    )


def test_interrupted_export_leaves_previous_model_intact(tmp_path, monkeypatch):
    target = tmp_path / "encoder"
    export.export_encoder(_tiny_encoder(), target, SIZE, include_tflite=False)
    before = sorted(os.listdir(target))

    def broken_save(obj, export_dir, **kwargs):
        os.makedirs(os.path.join(export_dir, "variables"), exist_ok=True)
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as handle:
            handle.write(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        export.export_encoder(_tiny_encoder(), target, SIZE, include_tflite=False)
    assert sorted(os.listdir(target)) == before
    assert export.read_export_metadata(target)["image_size"] == [SIZE, SIZE]
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".")]
    assert leftovers == []


def test_refuses_to_overwrite_when_asked(tmp_path):
    options = {"include_keras": False, "include_tflite": False}
    export.export_encoder(_tiny_encoder(), tmp_path / "encoder", SIZE, **options)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_encoder(_tiny_encoder(), tmp_path / "encoder", SIZE, False, **options)


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        export.export_encoder(_tiny_encoder(), tmp_path / "encoder", image_size=0)
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        export.read_export_metadata(tmp_path / "missing")
