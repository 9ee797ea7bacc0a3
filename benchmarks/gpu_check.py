"""The GPU verification of the distribution, precision and XLA paths, in one command.

Run on a GPU machine (at most about 8 minutes; every check has a time cap, and checks that no
longer fit in ``--budget_s`` are skipped with a line that says so):

    SIMCLR_DATA_DIR=../shared/datasets/cifar10 .venv/bin/python benchmarks/gpu_check.py

It writes one JSON file, ``benchmarks/results/<machine>/gpu_check-<date>.json`` (``<machine>``
is the GPU's name, e.g. ``nvidia-h200``, or the CPU's), after every check, so an interrupted run
keeps what it measured. The checks, in order:

1. ``devices``: TensorFlow's GPUs, their compute capability, memory growth, ``nvidia-smi``.
2. ``tests``: ``pytest -k`` on the distribution, precision and jit tests.
3. ``precision``: a few steps in ``mixed_float16`` and ``mixed_bfloat16``, with the loss scale
   and the count of skipped steps read back.
4. ``two_logical_gpus``: one card split into two logical GPUs, ``MirroredStrategy`` with
   ``ReductionToOneDevice``; one replica's float16 gradients overflow: the step must be
   skipped on both, the scale halved, the weights unchanged. Then a ``jit_compile`` step on the
   two logical GPUs, reported as information (XLA's all-reduce goes through NCCL, which may
   refuse two ranks on one device).
5. ``views``: the augmentation on the GPU equals the augmentation on the CPU.
6. ``determinism``: the same short run twice with ``TF_DETERMINISTIC_OPS=1``: equal losses.
7. ``throughput``: ResNet-18 and ResNet-50 (the paper's CIFAR architecture) at batch 512,
   XLA off and on: images/s and GFLOP/s against the measured matmul peak and the card's
   specified peak.
8. ``full_epoch``: one epoch of the ``full`` preset on CIFAR-10 (from ``SIMCLR_DATA_DIR``).

On a machine without a GPU it still runs: the GPU-only checks are skipped, each with a line.
``--quick`` (what ``tests/test_gpu_check.py`` runs) keeps only quick checks at tiny sizes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf import pretrainer, runtime, train  # noqa: E402
from simclr_tf.augment import AugmentConfig, two_views  # noqa: E402
from simclr_tf.config import preset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEST_SELECTION = "replica or precision or jit or float16 or worker or views or batches or gather"
"""``pytest -k`` expression of the distribution, precision and jit tests."""

TEST_FILES = ("tests/test_distribute.py", "tests/test_losses.py", "tests/test_train.py")

SPEC_PEAK_TFLOPS = {
    # Dense tensor-core TFLOP/s (bfloat16/float16) from the vendors' data sheets.
    "h200": 989.0,
    "h100": 989.0,
    "a100": 312.0,
    "l40s": 362.0,
    "l4": 121.0,
    "a10": 125.0,
    "v100": 125.0,
    "t4": 65.0,
}
"""Specified peak per card name fragment; the measured matmul peak is reported beside it."""


class Skip(Exception):
    """Raised by a check that does not apply here; its message says why."""


# -- helpers ------------------------------------------------------------------------------------


def gpus() -> list[tf.config.PhysicalDevice]:
    return tf.config.list_physical_devices("GPU")


def machine_name() -> str:
    """``nvidia-h200`` for a GPU machine, ``amd-epyc`` style for a CPU-only one."""
    if gpus():
        details = tf.config.experimental.get_device_details(gpus()[0])
        name = details.get("device_name", "gpu")
    else:
        name = " ".join(runtime.cpu_name().split()[:2])
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def require_gpu() -> None:
    if not gpus():
        raise Skip("needs a GPU; none is visible")


def run_child(name: str, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs ``gpu_check.py --child name`` in a fresh process; returns its last JSON line."""
    command = [sys.executable, os.path.abspath(__file__), "--child", name]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        cwd=ROOT,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        raise RuntimeError(f"child {name} exited {result.returncode}: {result.stderr[-1500:]}")
    return json.loads(lines[-1])


def small_config(quick: bool, **overrides: Any):
    """A short run's config: tiny on a CPU or in quick mode, ResNet-18 at 32 px otherwise."""
    if quick or not gpus():
        values = {"encoder": "small_cnn", "image_size": 16, "batch_size": 16}
    else:
        values = {"encoder": "resnet18", "image_size": 32, "batch_size": 256}
    values["out_dir"] = tempfile.mkdtemp(prefix="gpu_check_")
    return preset("smoke", **{**values, **overrides})


def random_batch(config, count: int | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    count = count or config.batch_size
    size = config.image_size
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, size=count).astype(np.int32)


# -- children (fresh processes) -----------------------------------------------------------------


def _two_logical_gpus() -> tf.distribute.Strategy:
    gpu = gpus()[0]
    tf.config.set_logical_device_configuration(
        gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=8192)] * 2
    )
    devices = [device.name for device in tf.config.list_logical_devices("GPU")][:2]
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def child_overflow() -> dict[str, Any]:
    strategy = _two_logical_gpus()
    config = small_config(
        quick=True, image_size=32, precision="mixed_float16", sync_batchnorm=False
    )
    images, labels = random_batch(config)
    trainer = train.Pretrainer(config, 64, 10, strategy=strategy)
    batch = next(
        iter(
            strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices((images, labels)).batch(config.batch_size)
            )
        )
    )
    before = [v.numpy().copy() for v in trainer.encoder.trainable_variables]
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from distribute_helpers import overflow_on_replica_one

    real_loss = pretrainer.nt_xent_loss
    pretrainer.nt_xent_loss = overflow_on_replica_one(real_loss)
    skipped = trainer.train_step(*batch)
    pretrainer.nt_xent_loss = real_loss
    unchanged = all(
        np.array_equal(np.asarray(copy), old)
        for variable, old in zip(trainer.encoder.trainable_variables, before, strict=True)
        for copy in strategy.experimental_local_results(variable.value)
    )
    return {
        "replicas": trainer.num_replicas,
        "skipped_steps": skipped["skipped_steps"],
        "scale_before": skipped["loss_scale"],
        "scale_after": float(trainer.optimizer.dynamic_scale.numpy()),
        "weights_unchanged_on_every_replica": unchanged,
        "ok": unchanged and skipped["skipped_steps"] == 1.0,
    }


def child_jit_two_logical_gpus() -> dict[str, Any]:
    strategy = _two_logical_gpus()
    config = small_config(quick=True, image_size=32, jit_compile=True)
    images, labels = random_batch(config)
    trainer = train.Pretrainer(config, 64, 10, strategy=strategy)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(config.batch_size)
    metrics = trainer.train_step(*next(iter(strategy.experimental_distribute_dataset(dataset))))
    return {"loss": metrics["loss"], "ok": bool(np.isfinite(metrics["loss"]))}


def child_deterministic_run() -> dict[str, Any]:
    tf.config.experimental.enable_op_determinism()
    quick = os.environ.get("GPU_CHECK_QUICK") == "1"
    config = small_config(quick, steps=4)
    images, labels = random_batch(config, count=4 * config.batch_size)
    trainer = train.Pretrainer(config, len(images), 10)
    losses = []
    for step in range(4):
        part = slice(step * config.batch_size, (step + 1) * config.batch_size)
        losses.append(trainer.train_step(images[part], labels[part])["loss"])
    return {"losses": [repr(loss) for loss in losses]}


CHILDREN = {
    "overflow": child_overflow,
    "jit_two_logical_gpus": child_jit_two_logical_gpus,
    "deterministic_run": child_deterministic_run,
}


# -- checks -------------------------------------------------------------------------------------


def check_devices(args: argparse.Namespace) -> dict[str, Any]:
    found = runtime.configure_devices()  # memory growth, before anything initialises the GPUs
    devices = []
    for gpu in found:
        details = tf.config.experimental.get_device_details(gpu)
        devices.append(
            {
                "name": details.get("device_name"),
                "compute_capability": details.get("compute_capability"),
                "memory_growth": tf.config.experimental.get_memory_growth(gpu),
            }
        )
    result: dict[str, Any] = {"tensorflow": tf.__version__, "gpus": devices}
    result["cpu"] = runtime.cpu_name()
    if shutil.which("nvidia-smi"):
        query = "name,memory.total,driver_version"
        smi = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        result["nvidia_smi"] = smi.stdout.strip().splitlines()
    return result


def check_tests(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        raise Skip("not in --quick (run without it for the pytest selection)")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    command += ["-k", TEST_SELECTION]
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.cap_s, cwd=ROOT)
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    return {
        "command": " ".join(command[1:]),
        "returncode": result.returncode,
        "summary": summary[0],
        "failed": failures,
        "ok": result.returncode == 0,
    }


def check_precision(args: argparse.Namespace) -> dict[str, Any]:
    result = {}
    for precision in ("mixed_float16", "mixed_bfloat16"):
        config = small_config(args.quick, precision=precision, steps=3)
        images, labels = random_batch(config)
        trainer = train.Pretrainer(config, len(images), 10)
        rows = [trainer.train_step(images, labels) for _ in range(3)]
        result[precision] = {
            "losses": [row["loss"] for row in rows],
            "loss_scale": [row["loss_scale"] for row in rows],
            "skipped_steps": rows[-1]["skipped_steps"],
            "optimizer": type(trainer.optimizer).__name__,
            "ok": all(np.isfinite(row["loss"]) for row in rows),
        }
    result["ok"] = all(result[name]["ok"] for name in ("mixed_float16", "mixed_bfloat16"))
    return result


def check_two_logical_gpus(args: argparse.Namespace) -> dict[str, Any]:
    require_gpu()
    result = {"overflow": run_child("overflow", args.cap_s)}
    try:
        result["jit_information"] = run_child("jit_two_logical_gpus", args.cap_s)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        result["jit_information"] = {"error": str(error)[-600:]}
    result["ok"] = result["overflow"]["ok"]
    return result


def check_views(args: argparse.Namespace) -> dict[str, Any]:
    require_gpu()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    result = {}
    for preset_name in ("cifar", "imagenet"):
        config = AugmentConfig.preset(preset_name)
        with tf.device("/GPU:0"):
            on_gpu = [view.numpy() for view in two_views(images, 0, 7, config)]
        with tf.device("/CPU:0"):
            on_cpu = [view.numpy() for view in two_views(images, 0, 7, config)]
        difference = max(float(np.max(np.abs(g - c))) for g, c in zip(on_gpu, on_cpu, strict=True))
        result[preset_name] = {"max_abs_difference": difference, "ok": difference < 1e-4}
    result["ok"] = all(entry["ok"] for entry in result.values())
    return result


def check_determinism(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        raise Skip("not in --quick (two fresh processes)")
    env = {"TF_DETERMINISTIC_OPS": "1", "GPU_CHECK_QUICK": "0"}
    runs = [run_child("deterministic_run", args.cap_s / 2, env)["losses"] for _ in range(2)]
    return {"runs": runs, "ok": runs[0] == runs[1]}


def _train_flops_per_image(trainer: train.Pretrainer) -> float:
    from throughput import forward_flops

    per_view = forward_flops(trainer.encoder) + forward_flops(trainer.projection_head)
    return 2 * 3 * per_view  # two views, training = 3 x forward


def _timed_steps(trainer: train.Pretrainer, images, labels, steps: int, per_call: int) -> float:
    """Seconds for ``steps`` steps on a fixed batch, ``per_call`` steps per call."""
    if per_call == 1:
        call = lambda: trainer.train_step(images, labels)  # noqa: E731
    else:
        batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
        iterator = iter(trainer.strategy.experimental_distribute_dataset(batches))
        call = lambda: trainer.train_steps(iterator, per_call)  # noqa: E731
    for _ in range(2):  # tracing, XLA compilation
        call()
    start = time.perf_counter()
    for _ in range(max(1, steps // per_call)):
        call()
    return time.perf_counter() - start


def _throughput_row(
    encoder: str, jit: bool, precision: str, steps: int, per_call: int = 1
) -> dict[str, Any]:
    config = preset(
        "full",
        encoder=encoder,
        batch_size=512,
        precision=precision,
        jit_compile=jit,
        out_dir=tempfile.mkdtemp(prefix="gpu_check_"),
        verbose=0,
    )
    images, labels = random_batch(config)
    trainer = train.Pretrainer(config, 50_000, 10)
    images, labels = tf.constant(images), tf.constant(labels)
    steps = max(1, steps // per_call) * per_call
    rate = steps * config.batch_size / _timed_steps(trainer, images, labels, steps, per_call)
    return {"images_per_second": rate, "gflops": rate * _train_flops_per_image(trainer) / 1e9}


def _spec_peak_gflops() -> float | None:
    name = machine_name()
    for fragment, tflops in SPEC_PEAK_TFLOPS.items():
        if fragment in name:
            return tflops * 1000
    return None


def check_throughput(args: argparse.Namespace) -> dict[str, Any]:
    require_gpu()
    from throughput import matmul_peak

    capability = tf.config.experimental.get_device_details(gpus()[0]).get("compute_capability")
    precision = "mixed_bfloat16" if capability and capability[0] >= 8 else "mixed_float16"
    measured_peak = matmul_peak("mixed_bfloat16", size=8192)
    spec_peak = _spec_peak_gflops()
    rows = {}
    deadline = time.perf_counter() + args.cap_s
    settings = [(e, jit, 1) for e in ("resnet18", "resnet50") for jit in (False, True)]
    settings.append(("resnet18", False, 8))  # what 8 steps per call save
    for encoder, jit, per_call in settings:
        name = f"{encoder} jit={'on' if jit else 'off'} steps_per_call={per_call}"
        if time.perf_counter() > deadline:
            rows[name] = {"skipped": "time cap"}
            continue
        row = _throughput_row(encoder, jit, precision, steps=16, per_call=per_call)
        row["percent_of_matmul_peak"] = 100 * row["gflops"] / measured_peak
        if spec_peak:
            row["percent_of_spec_peak"] = 100 * row["gflops"] / spec_peak
        rows[name] = row
    return {
        "precision": precision,
        "batch_size": 512,
        "matmul_peak_gflops": measured_peak,
        "spec_peak_gflops": spec_peak,
        "rows": rows,
    }


def check_full_epoch(args: argparse.Namespace) -> dict[str, Any]:
    require_gpu()
    data_dir = os.environ.get("SIMCLR_DATA_DIR")
    if not data_dir:
        raise Skip("needs the full CIFAR-10: set SIMCLR_DATA_DIR")
    config = preset(
        "full",
        dataset="cifar10",
        data_dir=data_dir,
        steps=50_000 // 512,
        precision="mixed_bfloat16",
        checkpoint_every=0,
        out_dir=tempfile.mkdtemp(prefix="gpu_check_full_"),
        verbose=2,
    )
    result = train.pretrain(config)
    row = result.epochs[-1]
    return {
        "steps": int(row["step"]),
        "loss": row["loss"],
        "images_per_second": row["images_per_second"],
        "seconds": row["seconds"],
        "ok": bool(np.isfinite(row["loss"])),
    }


CHECKS: tuple[tuple[str, Callable, float], ...] = (
    # name, function, time cap in seconds
    ("devices", check_devices, 30),
    ("tests", check_tests, 180),
    ("precision", check_precision, 60),
    ("two_logical_gpus", check_two_logical_gpus, 90),
    ("views", check_views, 30),
    ("determinism", check_determinism, 90),
    ("throughput", check_throughput, 180),
    ("full_epoch", check_full_epoch, 120),
)


# -- the run ------------------------------------------------------------------------------------


def run_check(function: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """One check, with its outcome: ``ok``, ``failed``, ``skipped`` (and why) or ``error``."""
    start = time.perf_counter()
    try:
        result = function(args)
        status = "failed" if result.get("ok") is False else "ok"
    except Skip as reason:
        result, status = {"reason": str(reason)}, "skipped"
    except Exception as error:  # noqa: BLE001 -- a failed check must not stop the others
        result, status = {"error": f"{type(error).__name__}: {error}"[-2000:]}, "error"
    result["status"] = status
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Tiny sizes, quick checks only.")
    parser.add_argument("--budget_s", type=float, default=480.0, help="Whole run, seconds.")
    parser.add_argument("--out_dir", help="Default: benchmarks/results/<machine>/.")
    parser.add_argument("--only", nargs="+", choices=[name for name, _, _ in CHECKS])
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child]()))
        return {}
    out_dir = args.out_dir or os.path.join(ROOT, "benchmarks", "results", machine_name())
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"gpu_check-{datetime.date.today().isoformat()}.json")
    report: dict[str, Any] = {"machine": machine_name(), "quick": args.quick, "checks": {}}
    deadline = time.perf_counter() + args.budget_s
    for name, function, cap in CHECKS:
        if args.only and name not in args.only:
            continue
        left = deadline - time.perf_counter()
        if left < min(cap, 20):
            result = {"status": "skipped", "reason": f"only {left:.0f} s of the budget left"}
        else:
            args.cap_s = min(cap, left)
            result = run_check(function, args)
        report["checks"][name] = result
        print(f"{name}: {result['status']}  {result.get('reason', result.get('error', ''))}")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)
    print(f"Wrote {path}")
    return report


if __name__ == "__main__":
    main()
