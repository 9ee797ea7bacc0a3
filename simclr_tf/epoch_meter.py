"""Per-epoch metering of the training loop: the running means of an epoch's step metrics and
its throughput, which become the epoch's row of ``metrics.csv``.

:meth:`simclr_tf.pretrainer.Pretrainer.fit` makes one :class:`EpochMeter` per epoch, adds the
metrics of every call of the compiled step to it, and writes :meth:`EpochMeter.row` at the
epoch's end (with the representation quality added).
"""

from __future__ import annotations

import time

__all__ = ["LAST_VALUE_METRICS", "EpochMeter"]

LAST_VALUE_METRICS = ("loss_scale", "skipped_steps")
"""Step metrics that an epoch's row takes from its last step instead of averaging."""


class EpochMeter:
    """Running means of the step metrics of one epoch, and its throughput.

    Throughput is wall time between the ends of consecutive steps, so it includes waiting for
    data, logging and checkpoints; the first step of the epoch (tracing, iterator start) is
    left out. The loss scale and the count of skipped steps are not averaged: the row has
    their values at the epoch's last step (:data:`LAST_VALUE_METRICS`).

    Args:
        batch_size: images per step (the global batch), for the throughput.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.timed_images = 0
        self.timed_seconds = 0.0
        self.start = time.perf_counter()
        self.last_tick: float | None = None
        self.last: dict[str, float] = {}

    def add(self, rows: list[dict[str, float]]) -> None:
        """Counts the steps of one call (one row each); adds ``images_per_second`` (so far
        this epoch) to every row."""
        tick = time.perf_counter()
        if self.last_tick is not None:
            self.timed_images += self.batch_size * len(rows)
            self.timed_seconds += tick - self.last_tick
        self.last_tick = tick
        for metrics in rows:
            for name, value in metrics.items():
                self.sums[name] = self.sums.get(name, 0.0) + value
            self.last = dict(metrics)
            self.steps += 1
            metrics["images_per_second"] = self.images_per_second

    @property
    def images_per_second(self) -> float:
        """Images per second so far this epoch, the first step left out (NaN until timed)."""
        return self.timed_images / self.timed_seconds if self.timed_seconds else float("nan")

    def row(self, epoch: int, step: int) -> dict[str, float]:
        """The epoch's row of ``metrics.csv``.

        Args:
            epoch: the epoch's number, counted from 1.
            step: the run's step at the end of the epoch.

        Returns:
            The means of the step metrics (the last values of :data:`LAST_VALUE_METRICS`),
            with the epoch's number, last step, throughput and duration in seconds.
        """
        row = {name: total / self.steps for name, total in self.sums.items()}
        row.update({name: self.last[name] for name in LAST_VALUE_METRICS if name in self.last})
        row.update(
            epoch=epoch,
            step=step,
            images_per_second=self.images_per_second,
            seconds=time.perf_counter() - self.start,
        )
        return row
