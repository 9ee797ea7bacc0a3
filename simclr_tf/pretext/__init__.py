"""Pretext-task baselines: what self-supervised learning did before SimCLR, trained alike.

Before contrastive learning, representations were learned by solving a made-up task whose
labels come from the images themselves. Two of the tasks the SimCLR paper sets itself against
are here, with the labelled reference, all trained by one loop (:class:`PretextTrainer`) on
the same encoder, data, optimizer and budget as SimCLR, and evaluated with the same protocols
(:mod:`simclr_tf.evaluate`):

* ``rotation``: which of four rotations is this image? (:mod:`~simclr_tf.pretext.rotation`)
* ``inpainting``: paint back a hidden block (:mod:`~simclr_tf.pretext.inpainting`)
* ``supervised``: the class labels themselves (:mod:`~simclr_tf.pretext.supervised`)

Train one from the command line (SimCLR's flags, plus ``--task``)::

    python -m simclr_tf.pretext --task rotation --preset cpu --dataset sample \\
        --out_dir runs/rotation
    python -m simclr_tf.evaluate --encoder runs/rotation/encoder

or in Python::

    trainer = st.pretext.PretextTrainer(config, st.pretext.task("rotation"), len(images))
    trainer.fit(st.data.ArrayImages(images, labels))
    features = trainer.encoder.predict(images / 255.0)
"""

from __future__ import annotations

from simclr_tf.pretext.inpainting import Inpainting, block_masks, weighted_reconstruction_loss
from simclr_tf.pretext.rotation import RotationPrediction, classification_loss, rotate_batch
from simclr_tf.pretext.supervised import SupervisedClassification
from simclr_tf.pretext.task import PretextTask
from simclr_tf.pretext.trainer import PretextTrainer, pretext_augment_config

TASKS: dict[str, type[PretextTask]] = {
    cls.name: cls for cls in (RotationPrediction, Inpainting, SupervisedClassification)
}
"""The tasks by their ``--task`` name."""


def task(name: str) -> PretextTask:
    """A new task with its default settings, by name.

    Raises:
        ValueError: for a name that is not in :data:`TASKS`.
    """
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; received task={name!r}.")
    return TASKS[name]()


__all__ = [
    "TASKS",
    "Inpainting",
    "PretextTask",
    "PretextTrainer",
    "RotationPrediction",
    "SupervisedClassification",
    "block_masks",
    "classification_loss",
    "pretext_augment_config",
    "rotate_batch",
    "task",
    "weighted_reconstruction_loss",
]
