"""Tests for simclr_tf.runs: CSV rows after a resume, the lock, leftovers, read_metrics."""

from __future__ import annotations

import json
import os
import socket

import pytest

from simclr_tf import runs


def test_truncate_logs_keeps_rows_up_to_the_step_and_drops_unreadable_ones(tmp_path):
    run = runs.RunDirectory(tmp_path)
    for step in range(1, 6):
        run.append_step(step, {"loss": 1.0 / step})
    with open(run.steps, "a", encoding="utf-8") as handle:
        handle.write("\0\0,,\nseven,1\n")
    run.truncate_logs(3)
    with open(run.steps, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == ",".join(runs.STEP_COLUMNS)
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_read_metrics_turns_empty_cells_into_nan(tmp_path):
    run = runs.RunDirectory(tmp_path)
    run.append_epoch({"epoch": 1, "step": 4, "loss": 2.0, "probe_accuracy": float("nan")})
    metrics = runs.read_metrics(tmp_path)
    assert metrics["loss"].tolist() == [2.0]
    assert str(metrics["probe_accuracy"][0]) == "nan"
    with pytest.raises(FileNotFoundError, match="No metrics file"):
        runs.read_metrics(tmp_path / "missing")


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    run = runs.RunDirectory(tmp_path / "run")
    with run.lock():
        holder = json.loads(open(run.lock_file, encoding="utf-8").read())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(runs.RunLockedError, match=f"process {os.getpid()}"):
            with runs.RunDirectory(tmp_path / "run").lock():
                pass
    assert not os.path.exists(run.lock_file)


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"host": "x", "pid": "y"})])
def test_half_written_or_foreign_locks(tmp_path, content):
    run = runs.RunDirectory(tmp_path)
    with open(run.lock_file, "w", encoding="utf-8") as handle:
        handle.write(content)
    if '"host": "x"' in content:  # another machine: respected, since it cannot be checked
        with pytest.raises(runs.RunLockedError, match="on x"):
            with run.lock():
                pass
    else:
        with run.lock():
            pass


def test_a_folder_created_by_a_failed_run_is_removed(tmp_path):
    run = runs.RunDirectory(tmp_path / "new")
    with pytest.raises(RuntimeError), run.lock():
        os.makedirs(run.checkpoints)
        raise RuntimeError("the data could not be loaded")
    assert not os.path.exists(tmp_path / "new")


def test_a_file_is_not_a_run_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        runs.RunDirectory(tmp_path / "f")


def test_checkpoint_steps_come_from_the_index_files(tmp_path):
    run = runs.RunDirectory(tmp_path)
    os.makedirs(run.checkpoints)
    for name in ("ckpt-2.index", "ckpt-10.index", "ckpt-3_temp", "checkpoint", "ckpt-x.index"):
        open(os.path.join(run.checkpoints, name), "w").close()
    assert run.checkpoint_steps() == [10, 2]
    assert run.repair_checkpoint_state()
    with open(os.path.join(run.checkpoints, "checkpoint"), encoding="utf-8") as handle:
        assert handle.read().splitlines()[0] == 'model_checkpoint_path: "ckpt-10"'
