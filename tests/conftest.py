"""Shared test set-up.

TensorFlow is configured before any test touches it: quiet logs, and the one physical CPU
split into two logical devices so that multi-replica code (MirroredStrategy, all-gather in the
loss, synchronised BatchNorm) is exercised on this machine. Tests that need the full CIFAR-10
data set use the ``cifar10_dir`` fixture, which skips with a reason when it is absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture
def cifar10_dir() -> str:
    """The full CIFAR-10 folder named by SIMCLR_DATA_DIR; skips the test when it is not set."""
    path = os.environ.get("SIMCLR_DATA_DIR")
    if not path:
        pytest.skip("full CIFAR-10 not available: set SIMCLR_DATA_DIR to run this test")
    if not os.path.isdir(path):
        pytest.skip(f"SIMCLR_DATA_DIR={path!r} is not a directory")
    return path


@pytest.fixture(scope="session")
def two_replicas() -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over the two logical CPUs made above.

    Every MirroredStrategy numbers its collective operations from the same start, so two
    strategies in one process can mix up their all-reduces and all-gathers ("Shape mismatch in
    the collective instance"). TensorFlow's test hook ``_collective_key_base`` gives this one
    (and the next one created anywhere) keys of their own.
    """
    devices = [device.name for device in tf.config.list_logical_devices("CPU")][:2]
    key_base = tf.distribute.MirroredStrategy._collective_key_base + 1000
    tf.distribute.MirroredStrategy._collective_key_base = key_base
    strategy = tf.distribute.MirroredStrategy(devices)
    tf.distribute.MirroredStrategy._collective_key_base = key_base + 1000
    return strategy
