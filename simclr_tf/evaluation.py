"""The old name of :mod:`simclr_tf.evaluate`, kept so that existing code keeps working.

``simclr_tf.evaluation`` *is* the package :mod:`simclr_tf.evaluate` (the same module object),
and ``simclr_tf.evaluation.knn``, ``.features``, ``.finetune``, ``.quality``, ``.figures``,
``.report`` are its submodules; ``simclr_tf.evaluation.linear_probe`` is
:mod:`simclr_tf.evaluate.linear`. Write ``simclr_tf.evaluate`` in new code.
"""

import importlib
import sys

# Old submodule name -> its module in simclr_tf.evaluate.
_SUBMODULES = {
    "features": "features",
    "figures": "figures",
    "finetune": "finetune",
    "knn": "knn",
    "linear_probe": "linear",
    "quality": "quality",
    "report": "report",
}

for _old, _new in _SUBMODULES.items():
    sys.modules[f"{__name__}.{_old}"] = importlib.import_module(f"simclr_tf.evaluate.{_new}")
sys.modules[__name__] = importlib.import_module("simclr_tf.evaluate")
