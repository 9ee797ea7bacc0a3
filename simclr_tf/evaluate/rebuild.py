"""New Keras encoders of an encoder's architecture, with its weights or with seeded random ones.

Fine-tuning trains a copy of the pretrained encoder; the supervised and random-init baselines
need the same architecture with fresh weights. For an encoder in memory the copy is a
:func:`keras.models.clone_model`; for an exported SavedModel the architecture is rebuilt from
the training configuration the export records (:class:`simclr_tf.config.SimCLRConfig`, whose
defaults fill in any field an older export lacks) with :func:`simclr_tf.models.build_encoder`.

Fresh weights are drawn by :func:`reinitialize` from an explicit seed, layer by layer, so the
same seed gives the same network without touching any global random generator.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from simclr_tf.config import SimCLRConfig
from simclr_tf.evaluate.features import FeatureEncoder

__all__ = ["encoder_config", "encoder_from_config", "keras_copy", "reinitialize"]


def encoder_config(encoder: FeatureEncoder) -> SimCLRConfig:
    """The training configuration of an exported encoder.

    Looks at the ``config`` entry of the export's ``simclr_tf.json``, then at ``config.json``
    in the run directory around the export; the first that names an ``encoder`` wins.

    Args:
        encoder: an encoder loaded from an export folder.

    Returns:
        The configuration; fields the export does not record take their defaults.

    Raises:
        ValueError: if neither file names the architecture, or ``config.json`` is not JSON.
    """
    candidates = [encoder.metadata.get("config") or {}]
    run_config = os.path.join(os.path.dirname(encoder.path or ""), "config.json")
    if os.path.isfile(run_config):
        try:
            with open(run_config, encoding="utf-8") as handle:
                candidates.append(json.load(handle))
        except json.JSONDecodeError as error:
            raise ValueError(f"{run_config} is not valid JSON ({error}).") from None
    for values in candidates:
        if isinstance(values, dict) and "encoder" in values:
            return SimCLRConfig.from_dict(values, ignore_unknown=True)
    raise ValueError(
        f"The export at {encoder.path!r} does not record its architecture (no 'config' in "
        "simclr_tf.json and no config.json beside it), so it cannot be rebuilt for fine-tuning "
        "or a random-init baseline. Export with metadata={'config': config.to_dict()}, or pass "
        "the in-memory Keras encoder."
    )


def encoder_from_config(config: SimCLRConfig, image_size: int | None = None) -> keras.Model:
    """Builds the encoder ``f`` that ``config`` describes, with Keras' default initialisation.

    Args:
        config: the training configuration (``encoder``, ``width``, ``stem``,
            ``representation_dim``, ``image_size``).
        image_size: input side in pixels; ``None`` takes ``config.image_size``.

    Returns:
        The Keras encoder of :func:`simclr_tf.models.build_encoder`.

    Raises:
        ValueError: for an architecture :func:`simclr_tf.models.build_encoder` refuses.
    """
    from simclr_tf.models import build_encoder

    return build_encoder(
        config.encoder,
        int(image_size or config.image_size),
        config.width,
        config.stem,
        representation_dim=config.representation_dim,
    )


def reinitialize(model: keras.Model, seed: int) -> keras.Model:
    """Draws every randomly initialised weight of ``model`` again, from ``seed`` alone.

    Each layer's random initializers (``kernel_initializer`` and the like) are re-created with
    a seed derived from ``seed`` and the layer's position, and their weights re-drawn; constant
    initializers (zeros, ones) are left as they are. No global random state is read or set.

    Args:
        model: a built Keras model, changed in place.
        seed: the seed of the whole initialisation.

    Returns:
        ``model``.
    """
    seeds = np.random.default_rng(seed)
    for layer in _layers(model):
        for attribute, initializer in sorted(vars(layer).items()):
            if not attribute.endswith("_initializer"):
                continue
            variable = getattr(layer, attribute.removesuffix("_initializer"), None)
            if not isinstance(initializer, keras.initializers.Initializer) or not isinstance(
                variable, keras.Variable
            ):
                continue
            config = initializer.get_config()
            if "seed" not in config:  # a constant initializer: nothing to draw
                continue
            config["seed"] = int(seeds.integers(2**31 - 1))
            seeded = type(initializer).from_config(config)
            variable.assign(seeded(variable.shape, variable.dtype))
    return model


def _layers(model: keras.Layer):
    """Every layer inside ``model``, depth first, in a fixed order."""
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _layers(layer)


def keras_copy(encoder: FeatureEncoder, pretrained: bool, seed: int = 0) -> keras.Model:
    """A new Keras encoder with the same architecture, either with copied or fresh weights.

    Args:
        encoder: the encoder to copy (in memory, or an export whose architecture is recorded).
        pretrained: copy the weights (``True``) or initialise them at random (``False``).
        seed: seed of the random initialisation (see :func:`reinitialize`).

    Returns:
        A Keras model sharing no variables with ``encoder``.

    Raises:
        ValueError: if an export's architecture is unknown or its weights do not fit.
    """
    encoder = FeatureEncoder(encoder)
    if encoder.keras_model is not None:
        model = keras.models.clone_model(encoder.keras_model)
        if pretrained:
            model.set_weights(encoder.keras_model.get_weights())
        return model if pretrained else reinitialize(model, seed)
    config = encoder_config(encoder)
    model = encoder_from_config(config, encoder.image_size[0])
    if not pretrained:
        return reinitialize(model, seed)
    saved = {v.name.split(":")[0]: v for v in encoder._saved_model.variables}
    for variable in model.variables:
        source = saved.get(variable.path)
        if source is None or tuple(source.shape) != tuple(variable.shape):
            raise ValueError(
                f"The export at {encoder.path!r} has no weight matching {variable.path!r} "
                f"{tuple(variable.shape)}: its recorded architecture ({config.encoder}, width "
                f"{config.width}, stem {config.stem}, representation_dim "
                f"{config.representation_dim}) does not fit."
            )
        variable.assign(source.numpy())
    return model
