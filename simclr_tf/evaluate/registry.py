"""The evaluation protocols by name: what each one runs and whether it needs labels.

:func:`simclr_tf.evaluate.evaluate_encoder` runs the protocols it is given by looking them up
here, so a new protocol is one function ``(EvaluationContext) -> dict`` and one entry in
:data:`REGISTRY`; :func:`validate_protocols` checks a list of names before any work starts (the
command lines of :mod:`simclr_tf.evaluate` and :mod:`simclr_tf.pipeline` call it first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from simclr_tf.evaluate.finetune import finetune_protocol
from simclr_tf.evaluate.knn import knn_protocol
from simclr_tf.evaluate.linear import linear_protocol
from simclr_tf.evaluate.options import EvaluationContext
from simclr_tf.evaluate.quality import quality_protocol
from simclr_tf.evaluate.random_init import random_init_protocol
from simclr_tf.evaluate.retrieval import retrieval_protocol

__all__ = [
    "DEFAULT_PROTOCOLS",
    "LABELED_PROTOCOLS",
    "PROTOCOLS",
    "REGISTRY",
    "Protocol",
    "require_labels",
    "validate_protocols",
]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One evaluation protocol.

    Attributes:
        name: the name used in ``protocols=[...]`` and ``--protocols``.
        run: computes the protocol's results from the shared :class:`EvaluationContext`.
        needs_labels: whether it needs labelled training and test images.
        description: one line, for help texts.
    """

    name: str
    run: Callable[[EvaluationContext], dict[str, Any]]
    needs_labels: bool
    description: str


REGISTRY: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol("linear", linear_protocol, True, "logistic regression on frozen features"),
        Protocol("knn", knn_protocol, True, "weighted k-nearest-neighbour vote"),
        Protocol("finetune", finetune_protocol, True, "few-label fine-tuning vs. from scratch"),
        Protocol("random_init", random_init_protocol, True, "the same net with random weights"),
        Protocol("retrieval", retrieval_protocol, True, "recall@k and mAP@k, test vs. train"),
        Protocol("quality", quality_protocol, False, "alignment, uniformity, collapse (no labels)"),
    )
}
PROTOCOLS = tuple(REGISTRY)
DEFAULT_PROTOCOLS = ("linear", "knn", "quality")
LABELED_PROTOCOLS = tuple(name for name, protocol in REGISTRY.items() if protocol.needs_labels)


def validate_protocols(protocols: str | Sequence[str]) -> tuple[str, ...]:
    """Checks protocol names; returns them without blanks or repeats, in the order given.

    Args:
        protocols: names from :data:`PROTOCOLS`, as a sequence or as comma-separated text
            (``"linear,knn"``, as on the command line).

    Returns:
        The names, as a tuple.

    Raises:
        ValueError: if the list is empty or names an unknown protocol.
    """
    names = protocols.split(",") if isinstance(protocols, str) else list(protocols)
    names = tuple(dict.fromkeys(str(name).strip() for name in names if str(name).strip()))
    unknown = [name for name in names if name not in REGISTRY]
    if unknown or not names:
        problem = f"unknown: {', '.join(unknown)}" if unknown else "none given"
        raise ValueError(
            f"protocols must be a non-empty list of {', '.join(PROTOCOLS)} ({problem}); "
            f"received protocols={protocols!r}. For example: --protocols linear,knn,quality."
        )
    return names


def require_labels(protocols: Sequence[str], labeled: bool, dataset: str) -> None:
    """Refuses protocols that need labels when the data has none.

    Raises:
        ValueError: naming the protocols, and what to do instead.
    """
    needs_labels = [name for name in protocols if REGISTRY[name].needs_labels]
    if needs_labels and not labeled:
        raise ValueError(
            f"protocols {', '.join(needs_labels)} need labels, but dataset={dataset!r} has none. "
            "Use a folder with one subfolder per class, or protocols=['quality']."
        )
