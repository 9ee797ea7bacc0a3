"""What every command line of the package shares: how it ends.

A command (``python -m simclr_tf.train``, ``...pipeline``, ``...evaluate``) runs its work
inside :func:`run_command`, which turns the outcomes a user can cause into one clear line on
stderr and an exit code, never a traceback:

* a user error (bad flag values, missing or damaged files, a folder in use, a full disk, a
  diverged run): ``error: <what was wrong and how to fix it>``, exit code 2;
* Ctrl-C or SIGTERM: the work is checkpointed where it can be, the message says how to
  continue, exit code 130;
* warnings (a damaged checkpoint skipped, unreadable images skipped): one ``warning:`` line
  each.

Programming errors (a bug) still raise with their traceback, so they can be reported.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from simclr_tf.callbacks import TrainingDivergedError, TrainingInterrupted

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "USER_ERRORS", "run_command"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, TrainingDivergedError)
"""Exceptions that mean the user can fix something (``OSError`` covers missing files, folders
in use, permissions and full disks); their messages say what."""


def _one_line_warning(
    message: Any, category: type, filename: str, lineno: int, file=None, line=None
):
    print(f"warning: {message}", file=sys.stderr if file is None else file, flush=True)


@contextlib.contextmanager
def plain_warnings() -> Iterator[None]:
    """Shows warnings as ``warning: <message>`` lines, without source locations."""
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        yield
    finally:
        warnings.showwarning = previous


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (what ``kill`` and schedulers send) acts like Ctrl-C, so the
    training loop can checkpoint before it exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(body: Callable[[], int]) -> int:
    """Runs a command's work and returns its exit code.

    Args:
        body: the work; returns the exit code of success (normally 0).

    Returns:
        ``body()``'s code, :data:`EXIT_USER_ERROR` after a user error, or
        :data:`EXIT_INTERRUPTED` after Ctrl-C or SIGTERM.
    """
    with plain_warnings(), sigterm_as_interrupt():
        try:
            return body()
        except KeyboardInterrupt as interrupt:
            text = str(interrupt) if isinstance(interrupt, TrainingInterrupted) else "Interrupted."
            print(text, file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
