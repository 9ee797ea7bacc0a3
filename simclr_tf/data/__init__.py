"""Data for SimCLR: CIFAR-10, the bundled sample, your own image folders, and training batches.

Where the images come from:

* :func:`load_cifar10` -- the full CIFAR-10 data set (50,000 training and 10,000 test images),
  from a local copy or the Keras download (:mod:`.cifar10`, read safely by :mod:`.safe_pickle`);
* :func:`load_sample` -- a class-balanced 5,500-image subset of it that ships with the
  repository, for quick runs and tests (:mod:`.sample`);
* :func:`load_image_folder` -- any folder of PNG/JPEG/BMP/GIF/WebP files, labeled by subfolder
  or not, streamed from disk (:mod:`.image_folder`).

The first two return numpy arrays ``(x_train, y_train), (x_test, y_test)`` (uint8 images
[N, 32, 32, 3], int64 labels [N] indexing :data:`CIFAR10_CLASSES`); the third returns a
``tf.data.Dataset``. Either kind goes into :func:`make_dataset` (:mod:`.pipeline`), which
shuffles, batches and prefetches uint8 images for training; augmentation comes after, on the
device.

Example::

    from simclr_tf.data import load_sample, make_dataset

    (x_train, y_train), _ = load_sample()
    batches = make_dataset(x_train, batch_size=256, seed=0)  # uint8 [256, 32, 32, 3]
"""

from simclr_tf.data.cifar10 import CIFAR10_CLASSES, load_cifar10, read_cifar10_batch
from simclr_tf.data.image_folder import (
    ImageFolder,
    UnreadableImageWarning,
    list_image_folder,
    load_image_folder,
)
from simclr_tf.data.pipeline import make_dataset
from simclr_tf.data.safe_pickle import UnsafePickleError
from simclr_tf.data.sample import DEFAULT_SAMPLE_PATH, load_sample

__all__ = [
    "CIFAR10_CLASSES",
    "DEFAULT_SAMPLE_PATH",
    "ImageFolder",
    "UnreadableImageWarning",
    "UnsafePickleError",
    "list_image_folder",
    "load_cifar10",
    "load_image_folder",
    "load_sample",
    "make_dataset",
    "read_cifar10_batch",
]
