"""Data for SimCLR: CIFAR-10, the bundled sample, your own image folders, and training batches.

Where the images come from:

* :func:`load_cifar10` -- the full CIFAR-10 data set (50,000 training and 10,000 test images),
  from a local copy or the Keras download (:mod:`.cifar10`, read safely by :mod:`.safe_pickle`);
* :func:`load_sample` -- a class-balanced 5,500-image subset of it that ships with the
  repository, for quick runs and tests (:mod:`.sample`);
* :func:`load_image_folder` -- any folder of PNG/JPEG/BMP/GIF/WebP files, labelled by subfolder
  or not, streamed from disk (:mod:`.image_folder`).

The first two return numpy arrays ``(x_train, y_train), (x_test, y_test)`` (uint8 images
[N, 32, 32, 3], int64 labels [N] indexing :data:`CIFAR10_CLASSES`); the third returns a
``tf.data.Dataset``. Either kind goes into :func:`make_dataset` (:mod:`.batches`), which
shuffles, batches and prefetches uint8 images for training; augmentation comes after, on the
device.

Example::

    from simclr_tf.data import load_sample, make_dataset

    (x_train, y_train), _ = load_sample()
    batches = make_dataset(x_train, batch_size=256, seed=0)  # uint8 [256, 32, 32, 3]
"""

from __future__ import annotations

import importlib

# Public name -> the submodule that defines it. Submodules are imported on first use, so that
# the NumPy-only ones (sampling, safe_pickle) can be used without loading TensorFlow.
_EXPORTS = {
    "CIFAR10_CLASSES": "cifar10",
    "load_cifar10": "cifar10",
    "read_cifar10_batch": "cifar10",
    "ImageFolder": "image_folder",
    "UnreadableImageWarning": "image_folder",
    "list_image_folder": "image_folder",
    "load_image_folder": "image_folder",
    "make_dataset": "batches",
    "epoch_batches": "batches",
    "epoch_order": "batches",
    "UnsafePickleError": "safe_pickle",
    "DEFAULT_SAMPLE_PATH": "sample",
    "load_sample": "sample",
    "Split": "sampling",
    "class_balanced_subset": "sampling",
    "split_train_validation": "sampling",
    "stratified_indices": "sampling",
    "ArrayImages": "sources",
    "FolderImages": "sources",
    "TrainingImages": "sources",
    "load_splits": "sources",
    "training_images": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
