"""Several replicas: one loss-scaling decision for all, XLA-friendly gathers, views and batches
that do not depend on the number of devices, averaged BatchNorm statistics, several steps per
call, CPU replicas. Two logical CPUs (tests/conftest.py) stand in for two devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import tensorflow as tf
from distribute_helpers import overflow_on_replica_one
from worker_helpers import run_workers

from simclr_tf import distribute, pretrainer, runtime, train
from simclr_tf.augment import AugmentConfig, two_views
from simclr_tf.config import preset
from simclr_tf.data.batches import epoch_batches, shard_order
from simclr_tf.data.sources import ArrayImages
from simclr_tf.losses import nt_xent_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(count: int = 32, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, size=count).astype(np.int32)


def _config(tmp_path, **overrides):
    values = {"image_size": 16, "batch_size": 16, "out_dir": str(tmp_path / "run")}
    return preset("smoke", **{**values, **overrides})


def _first_batch(trainer, images, labels):
    """The first global batch of 16 as the strategy distributes it."""
    dataset = tf.data.Dataset.from_tensor_slices((images[:16], labels[:16])).batch(16)
    return next(iter(trainer.strategy.experimental_distribute_dataset(dataset)))


def _local(strategy, value) -> list[np.ndarray]:
    return [np.asarray(part) for part in strategy.experimental_local_results(value)]


# -- 1. loss scaling: one decision for every replica --------------------------------------------


def _overflow_on_replica_one(monkeypatch):
    """Makes the gradients of replica 1 (only) infinite; the losses stay finite."""
    monkeypatch.setattr(
        pretrainer, "nt_xent_loss", overflow_on_replica_one(pretrainer.nt_xent_loss)
    )


def test_float16_overflow_on_one_replica_skips_the_step_on_every_replica(
    tmp_path, two_replicas, monkeypatch
):
    images, labels = _images()
    # Without synchronised BatchNorm, whose backward all-reduce would carry replica 1's
    # infinite gradients to replica 0 and so hide the bug.
    config = _config(
        tmp_path, precision="mixed_float16", optimizer="sgd", lr=0.1, sync_batchnorm=False
    )
    trainer = train.Pretrainer(config, len(images), 10, strategy=two_replicas)
    before = [np.array(v.numpy()) for v in trainer.encoder.trainable_variables]
    _overflow_on_replica_one(monkeypatch)
    metrics = trainer.train_step(*_first_batch(trainer, images, labels))
    for variable, old in zip(trainer.encoder.trainable_variables, before, strict=True):
        for copy in _local(two_replicas, variable.value):
            np.testing.assert_array_equal(copy, old)  # skipped everywhere, nothing -inf
    assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**14  # halved
    assert int(trainer.step.numpy()) == 1 and int(trainer.optimizer.iterations.numpy()) == 0
    assert np.isfinite(metrics["loss"])
    assert metrics["loss_scale"] == 2.0**15  # the scale this step used
    assert metrics["skipped_steps"] == 1


_WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from distribute_helpers import overflow_on_replica_one
    from simclr_tf import pretrainer, train
    from simclr_tf.config import preset
    from simclr_tf.data.sources import ArrayImages

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=32).astype(np.int32)
    config = preset("smoke", image_size=16, batch_size=16, strategy="multi_worker",
                    precision="mixed_float16", optimizer="sgd", lr=0.1,
                    sync_batchnorm=False, out_dir=sys.argv[1])
    trainer = train.Pretrainer(config, num_examples=32, num_classes=10)
    pretrainer.nt_xent_loss = overflow_on_replica_one(pretrainer.nt_xent_loss)  # on worker 1 only
    before = [v.numpy().copy() for v in trainer.encoder.trainable_variables]
    batches = iter(trainer.distributed_batches(ArrayImages(images, labels), epoch=0))
    metrics = trainer.train_step(*next(batches))
    after = [v.numpy() for v in trainer.encoder.trainable_variables]
    print(json.dumps({
        "replicas": trainer.num_replicas,
        "scale": float(trainer.optimizer.dynamic_scale.numpy()),
        "iterations": int(trainer.optimizer.iterations.numpy()),
        "unchanged": all(np.array_equal(a, b) for a, b in zip(before, after)),
        "skipped_steps": metrics["skipped_steps"],
    }))
    """
)


@pytest.mark.slow
def test_float16_overflow_on_one_of_two_workers_skips_the_step_on_both(tmp_path):
    """Two worker processes on 127.0.0.1 (about 40 s): with Keras' own loss scaler one worker
    updates, the other skips, and the next collective hangs."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER_SCRIPT)
    outputs = run_workers(
        2,
        lambda index: [sys.executable, str(script), str(tmp_path / f"worker{index}")],
        lambda index: {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
        },
        timeout=150,
    )
    for returncode, stdout, stderr in outputs:
        assert returncode == 0, stderr[-2000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        assert result == {
            "replicas": 2,
            "scale": 2.0**14,
            "iterations": 0,
            "unchanged": True,
            "skipped_steps": 1.0,
        }


def test_learning_rate_follows_the_run_step_through_skipped_steps(
    tmp_path, two_replicas, monkeypatch
):
    """One step counter: after a skipped step the optimizer's learning rate is the schedule at
    the run's step (the one logged), not at its own count of applied updates."""
    images, labels = _images()
    config = _config(tmp_path, precision="mixed_float16", warmup_epochs=1.0)
    trainer = train.Pretrainer(config, len(images), 10, strategy=two_replicas)
    _overflow_on_replica_one(monkeypatch)
    trainer.train_step(*_first_batch(trainer, images, labels))
    expected = float(trainer.learning_rate(trainer.step))
    assert expected != float(trainer.learning_rate(0))
    assert float(trainer.optimizer.learning_rate) == pytest.approx(expected)


def test_steps_csv_logs_the_loss_scale_and_the_skipped_steps(tmp_path):
    images, labels = _images()
    trainer = train.Pretrainer(_config(tmp_path, steps=2), len(images), 10)
    rows = trainer.fit(images, labels)
    assert rows[-1]["loss_scale"] == 1.0 and rows[-1]["skipped_steps"] == 0.0
    with open(tmp_path / "run" / "steps.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert {"loss_scale", "skipped_steps"} <= set(header)


# -- 2. XLA: the gathered negatives ---------------------------------------------------------------


def test_loss_under_two_replicas_gathers_without_collective_gather(two_replicas):
    """CollectiveGatherV2 has no XLA kernel; the loss's gather is an all-reduce instead."""
    parts = [tf.random.stateless_normal((4, 8), seed=(0, i)) for i in range(2)]
    z = two_replicas.experimental_distribute_values_from_function(
        lambda context: parts[context.replica_id_in_sync_group]
    )

    @tf.function
    def losses(z):
        return two_replicas.run(lambda local: nt_xent_loss(local, local * 2.0, 0.5)[0], args=(z,))

    graph = losses.get_concrete_function(z).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "CollectiveGatherV2" not in op_types
    assert "CollectiveReduceV2" in op_types or any("Reduce" in t for t in op_types)
    single = nt_xent_loss(tf.concat(parts, 0), tf.concat(parts, 0) * 2.0, 0.5)[0]
    np.testing.assert_allclose(np.mean(_local(two_replicas, losses(z))), single, rtol=1e-5)


def test_all_gather_concatenates_in_replica_order_with_the_gather_gradient(two_replicas):
    parts = [np.full((2, 3), i + 1.0, np.float32) for i in range(2)]
    value = two_replicas.experimental_distribute_values_from_function(
        lambda context: tf.constant(parts[context.replica_id_in_sync_group])
    )
    weights = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3))

    @tf.function
    def gather_and_grad(value):
        def replica(local):
            with tf.GradientTape() as tape:
                tape.watch(local)
                gathered = distribute.all_gather(local)
                loss = tf.reduce_sum(gathered * weights)
            return gathered, tape.gradient(loss, local)

        return two_replicas.run(replica, args=(value,))

    gathered, gradient = gather_and_grad(value)
    for copy in _local(two_replicas, gathered):
        np.testing.assert_array_equal(copy, np.concatenate(parts))
    # Every replica's loss uses every block: block r's gradient is summed over 2 replicas.
    for replica, grad in enumerate(_local(two_replicas, gradient)):
        np.testing.assert_array_equal(grad, 2 * weights.numpy()[2 * replica : 2 * replica + 2])


def test_jit_with_replicas_on_cpus_is_refused_with_a_clear_message(tmp_path, two_replicas):
    with pytest.raises(ValueError, match="only on GPUs and TPUs.*Drop --jit_compile"):
        train.Pretrainer(_config(tmp_path, jit_compile=True), 32, 10, strategy=two_replicas)


@pytest.mark.skipif(
    len(tf.config.list_physical_devices("GPU")) < 2,
    reason="needs 2 GPUs: XLA compiles "
    "collectives on GPUs only (benchmarks/gpu_check.py runs it on a GPU machine)",
)
def test_jit_step_on_two_gpu_replicas_matches_the_plain_step(tmp_path):
    images, labels = _images()
    losses = []
    for jit in (False, True):
        config = _config(
            tmp_path, strategy="mirrored", jit_compile=jit, out_dir=f"{tmp_path}/{jit}"
        )
        trainer = train.Pretrainer(config, len(images), 10)
        losses.append(trainer.train_step(*_first_batch(trainer, images, labels))["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


# -- 3. resizing in the input pipeline ------------------------------------------------------------


def test_images_of_another_size_are_resized_in_the_pipeline_and_train_under_jit(tmp_path):
    images, labels = _images(count=32, size=20)
    config = _config(tmp_path, jit_compile=True, steps=2)
    trainer = train.Pretrainer(config, len(images), 10)
    batch, _ = next(iter(trainer.epoch_batches(ArrayImages(images, labels), 0)))
    assert batch.shape == (16, 16, 16, 3) and batch.dtype == tf.uint8
    rows = trainer.fit(images, labels)
    assert np.isfinite(rows[-1]["loss"])
    # A plain batch given to train_step is resized on the host too.
    assert np.isfinite(trainer.train_step(images[:16], labels[:16])["loss"])


# -- 6. BatchNorm statistics without synchronisation -------------------------------------------


def test_unsynchronised_batchnorm_statistics_are_averaged_over_replicas(tmp_path, two_replicas):
    images, labels = _images()
    config = _config(tmp_path, sync_batchnorm=False)
    trainer = train.Pretrainer(config, len(images), 10, strategy=two_replicas)
    assert trainer._replica_statistics  # the moving means and variances
    trainer.train_step(*_first_batch(trainer, images, labels))
    moved = False
    for variable in trainer.encoder.non_trainable_variables:
        first, second = _local(two_replicas, variable.value)
        np.testing.assert_allclose(first, second, rtol=1e-6, err_msg=variable.path)
        moved |= "moving_mean" in variable.path and bool(np.any(first != 0))
    assert moved


# -- 7. views that do not depend on the number of replicas --------------------------------------


def test_views_of_a_global_batch_do_not_depend_on_the_number_of_replicas(two_replicas):
    images, _ = _images(count=8)
    config = AugmentConfig.preset("cifar", jit_compile=False)  # the real augmentation
    with tf.device("/cpu:0"):  # the replicas' device type
        expected = two_views(images, 3, 5, config)
    halves = two_replicas.experimental_distribute_values_from_function(
        lambda context: tf.constant(np.split(images, 2)[context.replica_id_in_sync_group])
    )

    @tf.function
    def views(halves):
        return two_replicas.run(lambda local: two_views(local, 3, 5, config), args=(halves,))

    for got, want in zip(views(halves), expected, strict=True):
        np.testing.assert_allclose(np.concatenate(_local(two_replicas, got)), want, atol=1e-6)


# -- 8. input sharded per worker ----------------------------------------------------------------


def test_per_replica_batches_concatenate_to_the_single_device_global_batch(tmp_path, two_replicas):
    images, labels = _images(count=40)
    source = ArrayImages(images, labels)
    trainer = train.Pretrainer(_config(tmp_path, batch_size=8), len(images), 10, two_replicas)
    for epoch, skip in ((0, 0), (1, 2)):
        expected = list(trainer.epoch_batches(source, epoch, skip))
        got = list(trainer.distributed_batches(source, epoch, skip))
        assert len(got) == len(expected) == 5 - skip
        for (images_r, labels_r), (want_images, want_labels) in zip(got, expected, strict=True):
            np.testing.assert_array_equal(
                np.concatenate(_local(two_replicas, images_r)), want_images
            )
            np.testing.assert_array_equal(
                np.concatenate(_local(two_replicas, labels_r)), want_labels
            )


def test_two_workers_read_disjoint_blocks_that_make_the_global_batches():
    """What each worker of a 2-worker cluster (one replica each) reads, without the cluster."""
    images, labels = _images(count=40)
    source = ArrayImages(images, labels)
    expected = list(epoch_batches(source, 8, seed=0, epoch=1))
    shards = [
        list(epoch_batches(source, 8, 0, 1, input_context=tf.distribute.InputContext(2, worker, 2)))
        for worker in range(2)
    ]
    for batch, (want_images, _) in enumerate(expected):
        got = np.concatenate([shards[worker][batch][0] for worker in range(2)])
        np.testing.assert_array_equal(got, want_images)
    with pytest.raises(ValueError, match="does not split evenly over 3"):
        shard_order(np.arange(16), 8, 0, 3)


# -- 7 and 8 together: one device and two train alike ------------------------------------------


def test_one_and_two_replicas_give_the_same_losses_with_the_real_augmentation(
    tmp_path, two_replicas
):
    images, labels = _images(count=32)
    runs = []
    one_cpu = tf.distribute.OneDeviceStrategy("/cpu:0")  # the replicas' device type, too
    for name, strategy in (("one", one_cpu), ("two", two_replicas)):
        config = _config(tmp_path, steps=2, out_dir=str(tmp_path / name), precision="float32")
        trainer = train.Pretrainer(config, len(images), 10, strategy=strategy)
        runs.append([row["loss"] for row in _step_rows(trainer, images, labels)])
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-4)
    # Synchronised BatchNorm moves every replica's statistics alike: nothing to average.
    assert not trainer._replica_statistics
    for variable in trainer.encoder.non_trainable_variables:
        first, second = _local(two_replicas, variable.value)
        np.testing.assert_allclose(first, second, rtol=1e-6, err_msg=variable.path)


def _step_rows(trainer, images, labels):
    rows = []
    trainer.fit(images, labels, callbacks=[lambda step, metrics: rows.append(dict(metrics))])
    return rows


# -- 9. several steps per call --------------------------------------------------------------------


def test_train_steps_runs_several_steps_in_one_call_like_single_steps(tmp_path):
    images, labels = _images(count=48)
    source = ArrayImages(images, labels)
    results = []
    for name in ("single", "several"):
        trainer = train.Pretrainer(_config(tmp_path, out_dir=str(tmp_path / name)), 48, 10)
        batches = iter(trainer.distributed_batches(source, epoch=0))
        if name == "single":
            results.append([trainer.train_step(*next(batches)) for _ in range(3)])
        else:
            results.append(trainer.train_steps(batches, 3))
        assert int(trainer.step.numpy()) == 3
    for single, several in zip(*results, strict=True):
        assert single.keys() == several.keys()
        for key in single:
            np.testing.assert_allclose(several[key], single[key], rtol=1e-5, err_msg=key)
    # Calls of at most 8 steps that end on every checkpoint step (5, 10) and at the end (12).
    trainer.config = trainer.config.replace(steps_per_execution=8, checkpoint_every=5)
    assert [trainer.steps_per_call(step, 12) for step in (0, 5, 10)] == [5, 5, 2]
    trainer.config = trainer.config.replace(checkpoint_every=0)
    assert [trainer.steps_per_call(step, 12) for step in (0, 8)] == [8, 4]


# -- 10. CPU replicas ---------------------------------------------------------------------------


_NO_GPU = pytest.mark.skipif(
    bool(tf.config.list_physical_devices("GPU")), reason="cpu_replicas refuses visible GPUs"
)


@_NO_GPU
def test_cpu_replicas_mirror_over_logical_cpus():
    # conftest.py split the CPU in two before TensorFlow started.
    assert runtime.make_strategy("auto", cpu_replicas=2).num_replicas_in_sync == 2
    with pytest.raises(ValueError, match="already initialised 2 logical CPU"):
        runtime.make_strategy("auto", cpu_replicas=3)
    with pytest.raises(ValueError, match="strategy=auto or mirrored"):
        runtime.make_strategy("one_device", cpu_replicas=2)
    with pytest.raises(ValueError, match="cpu_replicas must be >= 0"):
        preset("smoke", cpu_replicas=-1)


@_NO_GPU
def test_cpu_replicas_split_a_fresh_process():
    code = (
        "from simclr_tf import runtime; "
        "print(runtime.make_strategy('mirrored', cpu_replicas=3).num_replicas_in_sync)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "3"


def test_is_chief_is_worker_zero_or_the_chief():
    assert runtime.is_chief()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}

    def strategy(task_type, task_id, spec=cluster):
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(spec), task_type=task_type, task_id=task_id
        )
        return types.SimpleNamespace(cluster_resolver=resolver)

    assert runtime.is_chief(strategy("worker", 0))
    assert not runtime.is_chief(strategy("worker", 1))
    with_chief = {**cluster, "chief": ["127.0.0.1:3"]}
    assert runtime.is_chief(strategy("chief", 0, with_chief))
    assert not runtime.is_chief(strategy("worker", 0, with_chief))
