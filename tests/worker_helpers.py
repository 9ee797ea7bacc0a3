"""Worker processes of a two-machine cluster, run on 127.0.0.1 only (free ports, timeouts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_workers(
    count: int,
    command: Callable[[int], Sequence[str]],
    env: Callable[[int], dict[str, str]],
    timeout: float,
) -> list[tuple[int, str, str]]:
    """Starts ``count`` workers of one cluster and waits for all of them.

    Args:
        count: the number of worker processes.
        command: the command line of worker ``i``.
        env: extra environment variables of worker ``i`` (``TF_CONFIG`` is set here).
        timeout: seconds to wait for all of them; the rest are killed.

    Returns:
        ``(returncode, stdout, stderr)`` of each worker, in order.
    """
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(count)]}
    workers = []
    for index in range(count):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        variables = {**os.environ, "TF_CONFIG": json.dumps(task), **env(index)}
        workers.append(
            subprocess.Popen(
                list(command(index)),
                env=variables,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [worker.communicate(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    return [
        (worker.returncode, out, err) for worker, (out, err) in zip(workers, outputs, strict=True)
    ]
