"""The exported SavedModel: loads without simclr_tf, serves uint8 images, is written atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from simclr_tf import export


def _tiny_encoder(image_size: int = 16) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="encoder")


def test_reload_without_simclr_tf_matches_in_memory_encoder(tmp_path):
    encoder = _tiny_encoder()
    path = export.export_encoder(encoder, tmp_path / "encoder", image_size=16)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({path!r})
        images = np.load({str(tmp_path / "images.npy")!r})
        one = model.serve(images[:1]).numpy()
        seven = model.serve(images).numpy()
        signature = model.signatures["serving_default"](images=tf.constant(images))
        np.save({str(tmp_path / "h.npy")!r}, seven)
        np.save({str(tmp_path / "h1.npy")!r}, one)
        np.save({str(tmp_path / "sig.npy")!r}, signature["output_0"].numpy())
        assert "simclr_tf" not in sys.modules, "the SavedModel needed simclr_tf"
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    expected = encoder(images.astype("float32") / 255.0, training=False).numpy()
    # Same graph, same float32 weights: only summation order can differ.
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "h1.npy"), expected[:1], atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "sig.npy"), expected, atol=1e-5)


def test_metadata_records_the_signature(tmp_path):
    path = export.export_encoder(
        _tiny_encoder(), tmp_path / "encoder", image_size=16, metadata={"config": {"seed": 3}}
    )
    facts = export.read_export_metadata(path)
    assert facts["image_size"] == [16, 16]
    assert facts["endpoint"] == "serve"
    assert facts["config"] == {"seed": 3}
    assert "[None, 8]" in facts["output"]
    with open(os.path.join(path, export.METADATA_FILE), encoding="utf-8") as handle:
        assert json.load(handle) == facts


def test_interrupted_export_leaves_previous_model_intact(tmp_path, monkeypatch):
    target = tmp_path / "encoder"
    export.export_encoder(_tiny_encoder(), target, image_size=16)
    before = sorted(os.listdir(target))

    def broken_export(self, filepath, **kwargs):
        os.makedirs(os.path.join(filepath, "variables"), exist_ok=True)
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as handle:
            handle.write(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "export", broken_export)
    with pytest.raises(KeyboardInterrupt):
        export.export_encoder(_tiny_encoder(), target, image_size=16)
    assert sorted(os.listdir(target)) == before
    assert export.read_export_metadata(target)["image_size"] == [16, 16]
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".")]
    assert leftovers == []


def test_refuses_to_overwrite_when_asked(tmp_path):
    export.export_encoder(_tiny_encoder(), tmp_path / "encoder", image_size=16)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_encoder(_tiny_encoder(), tmp_path / "encoder", 16, overwrite=False)


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        export.export_encoder(_tiny_encoder(), tmp_path / "encoder", image_size=0)
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        export.read_export_metadata(tmp_path / "missing")
