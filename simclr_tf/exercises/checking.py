"""What every exercise checker shares: the verdict, the known mistakes, the way a check ends.

A checker (one per exercise, in the module of its notebook) calls :func:`run_check` with its
body. The body names each input it tries with :func:`record_case`, ends a failed check with
:func:`fail` (which picks the hint of a known mistake from :data:`MISTAKES`) and returns the
message of a pass; :func:`run_check` turns that, a ``NotImplementedError`` or any other
exception of the learner's code into a :class:`CheckResult`.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

__all__ = [
    "FAILED",
    "MISTAKES",
    "NOT_ATTEMPTED",
    "PASSED",
    "CheckFailed",
    "CheckResult",
    "fail",
    "first_match",
    "format_vector",
    "record_case",
    "relative_error",
    "run_check",
    "to_numpy",
]

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"

# The whole simclr_tf package (this file is simclr_tf/exercises/checking.py): an exception's
# frames in there, or in an installed library, are not the learner's code.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker.

    Attributes:
        exercise: name of the exercise.
        status: "passed", "failed" or "not attempted".
        message: one line saying why, naming the input that failed.
        relative_error: the largest relative error found, when numbers were compared.
        mistake: the key (in :data:`MISTAKES`) of the known mistake the answer matches, if any.
        hint: what to look at next (for failures).
    """

    exercise: str
    status: str
    message: str
    relative_error: float | None = None
    mistake: str | None = None
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        label = {PASSED: "PASSED", FAILED: "FAILED", NOT_ATTEMPTED: "NOT ATTEMPTED YET"}
        text = f"{label[self.status]}  {self.exercise}: {self.message}"
        return f"{text}\n  Hint: {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return str(self)


def relative_error(answer: Any, reference: Any) -> float:
    """``max |answer - reference| / max(max |reference|, 1e-8)``, as a float.

    Args:
        answer: the learner's numbers (anything ``np.asarray`` takes).
        reference: the library's numbers, of the same shape.

    Returns:
        The largest absolute difference, relative to the largest magnitude of ``reference``.

    Raises:
        ValueError: if the shapes differ.
    """
    answer = np.asarray(answer, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if answer.shape != reference.shape:
        raise ValueError(f"expected shape {reference.shape}, got {answer.shape}")
    scale = max(float(np.max(np.abs(reference), initial=0.0)), 1e-8)
    return float(np.max(np.abs(answer - reference), initial=0.0) / scale)


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a NumPy array: a tensor through its ``numpy()``, anything else as it is."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _close(answer: Any, reference: Any, tolerance: float) -> bool:
    """True when the shapes agree and the relative error is within ``tolerance``."""
    try:
        return relative_error(answer, reference) <= tolerance
    except ValueError:
        return False


# Every mistake a checker recognises, by exercise: key -> hint. Filled in by each checker's module.
MISTAKES: dict[str, dict[str, str]] = {}

_EXCEPTION_HINT = (
    "your code raised this exception; the line named is where it happened in your code. Run "
    "the function on a small input in a cell of its own to see the shapes involved."
)


class CheckFailed(Exception):
    """Raised inside a checker body (by :func:`fail`) to end the check with a failure.

    Attributes:
        message: one line saying why, naming the input that failed.
        mistake: the key of the known mistake the answer matches, if any.
        hint: what to look at next.
    """

    def __init__(self, message: str, mistake: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.mistake = mistake
        self.hint = hint


def fail(
    exercise: str, message: str, mistake: str | None = None, hint: str | None = None
) -> NoReturn:
    """Ends the check with a failure.

    Args:
        exercise: the exercise's name, a key of :data:`MISTAKES`.
        message: one line saying why, naming the input that failed.
        mistake: the key of the known mistake the answer matches, or ``None``.
        hint: what to look at next; by default the hint of ``mistake`` in
            ``MISTAKES[exercise]``.

    Raises:
        CheckFailed: always; :func:`run_check` turns it into the verdict.
    """
    if mistake is not None and hint is None:
        hint = MISTAKES[exercise][mistake]
    raise CheckFailed(message, mistake, hint)


_current_case: list[str] = [""]


def record_case(case: str) -> str:
    """Records ``case`` as the input being checked (an exception names it) and returns it."""
    _current_case[0] = case
    return case


def first_match(answer: Any, variants: dict[str, Any], tolerance: float) -> str | None:
    """The key of the first variant the answer equals (within ``tolerance``), else ``None``.

    Args:
        answer: the learner's answer.
        variants: known mistake -> the answer recomputed with that mistake (``None``: skipped).
        tolerance: largest relative error at which two answers are equal.

    Returns:
        The key, or ``None`` when the answer matches no variant (or has another shape).
    """
    for mistake, value in variants.items():
        if value is not None and _close(answer, value, tolerance):
            return mistake
    return None


def _learner_line(error: BaseException) -> str:
    """Where an exception came from, preferring the last frame outside the libraries."""
    frames = traceback.extract_tb(error.__traceback__)
    outside = [
        frame
        for frame in frames
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR)
        and "site-packages" not in frame.filename
        and "dist-packages" not in frame.filename
    ]
    frame = (outside or frames)[-1]
    return f"line {frame.lineno} of {frame.name}"


def run_check(
    exercise: str,
    body: Callable[[], str],
    explain: Callable[[BaseException], str | None] | None = None,
) -> CheckResult:
    """Runs a checker body, turning failures and the learner's exceptions into a verdict.

    Args:
        exercise: the exercise's name, a key of :data:`MISTAKES`.
        body: returns the message of a pass, or raises :class:`CheckFailed` (through
            :func:`fail`).
        explain: maps an exception of the learner's code to the key of a known mistake, or
            to ``None``.

    Returns:
        The verdict: passed, failed (with the input, the exception and the line of the
        learner's code it came from) or not attempted (``NotImplementedError``).
    """
    _current_case[0] = ""
    try:
        message = body()
    except NotImplementedError:
        return CheckResult(
            exercise, NOT_ATTEMPTED, "the function still raises NotImplementedError."
        )
    except CheckFailed as failure:
        return CheckResult(
            exercise, FAILED, failure.message, mistake=failure.mistake, hint=failure.hint
        )
    except Exception as error:  # noqa: BLE001 - any mistake in the answer is a verdict
        mistake = explain(error) if explain else None
        hint = MISTAKES[exercise][mistake] if mistake else _EXCEPTION_HINT
        where = f"{_current_case[0]}: " if _current_case[0] else ""
        return CheckResult(
            exercise,
            FAILED,
            f"{where}{type(error).__name__}: {error} ({_learner_line(error)})",
            mistake=mistake,
            hint=hint,
        )
    return CheckResult(exercise, PASSED, message)


def format_vector(values: Any, digits: int = 2) -> str:
    """``values`` as ``[0.3, 0.9, 2.5]``, each with ``digits`` significant digits."""
    return "[" + ", ".join(f"{float(value):.{digits}g}" for value in np.ravel(values)) + "]"
