"""Evaluate a pretrained encoder (interim: command line and protocols still in one module)."""

from simclr_tf.evaluate.evaluator import *  # noqa: F403
from simclr_tf.evaluate.evaluator import __all__  # noqa: F401
