"""simclr_tf: SimCLR (Chen et al., 2020) in TensorFlow/Keras 3.

Submodules are imported on first use, so ``import simclr_tf as st`` is cheap and
``st.augment``, ``st.losses``, ... each appear the moment a notebook touches them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "augment",
    "callbacks",
    "cli",
    "config",
    "data",
    "duplicates",
    "embed",
    "evaluate",
    "exercises",
    "export",
    "losses",
    "models",
    "optim",
    "pipeline",
    "pretext",
    "pretrained",
    "pretrainer",
    "retrieval",
    "runs",
    "runtime",
    "search",
    "similarity",
    "train",
    "transforms",
    "viz",
)

# Old names that still resolve: ``st.evaluation`` is ``st.evaluate``.
_ALIASES = ("evaluation",)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES or name in _ALIASES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'simclr_tf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
