"""New Keras encoders of an encoder's architecture, with its weights or with seeded random ones.

Fine-tuning trains a copy of the pretrained encoder; the supervised and random-init baselines
need the same architecture with fresh weights. For an encoder in memory the copy is a
:func:`keras.models.clone_model`; for an exported SavedModel the architecture is rebuilt from
the training configuration the export records (:class:`simclr_tf.config.SimCLRConfig`, whose
defaults fill in any field an older export lacks) with :func:`simclr_tf.models.encoder_from_config`,
at the export's image size.

Fresh weights are drawn by :func:`simclr_tf.models.initialize_weights` from an explicit seed,
so the same seed gives the same network without touching any global random generator.
"""

from __future__ import annotations

import json
import os

import keras

from simclr_tf.config import SimCLRConfig
from simclr_tf.evaluate.features import FeatureEncoder
from simclr_tf.models import encoder_from_config, initialize_weights

__all__ = ["encoder_config", "keras_copy"]


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


def keras_copy(encoder: FeatureEncoder, pretrained: bool, seed: int = 0) -> keras.Model:
    """A new Keras encoder with the same architecture, either with copied or fresh weights.

    Args:
        encoder: the encoder to copy (in memory, or an export whose architecture is recorded).
        pretrained: copy the weights (``True``) or initialise them at random (``False``).
        seed: seed of the random initialisation (see :func:`simclr_tf.models.initialize_weights`).

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
        return model if pretrained else initialize_weights(model, seed)
    config = encoder_config(encoder).replace(image_size=int(encoder.image_size[0]))
    model = encoder_from_config(config)
    if not pretrained:
        return initialize_weights(model, seed)
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
