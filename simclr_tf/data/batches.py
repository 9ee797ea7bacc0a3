"""Batches for training: shuffle, batch and prefetch uint8 images with ``tf.data``.

Two feeds, for two kinds of loop:

* :func:`epoch_batches` is what :class:`simclr_tf.pretrainer.Pretrainer` trains on: the batches of
  one epoch of a :class:`~simclr_tf.data.sources.TrainingImages`, in an order that depends only
  on ``(seed, epoch)`` (:func:`epoch_order`), with the first batches left out after a resume.
  That is what makes a killed and resumed run see exactly the batches of an uninterrupted one.
* :func:`make_dataset` is the general-purpose feed for your own loops (``keras.Model.fit``, a
  notebook's experiment): arrays or any ``tf.data.Dataset``, reshuffled on every pass by
  ``tf.data`` from one seed, optionally repeated; it cannot start in the middle of an epoch.

:func:`make_dataset` is the last step before the model. It takes images held in memory (a
numpy array, such as :func:`~simclr_tf.data.cifar10.load_cifar10` returns) or a streaming
dataset (such as :func:`~simclr_tf.data.image_folder.load_image_folder` returns) and yields
batches of uint8 images, with their labels when there are labels. It does no augmentation:
SimCLR's two random views of every image are made on the whole batch, on the accelerator, by
:mod:`simclr_tf.augment`, which is much faster than one image at a time in the input pipeline.

Arrays are shuffled through their indices: a full random permutation per pass costs one int64
per image, and each batch is gathered in one step. Streaming datasets are shuffled with a
buffer (``Dataset.shuffle``) whose size is bounded by the memory it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from simclr_tf.data.sources import TrainingImages

__all__ = ["epoch_batches", "epoch_order", "make_dataset", "resize_images", "shard_order"]

_SHUFFLE_BUFFER_BYTES = 256 * 2**20
_MIN_SHUFFLE_BUFFER = 1_000


def _check_batch_size(batch_size: int, num_examples: int | None, drop_remainder: bool) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an int; received batch_size={batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; received batch_size={batch_size!r}.")
    if drop_remainder and num_examples is not None and batch_size > num_examples:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {num_examples} examples, so with "
            "drop_remainder=True not a single batch would be produced. Lower batch_size or pass "
            "drop_remainder=False."
        )


def _from_arrays(
    images: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            "source must be uint8 images of shape [N, height, width, 3]; received "
            f"{images.dtype} of shape {images.shape}. Convert float images in [0, 1] with "
            "np.round(images * 255).astype(np.uint8)."
        )
    if labels is None:
        return images, None
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:  # Keras-style [N, 1] column.
        labels = labels[:, 0]
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be {len(images)} integers (shape [N] or [N, 1]) to match the images; "
            f"received {labels.dtype} of shape {labels.shape}."
        )
    return images, labels.astype(np.int64)


def _element_image_spec(dataset: tf.data.Dataset) -> tf.TensorSpec:
    """The image part of a dataset's elements: ``image`` or ``(image, label)``."""
    spec = dataset.element_spec
    image_spec = spec[0] if isinstance(spec, tuple) and len(spec) == 2 else spec
    if not (
        isinstance(image_spec, tf.TensorSpec)
        and image_spec.dtype == tf.uint8
        and image_spec.shape.rank == 3
    ):
        raise ValueError(
            "source dataset must yield uint8 images [height, width, channels], or (image, label) "
            f"pairs; its elements are {spec}."
        )
    return image_spec


def _default_shuffle_buffer(image_spec: tf.TensorSpec, num_examples: int | None) -> int:
    """As many images as fit in 256 MiB (at least 1,000), and no more than the data set."""
    if image_spec.shape.is_fully_defined():
        bytes_per_image = int(np.prod(image_spec.shape.as_list()))
        buffer = max(_MIN_SHUFFLE_BUFFER, _SHUFFLE_BUFFER_BYTES // bytes_per_image)
    else:
        buffer = _MIN_SHUFFLE_BUFFER
    return buffer if num_examples is None else max(1, min(buffer, num_examples))


def make_dataset(
    source: np.ndarray | tf.data.Dataset,
    labels: np.ndarray | None = None,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = True,
    repeat: bool = False,
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """Turns images into shuffled, batched, prefetched uint8 batches.

    Every pass over the returned dataset (every epoch) visits the examples in a new order;
    the sequence of orders is fixed by ``seed``, so two datasets built alike yield the same
    batches. Batches never straddle two epochs.

    Args:
        source: uint8 images [N, height, width, 3] as a numpy array, or a ``tf.data.Dataset``
            of uint8 images [height, width, channels] or of ``(image, label)`` pairs (as
            :func:`load_image_folder` returns).
        labels: int [N] (or Keras's [N, 1]) labels of array images; must be None for a dataset,
            whose labels travel with its images.
        batch_size: images per batch (> 0).
        shuffle: shuffle the examples on every pass.
        seed: seed of the shuffling.
        drop_remainder: drop the last, smaller batch of every pass, so all batches have
            ``batch_size`` images (what a training step with a fixed batch wants).
        repeat: repeat the passes forever.
        shuffle_buffer: for a dataset source, the number of images held for shuffling; None
            means as many as fit in 256 MiB (at least 1,000). Arrays are always shuffled fully.

    Returns:
        A dataset of ``images`` uint8 [batch, height, width, 3] when there are no labels, or of
        ``(images, labels)`` with int64 labels [batch] when there are.

    Raises:
        ValueError: for a non-positive ``batch_size``, a ``batch_size`` above the number of
            examples with ``drop_remainder=True``, non-uint8 images, labels that do not match
            the images, or labels given with a dataset source.
    """
    if isinstance(source, tf.data.Dataset):
        if labels is not None:
            raise ValueError(
                "labels must be None when source is a tf.data.Dataset: yield (image, label) "
                "pairs from the dataset instead."
            )
        image_spec = _element_image_spec(source)
        cardinality = int(source.cardinality())
        if cardinality >= 0:
            num_examples: int | None = cardinality
        elif hasattr(source, "file_paths"):  # load_image_folder: at most one per listed file.
            num_examples = len(source.file_paths)
        else:
            num_examples = None
        _check_batch_size(batch_size, num_examples, drop_remainder)
        dataset = source
        if shuffle:
            buffer = shuffle_buffer or _default_shuffle_buffer(image_spec, num_examples)
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        images, labels = _from_arrays(source, labels)
        _check_batch_size(batch_size, len(images), drop_remainder)
        images_tensor = tf.constant(images)
        labels_tensor = None if labels is None else tf.constant(labels)

        def gather(indices: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
            batch = tf.gather(images_tensor, indices)
            return batch if labels_tensor is None else (batch, tf.gather(labels_tensor, indices))

        dataset = tf.data.Dataset.range(len(images))
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the examples: a function of (seed, epoch).

    Returns:
        A permutation of ``range(num_examples)``, int64 ``[num_examples]``.
    """
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def resize_images(images: tf.Tensor | np.ndarray, size: int) -> tf.Tensor:
    """Resizes images to ``size x size`` with an antialiased bilinear filter.

    Meant for the input pipeline (``tf.data`` runs it on the host): the antialiased resize
    has only a CPU kernel, so inside a training step it would cost a device-to-host round trip
    every step, and it cannot be compiled by XLA.

    Args:
        images: ``[..., H, W, 3]``, uint8 or float.
        size: the side of the output.

    Returns:
        ``[..., size, size, 3]`` of the input's dtype (uint8 is rounded); ``images`` itself,
        as a tensor, when it already has that size.
    """
    images = tf.convert_to_tensor(images)
    if images.shape[-3] == size and images.shape[-2] == size:
        return images
    resized = tf.image.resize(images, [size, size], antialias=True)
    if images.dtype == tf.uint8:
        resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    return tf.cast(resized, images.dtype)


def shard_order(
    order: np.ndarray, batch_size: int, pipeline: int, num_pipelines: int
) -> np.ndarray:
    """The indices one of several input pipelines reads: its block of every global batch.

    Args:
        order: the indices of whole global batches, ``[num_batches * batch_size]``.
        batch_size: images per global batch (a multiple of ``num_pipelines``).
        pipeline: this pipeline's number, in ``[0, num_pipelines)``.
        num_pipelines: the input pipelines (one per worker) that share every batch.

    Returns:
        ``[num_batches * batch_size / num_pipelines]`` indices: for every global batch in
        turn, its ``pipeline``-th contiguous block. The pipelines' blocks of a batch,
        concatenated in pipeline order, are the batch.

    Raises:
        ValueError: if ``batch_size`` does not split evenly over the pipelines.
    """
    if batch_size % num_pipelines:
        raise ValueError(
            f"batch_size={batch_size} does not split evenly over {num_pipelines} input "
            f"pipelines (workers); use a multiple of {num_pipelines}."
        )
    block = batch_size // num_pipelines
    batches = np.asarray(order).reshape(-1, batch_size)
    return batches[:, pipeline * block : (pipeline + 1) * block].reshape(-1)


def epoch_batches(
    source: TrainingImages,
    batch_size: int,
    seed: int,
    epoch: int,
    skip: int = 0,
    num_batches: int | None = None,
    image_size: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """The full batches of one epoch, in the order :func:`epoch_order` fixes.

    With an ``input_context`` (from ``strategy.distribute_datasets_from_function``) the
    dataset is one input pipeline's share: it reads only the images of its contiguous block
    of every global batch (:func:`shard_order`), so a worker decodes only its own files, and
    yields them in per-replica batches. The replicas' batches, in replica order, make exactly
    the global batch the single-device dataset yields, whatever the number of workers and
    devices.

    Args:
        source: the training images.
        batch_size: images per global batch (> 0, at most ``source.num_examples``).
        seed: seed of the run.
        epoch: 0-based epoch.
        skip: leading batches to leave out (trained on before a resume).
        num_batches: batches in the epoch; ``num_examples // batch_size`` by default (the last,
            partial batch is always dropped).
        image_size: resize images of another size to this side (:func:`resize_images`, on
            the host); ``None`` keeps them as they are.
        input_context: the ``tf.distribute.InputContext`` of one input pipeline, or ``None``
            for the whole global batches.

    Returns:
        A dataset of ``(images uint8 [batch, H, W, 3], labels int32 [batch])``, where batch is
        ``batch_size``, or the per-replica batch size with an ``input_context``.
    """
    _check_batch_size(batch_size, source.num_examples, drop_remainder=True)
    if num_batches is None:
        num_batches = source.num_examples // batch_size
    order = epoch_order(source.num_examples, seed, epoch)[
        skip * batch_size : num_batches * batch_size
    ]
    local_batch = batch_size
    if input_context is not None:
        local_batch = input_context.get_per_replica_batch_size(batch_size)
        order = shard_order(
            order, batch_size, input_context.input_pipeline_id, input_context.num_input_pipelines
        )
    dataset = source.in_order(order).batch(local_batch, drop_remainder=True)
    if image_size is not None:
        dataset = dataset.map(lambda images, labels: (resize_images(images, image_size), labels))
    # A fixed prefetch buffer without tf.data's autotuning: with autotuning on, dropping an
    # epoch's exhausted iterator blocked for 8-13 s on a busy 2-core CPU (measured), a
    # quarter of a CIFAR-10 epoch of the small CNN.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(2).with_options(options)
