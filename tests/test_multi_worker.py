"""Two real worker processes of the command line on 127.0.0.1: one writer, the same losses.

Each worker is ``python -m simclr_tf.train --strategy=multi_worker`` with its ``TF_CONFIG``; both
name one ``--out_dir`` (shared storage, as on a cluster with a network file system). The chief
(worker 0) alone writes the run directory; the other worker saves its checkpoints into a
scratch folder that it removes. The views and batches do not depend on the number of workers,
so the losses equal those of one process that trains the same global batch on two replicas
(two logical CPUs, the same synchronised BatchNorm). Against a single device the first two
steps agree to 1e-4 and the next ones drift by about 1e-3 (measured with SGD): synchronised
BatchNorm computes its statistics in another order than the single-device layer.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from worker_helpers import run_workers

FLAGS = [
    "--preset=smoke",
    "--image_size=16",
    "--batch_size=16",
    "--steps=4",
    "--epochs=1",
    "--checkpoint_every=2",
    "--verbose=2",
    # Plain SGD: Adam would turn float rounding of near-zero gradients, summed in another order
    # over two workers, into full-size steps of their sign.
    "--optimizer=sgd",
    "--lr=0.1",
]


def _losses(run_dir) -> list[float]:
    with open(os.path.join(run_dir, "steps.csv"), newline="", encoding="utf-8") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_two_workers_write_once_and_match_one_process(tmp_path):
    shared = tmp_path / "shared_run"
    for index in range(2):
        os.makedirs(tmp_path / f"tmp{index}")
    outputs = run_workers(
        2,
        lambda index: [
            *(sys.executable, "-m", "simclr_tf.train", *FLAGS),
            *("--strategy=multi_worker", f"--out_dir={shared}"),
        ],
        lambda index: {"TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp_path / f"tmp{index}")},
        timeout=300,
    )
    for returncode, _, stderr in outputs:
        assert returncode == 0, stderr[-3000:]
    # Both workers trained the same steps: their epoch lines (loss, accuracy) agree.
    epoch_lines = [
        [
            line.split("img/s")[0].rsplit("  ", 1)[0]
            for line in out.splitlines()
            if "epoch 1/1" in line
        ]
        for _, out, _ in outputs
    ]
    assert epoch_lines[0] and epoch_lines[0] == epoch_lines[1]
    # One writer: the run directory is the chief's, with one row per step.
    assert sorted(os.listdir(shared)) == [
        "checkpoints",
        "config.json",
        "encoder",
        "logs",
        "metrics.csv",
        "steps.csv",
    ]
    assert len(os.listdir(shared / "logs")) == 1
    assert sorted(os.listdir(shared / "checkpoints")) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    assert os.listdir(tmp_path / "tmp1") == []  # the other worker's scratch folder is gone
    # The same global batch on two replicas of one process gives the same losses.
    single = tmp_path / "single_run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simclr_tf.train",
            *FLAGS,
            "--cpu_replicas=2",
            f"--out_dir={single}",
        ],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(_losses(shared)) == 4
    assert _losses(shared) == pytest.approx(_losses(single), abs=1e-4)
