"""Tests for simclr_tf.callbacks: the hooks' order and what the progress logger writes."""

from __future__ import annotations

import io

import numpy as np

from simclr_tf import callbacks, train
from simclr_tf.config import preset


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _row(epoch: int) -> dict[str, float]:
    return {
        "epoch": epoch,
        "step": 4 * epoch,
        "loss": 1.5,
        "contrastive_accuracy": 0.5,
        "probe_accuracy": float("nan"),
        "images_per_second": 100.0,
        "seconds": 2.0,
    }


def _drive(logger: callbacks.ProgressLogger) -> None:
    for epoch in range(2):
        logger.on_epoch_begin(epoch, steps=4, skip=0)
        for step in range(4):
            metrics = {"loss": 1.0, "contrastive_accuracy": 0.5, "learning_rate": 0.1}
            logger.on_step_end(4 * epoch + step + 1, metrics)
        logger.on_epoch_end(epoch, _row(epoch + 1))


def test_progress_in_a_log_file_is_one_line_per_epoch_without_carriage_returns():
    stream = io.StringIO()
    _drive(callbacks.ProgressLogger(verbose=1, epochs=2, stream=stream))
    text = stream.getvalue()
    assert "\r" not in text and "\x08" not in text
    assert text.splitlines() == [
        callbacks.format_epoch(_row(1), 2),
        callbacks.format_epoch(_row(2), 2),
    ]


def test_progress_on_a_terminal_is_a_live_bar(monkeypatch, capsys):
    stream = _Terminal()
    logger = callbacks.ProgressLogger(verbose=1, epochs=2, stream=stream)
    assert logger.bar_enabled and not logger.lines_enabled
    assert not callbacks.ProgressLogger(verbose=0, epochs=2, stream=stream).bar_enabled
    assert callbacks.ProgressLogger(verbose=2, epochs=2, stream=stream).lines_enabled


def test_hooks_run_in_order_and_plain_functions_see_every_step(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, 16, 16, 3), dtype=np.uint8)
    config = preset("smoke", image_size=16, batch_size=16, steps=0, epochs=2, out_dir=str(tmp_path))
    trainer = train.Pretrainer(config, num_examples=len(images))
    events = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, step):
            events.append(("begin", step))

        def on_epoch_begin(self, epoch, steps, skip):
            events.append(("epoch", epoch, steps, skip))

        def on_epoch_end(self, epoch, row):
            events.append(("epoch_end", epoch, int(row["step"])))

        def on_train_end(self):
            events.append(("end",))

    steps = []
    trainer.fit(images, callbacks=[Recorder(), lambda step, metrics: steps.append(step)])
    assert steps == [1, 2, 3, 4]
    assert events == [
        ("begin", 0),
        ("epoch", 0, 2, 0),
        ("epoch_end", 0, 2),
        ("epoch", 1, 2, 0),
        ("epoch_end", 1, 4),
        ("end",),
    ]
