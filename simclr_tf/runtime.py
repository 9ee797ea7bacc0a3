"""Where and how the computation runs: devices, distribution strategy, numeric precision.

Nothing here changes the maths of SimCLR; it only decides the hardware. The same training code
runs on one CPU, one GPU, several GPUs (``MirroredStrategy``), several machines
(``MultiWorkerMirroredStrategy``) or a TPU (``TPUStrategy``).

:func:`configure_cpu_replicas` splits the CPU into logical devices (``--cpu_replicas``), so that
multi-replica training can be tried on a laptop; :func:`is_chief` says which process of a
multi-worker run writes the run's files.

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
from typing import Any

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


def configure_cpu_replicas(count: int) -> list[tf.config.LogicalDevice]:
    """Splits the CPU into ``count`` logical devices, to mirror training over them.

    Several replicas on one CPU run the multi-replica code (all-gathered negatives,
    synchronised BatchNorm, loss scaling agreed between replicas) on a laptop; they share the
    CPU's cores, so they are no faster than one. TensorFlow fixes its devices when it first
    uses them, so this must run before anything else touches TensorFlow.

    Args:
        count: logical CPU devices (>= 1).

    Returns:
        The logical CPU devices, ``count`` of them.

    Raises:
        ValueError: if ``count`` < 1, or if TensorFlow has already initialised another number
            of logical CPUs.
    """
    if count < 1:
        raise ValueError(f"cpu_replicas must be >= 1 here; received cpu_replicas={count!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:  # already initialised: fine only if it is already split that way
        pass
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) != count:
        raise ValueError(
            f"cpu_replicas={count} cannot take effect: TensorFlow has already initialised "
            f"{len(devices)} logical CPU device(s) in this process. Set it before anything "
            "uses TensorFlow (at the start of the process, e.g. python -m simclr_tf.train "
            f"--cpu_replicas={count}), or call runtime.configure_cpu_replicas({count}) first."
        )
    return devices


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process is the one that writes a run's files (checkpoints, logs, export).

    With ``MultiWorkerMirroredStrategy`` every worker trains, but only the chief (task
    ``chief``, or ``worker`` 0 when the cluster has no chief) should write; the others would
    overwrite the same files. Every other strategy runs in one process, the chief.

    Args:
        strategy: the run's strategy; the current one by default.

    Returns:
        True for the chief.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (
        task_type == "worker" and resolver.task_id == 0 and not has_chief
    )


def _in_cluster(strategy: tf.distribute.Strategy) -> bool:
    """True for a multi-worker strategy (several processes)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(getattr(resolver, "task_type", None))


def _over_workers(strategy: tf.distribute.Strategy, value: float, op: Any) -> float:
    """``value`` of every process reduced with ``op`` (a collective every worker must join)."""

    @tf.function
    def reduce(local: tf.Tensor) -> tf.Tensor:
        per_replica = strategy.run(lambda: tf.identity(local))
        return strategy.reduce(op, per_replica, axis=None)

    return float(reduce(tf.constant(float(value))))


def all_workers_agree(strategy: tf.distribute.Strategy, ok: bool) -> bool:
    """True when ``ok`` holds in every process of the strategy's cluster.

    A collective operation that every worker must join: each passes its own ``ok``; all get
    the same answer. Used to stop every worker together when one of them meets an error, and
    as a barrier. In a single process it just returns ``ok``.

    Args:
        strategy: the run's strategy.
        ok: this process's answer.

    Returns:
        Whether every worker answered True.
    """
    if not _in_cluster(strategy):
        return ok
    return _over_workers(strategy, 0.0 if ok else 1.0, tf.distribute.ReduceOp.SUM) < 0.5


def same_on_all_workers(strategy: tf.distribute.Strategy, value: float) -> bool:
    """True when every process of the strategy's cluster passes the same ``value`` (two
    collective operations every worker must join; always True in a single process)."""
    if not _in_cluster(strategy):
        return True
    mean = _over_workers(strategy, value, tf.distribute.ReduceOp.MEAN)
    return all_workers_agree(strategy, mean == float(value))


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


def _cpu_mirrored(name: str, cpu_replicas: int, gpus: list) -> tf.distribute.Strategy:
    """``MirroredStrategy`` over ``cpu_replicas`` logical CPUs (see :func:`make_strategy`)."""
    if name not in ("auto", "mirrored"):
        raise ValueError(
            f"cpu_replicas={cpu_replicas} mirrors over logical CPUs, which needs "
            f"--strategy=auto or mirrored; received strategy={name!r}."
        )
    if gpus:
        raise ValueError(
            f"cpu_replicas={cpu_replicas} splits the CPU, but {len(gpus)} GPU(s) are visible "
            "and would be left idle. Drop --cpu_replicas (the GPUs are mirrored over), or hide "
            "the GPUs with CUDA_VISIBLE_DEVICES= to try CPU replicas."
        )
    devices = configure_cpu_replicas(cpu_replicas)
    return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])


def make_strategy(name: str = "auto", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """Creates the ``tf.distribute`` strategy named by the config's ``strategy`` field.

    Args:
        name: ``"auto"`` (mirror over all GPUs when there are several, else the default
            strategy), ``"default"``, ``"one_device"`` (the first GPU, else the CPU),
            ``"mirrored"`` (all GPUs, or all logical CPUs when there is no GPU: useful for
            testing multi-replica code on a CPU), ``"multi_worker"`` (reads ``TF_CONFIG``) or
            ``"tpu"``.
        cpu_replicas: with ``"auto"`` or ``"mirrored"`` and more than 0, split the CPU into
            that many logical devices (:func:`configure_cpu_replicas`) and mirror over them;
            0 leaves the devices as they are.

    Returns:
        The strategy. Build models and optimizers inside ``strategy.scope()``.

    Raises:
        ValueError: for an unknown name, ``"tpu"`` when no TPU can be reached, or
            ``cpu_replicas`` with another strategy, with GPUs visible, or too late to split
            the CPU.
    """
    gpus = configure_devices()
    if cpu_replicas:
        return _cpu_mirrored(name, cpu_replicas, gpus)
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
