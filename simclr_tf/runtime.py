"""Where and how the computation runs: devices, distribution strategy, numeric precision.

Nothing here changes the maths of SimCLR; it only decides the hardware. The same training code
runs on one CPU, one GPU, several GPUs (``MirroredStrategy``), several machines
(``MultiWorkerMirroredStrategy``) or a TPU (``TPUStrategy``).

Two habits matter when several notebooks or processes share a GPU:

* :func:`configure_devices` turns on memory growth, so TensorFlow takes GPU memory as it needs
  it instead of grabbing all of it at start-up.
* :func:`precision_policy` sets Keras' dtype policy only while models are being built and then
  puts the previous one back, so a notebook cell that trains in bfloat16 does not silently
  change the precision of models built in later cells.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator

import keras
import tensorflow as tf


def configure_devices(memory_growth: bool = True) -> list[tf.config.PhysicalDevice]:
    """Enables GPU memory growth (when possible) and returns the visible GPUs.

    Memory growth can only be set before TensorFlow initialises the GPUs; when it is too late,
    the setting is left as it is.

    Args:
        memory_growth: allocate GPU memory on demand rather than all at once.

    Returns:
        The physical GPU devices, possibly empty.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: keep what is set
            tf.config.experimental.set_memory_growth(gpu, memory_growth)
    return gpus


def device_summary() -> str:
    """One line saying which hardware TensorFlow will use, for notebooks and logs."""
    gpus = configure_devices()
    if gpus:
        names = ", ".join(gpu.name.split("physical_device:")[-1] for gpu in gpus)
        return f"TensorFlow {tf.__version__}: using {len(gpus)} GPU(s): {names}."
    cores = os.cpu_count() or 1
    return (
        f"TensorFlow {tf.__version__}: no GPU found, running on the CPU ({cores} cores). "
        "Everything works, only slower."
    )


def cpu_name() -> str:
    """The processor's model name (for example "AMD EPYC"), to label measured figures.

    Returns:
        The first ``model name`` of ``/proc/cpuinfo`` on Linux, else what
        ``platform.processor()`` says, else "unknown CPU".
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Creates the ``tf.distribute`` strategy named by the config's ``strategy`` field.

    Args:
        name: ``"auto"`` (mirror over all GPUs when there are several, else the default
            strategy), ``"default"``, ``"one_device"`` (the first GPU, else the CPU),
            ``"mirrored"`` (all GPUs, or all logical CPUs when there is no GPU: useful for
            testing multi-replica code on a CPU), ``"multi_worker"`` (reads ``TF_CONFIG``) or
            ``"tpu"``.

    Returns:
        The strategy. Build models and optimizers inside ``strategy.scope()``.

    Raises:
        ValueError: for an unknown name, or ``"tpu"`` when no TPU can be reached.
    """
    gpus = configure_devices()
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as error:
            raise ValueError(
                f"strategy='tpu' but no TPU could be reached ({error}). Run on a TPU host or "
                "choose another --strategy."
            ) from error
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(
        "strategy must be one of auto, default, one_device, mirrored, multi_worker, tpu; "
        f"received strategy={name!r}."
    )


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[keras.DTypePolicy]:
    """Sets Keras' global dtype policy inside the ``with`` block only.

    Layers read the global policy when they are created, so build models inside the block.

    Args:
        name: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Yields:
        The policy in force inside the block.

    Raises:
        ValueError: for any other name.
    """
    if name not in ("float32", "mixed_float16", "mixed_bfloat16"):
        raise ValueError(
            "precision must be float32, mixed_float16 or mixed_bfloat16; "
            f"received precision={name!r}."
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)
