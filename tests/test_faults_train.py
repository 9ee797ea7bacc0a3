"""Fault injection for pretraining: what a killed, corrupted, interrupted, diverged or doubly
started run does, and what a full disk or a bad flag does. Each test names the issue item it
guards (#14: nothing lost, nothing silently wrong)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from simclr_tf import callbacks, runs, train
from simclr_tf.config import preset
from simclr_tf.data.sources import ArrayImages

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _images(count: int = 64, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, size=count).astype(np.int32)


@pytest.fixture
def data(monkeypatch):
    images, labels = _images()
    monkeypatch.setattr(train, "load_training_images", lambda config: ArrayImages(images, labels))
    return images, labels


def _config(tmp_path, **overrides):
    values = {
        "image_size": 16,
        "batch_size": 16,
        "out_dir": str(tmp_path / "run"),
        "epochs": 3,
        "steps": 4,
        "checkpoint_every": 2,
    }
    return preset("smoke", **{**values, **overrides})


def _steps(run_dir) -> list[int]:
    with open(os.path.join(run_dir, "steps.csv"), newline="", encoding="utf-8") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def _run_script(tmp_path, source: str, *args: str) -> subprocess.CompletedProcess:
    """Runs ``source`` as a script with ``args`` and the smoke flags of a run in ``tmp/run``."""
    script = tmp_path / "script.py"
    script.write_text(source)
    flags = [
        "--preset=smoke",
        "--image_size=16",
        "--batch_size=16",
        f"--out_dir={tmp_path / 'run'}",
    ]
    return subprocess.run(
        [sys.executable, str(script), *args, *flags],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _listing(path) -> dict[str, int]:
    """Every file under ``path`` with its size (to check that nothing changed)."""
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            found[os.path.relpath(full, path)] = os.path.getsize(full)
    return found


# -- 1. a garbage checkpoint state file -------------------------------------------------- -----


def test_garbage_state_file_neither_restarts_nor_unlocks_overwriting(tmp_path, data):
    config = _config(tmp_path)
    train.pretrain(config)
    state = tmp_path / "run" / "checkpoints" / "checkpoint"
    state.write_bytes(b"\x00\xffnot a checkpoint state\n")
    with pytest.raises(FileExistsError, match="--resume"):
        train.pretrain(config)
    with pytest.warns(UserWarning, match="state file"):
        train.pretrain(config.replace(resume=True, steps=6))
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]  # continued at 4, not restarted
    assert tf.train.latest_checkpoint(str(state.parent)).endswith("ckpt-6")


# -- 2. a damaged latest checkpoint ------------------------------------------------------- ----


@pytest.mark.parametrize("damage", ["truncated_index", "missing_data", "bit_flip"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, data, damage):
    config = _config(tmp_path)
    train.pretrain(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    index = checkpoints / "ckpt-4.index"
    data_file = checkpoints / "ckpt-4.data-00000-of-00001"
    if damage == "truncated_index":
        index.write_bytes(index.read_bytes()[:20])
    elif damage == "missing_data":
        data_file.unlink()
    else:
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data_file.write_bytes(bytes(raw))
    with pytest.warns(UserWarning) as warned:
        train.pretrain(config.replace(resume=True, steps=6))
    text = " ".join(str(w.message) for w in warned)
    assert "ckpt-4" in text and "damaged" in text
    assert "Continuing from step 2" in text
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]


def test_no_intact_checkpoint_is_refused_and_nothing_is_written(tmp_path, data):
    config = _config(tmp_path)
    train.pretrain(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    for name in os.listdir(checkpoints):
        if name.endswith(".index"):
            (checkpoints / name).write_bytes(b"garbage")
    before = _listing(tmp_path / "run")
    with pytest.warns(UserWarning), pytest.raises(runs.CheckpointError, match="None of the"):
        train.pretrain(config.replace(resume=True, steps=6))
    assert _listing(tmp_path / "run") == before


# -- 3. two runs in one directory -------------------------------------------------------- -----


def test_a_live_lock_refuses_the_second_run_and_a_stale_one_is_taken_over(tmp_path, data):
    config = _config(tmp_path, steps=2)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.makedirs(tmp_path / "run")
        lock = tmp_path / "run" / runs.LOCK_FILE
        lock.write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid, "since": 0}))
        with pytest.raises(runs.RunLockedError, match=f"process {holder.pid}"):
            train.pretrain(config)
        assert not (tmp_path / "run" / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    train.pretrain(config)  # the holder is gone: its lock is stale
    assert not lock.exists()
    assert _steps(tmp_path / "run") == [1, 2]


def test_two_command_line_runs_at_once_one_is_refused(tmp_path):
    out_dir = tmp_path / "run"
    flags = ["--preset=smoke", "--image_size=16", "--batch_size=16", f"--out_dir={out_dir}"]
    # The first run is long (it is stopped below), so it holds the lock while the second starts.
    long_run = [sys.executable, "-m", "simclr_tf.train", *flags, "--epochs=100", "--steps=0"]
    first = subprocess.Popen(long_run, env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        lock, steps_file = out_dir / runs.LOCK_FILE, out_dir / "steps.csv"
        for _ in range(1200):  # until the first run is training
            if steps_file.exists() or first.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        second = subprocess.run(
            [sys.executable, "-m", "simclr_tf.train", *flags, "--steps=4"],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        first.terminate()  # SIGTERM: the first run checkpoints and exits
        first.wait(timeout=300)
    assert second.returncode == 2, second.stderr[-2000:]
    assert "is in use by process" in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 130, first.stderr.read()[-2000:]
    steps = _steps(out_dir)
    assert steps == list(range(1, len(steps) + 1))  # one writer: no doubled rows
    assert not lock.exists()


# -- 4. a failed resume changes nothing ---------------------------------------------------- ---


def test_resume_with_another_head_and_no_config_json_is_refused_without_writing(tmp_path, data):
    config = _config(tmp_path)
    train.pretrain(config)
    os.remove(tmp_path / "run" / "config.json")
    before = _listing(tmp_path / "run")
    with pytest.raises(runs.CheckpointError, match="other models"):
        train.pretrain(config.replace(resume=True, projection_dim=16))
    assert _listing(tmp_path / "run") == before  # config.json is not written with the new value
    train.pretrain(config.replace(resume=True, steps=6))  # the right resume still works


@pytest.mark.parametrize(
    "field, value", [("optimizer", "sgd"), ("precision", "mixed_bfloat16"), ("online_probe", False)]
)
def test_resume_with_a_field_the_checkpoint_depends_on_is_refused(tmp_path, data, field, value):
    config = _config(tmp_path)
    train.pretrain(config)
    before = _listing(tmp_path / "run")
    with pytest.raises(ValueError, match=f"--{field}={value!r} \\(the run has"):
        train.pretrain(config.replace(resume=True, **{field: value}))
    assert _listing(tmp_path / "run") == before


# -- 5. Ctrl-C, SIGTERM and a damaged steps.csv ---------------------------------------------- -


def test_ctrl_c_checkpoints_the_current_step_and_says_how_to_resume(tmp_path):
    images, labels = _images()
    config = _config(tmp_path, steps=6, checkpoint_every=0)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)

    def interrupt(step, metrics):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(callbacks.TrainingInterrupted, match="--resume") as raised:
        trainer.fit(images, labels, callbacks=[interrupt])
    assert raised.value.step == 3
    run = runs.RunDirectory(config.out_dir)
    assert run.checkpoint_steps() == [3]
    resumed = train.Pretrainer(config.replace(resume=True), len(images), num_classes=10)
    resumed.fit(images, labels)
    assert _steps(config.out_dir) == [1, 2, 3, 4, 5, 6]


_SIGTERM_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from simclr_tf import callbacks, train

    original = train.Pretrainer.default_callbacks

    def with_sigterm(self, run, checkpointer=None):
        def terminate(step, metrics):
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)
        return [*original(self, run, checkpointer), callbacks.StepFunction(terminate)]

    train.Pretrainer.default_callbacks = with_sigterm
    sys.exit(train.main(sys.argv[1:]))
    """
)


def test_sigterm_on_the_command_line_checkpoints_and_exits_cleanly(tmp_path):
    out_dir = tmp_path / "run"
    done = _run_script(tmp_path, _SIGTERM_SCRIPT, "--steps=6", "--checkpoint_every=0")
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Interrupted at step 3" in done.stderr and "--resume" in done.stderr
    assert "Traceback" not in done.stderr
    assert runs.RunDirectory(out_dir).checkpoint_steps() == [3]
    assert not (out_dir / runs.LOCK_FILE).exists()


def test_a_garbage_row_in_steps_csv_does_not_block_resume(tmp_path, data):
    config = _config(tmp_path)
    train.pretrain(config)
    with open(tmp_path / "run" / "steps.csv", "ab") as handle:
        handle.write(b"\x00\xff,garbage,,\nnot-a-step,1,2\n")
    train.pretrain(config.replace(resume=True, steps=6))
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]


# -- 6. divergence -----------------------------------------------------------------------------


def test_weights_that_diverged_are_never_checkpointed(tmp_path):
    images, labels = _images()
    config = _config(tmp_path, steps=4, checkpoint_every=0)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)

    def blow_up(step, metrics):
        if step == 2:
            kernel = trainer.encoder.trainable_variables[0]
            kernel.assign(tf.fill(kernel.shape, 1e30))

    with pytest.raises(callbacks.TrainingDivergedError) as raised:
        trainer.fit(images, labels, callbacks=[blow_up])
    assert "No checkpoint was saved before this" in str(raised.value)
    assert runs.RunDirectory(config.out_dir).checkpoint_steps() == []


def test_divergence_message_names_the_checkpoint_on_disk(tmp_path):
    images, labels = _images()
    config = _config(tmp_path, steps=4, checkpoint_every=2)
    trainer = train.Pretrainer(config, num_examples=len(images), num_classes=10)

    def blow_up(step, metrics):
        if step == 2:
            for variable in trainer.encoder.trainable_variables:
                variable.assign(tf.fill(variable.shape, float("nan")))

    with pytest.raises(callbacks.TrainingDivergedError, match="step 2 in") as raised:
        trainer.fit(images, labels, callbacks=[blow_up])
    assert "holds finite weights" in str(raised.value)
    assert runs.RunDirectory(config.out_dir).checkpoint_steps() == [2]


# -- 10. bad flags and a full disk ------------------------------------------------------- -----


def test_an_out_dir_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "file.txt"
    path.write_text("keep me")
    code = train.main(["--preset=smoke", f"--out_dir={path}"])
    assert code == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert path.read_text() == "keep me"


_DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from simclr_tf import train
    sys.exit(train.main(sys.argv[2:]))
    """
)


def test_a_full_disk_during_a_checkpoint_loses_nothing_and_leaves_no_partial_files(tmp_path):
    out_dir = tmp_path / "run"
    done = _run_script(tmp_path, _DISK_FULL_SCRIPT, "300000", "--steps=3", "--checkpoint_every=2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "The disk is full" in done.stderr and "Traceback" not in done.stderr
    leftovers = [path for path in _listing(out_dir) if "_temp" in path or ".tmp" in path]
    assert not leftovers
    assert not (out_dir / runs.LOCK_FILE).exists()


# -- 13. leftovers --------------------------------------------------------------------------- -


def test_leftovers_of_killed_writes_are_cleaned_and_a_moved_export_put_back(tmp_path, data):
    config = _config(tmp_path)
    result = train.pretrain(config)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "ckpt-9_temp").mkdir()
    (run_dir / ".export-abc").mkdir()
    os.replace(result.encoder_path, run_dir / ".retired-xyz")  # killed between two renames
    run = runs.RunDirectory(run_dir)
    with run.lock():
        cleaned = run.clean_leftovers()
    assert len(cleaned) == 3
    assert os.path.isfile(run_dir / "encoder" / "saved_model.pb")
    assert not (run_dir / ".export-abc").exists()
    assert not (run_dir / "checkpoints" / "ckpt-9_temp").exists()
    (run_dir / "checkpoints" / "ckpt-9_temp").mkdir()
    with pytest.warns(UserWarning, match="Cleaned up .*ckpt-9_temp"):
        train.pretrain(config.replace(resume=True, steps=6))


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path, capsys):
    out_dir = tmp_path / "never"
    code = train.main(
        ["--preset=smoke", "--dataset=folder", f"--data_dir={tmp_path / 'missing'}"]
        + [f"--out_dir={out_dir}"]
    )
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not out_dir.exists()
