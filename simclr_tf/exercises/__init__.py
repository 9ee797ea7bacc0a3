"""Checkers for the exercises of the teaching notebooks: they say what is wrong, not only that.

Each notebook exercise asks for a function (or a class); the matching ``check_*`` function here
calls it on a few inputs, compares the answer with the library's own implementation and returns
a :class:`CheckResult`, which Jupyter displays as one or two lines::

    PASSED  nt_xent: 3 cases agree with st.losses.nt_xent_loss (relative error 3.1e-08).
    FAILED  nt_xent: case 2 of 3 (N=16, D=32, T=0.1): your loss is 3.0112, the library's 2.7043.
      Hint: the diagonal is not masked: ...

A failure always names the input that failed (the case, the step, the value of k and T) and
gives a hint. For the classic mistakes of each exercise the checker recomputes the answer *with*
that mistake; when the learner's answer matches one of those, the hint names it (the diagonal
not masked, the temperature applied twice, a stride-2 stem, ...). The mistakes a checker
recognises are listed in :data:`MISTAKES`, and ``tests/test_exercises.py`` runs every one of
them on a deliberately wrong answer of that kind.

A checker never raises because of the answer it checks: an exercise that still raises
``NotImplementedError`` is reported as ``NOT ATTEMPTED YET``, and any other exception as
``FAILED`` with the exception and the line of the learner's code it came from. That is what lets
the notebooks, stubs included, run from top to bottom in continuous integration. The reference
solutions are in ``notebooks/solutions/solutions.py``.

The relative error between an answer ``a`` and the reference ``r`` is
``max |a - r| / max(max |r|, 1e-8)`` over all inputs tried.

One module per notebook holds its checkers and their known mistakes; every name below is also
importable from this package (``st.exercises.check_nt_xent``):

* :mod:`~simclr_tf.exercises.checking`: what they share (:class:`CheckResult`,
  :data:`MISTAKES`, :func:`relative_error`, how a check ends);
* :mod:`~simclr_tf.exercises.augmentation` (01): :func:`check_adjust_saturation`,
  :func:`check_image_transforms`;
* :mod:`~simclr_tf.exercises.encoder` (02): :func:`check_cifar_stem`;
* :mod:`~simclr_tf.exercises.projection_head` (03): :func:`check_projection_head`;
* :mod:`~simclr_tf.exercises.contrastive_loss` (04): :func:`check_nt_xent`,
  :func:`check_contrastive_accuracy`;
* :mod:`~simclr_tf.exercises.training` (05): :func:`check_learning_rate_schedule`,
  :func:`check_train_step`;
* :mod:`~simclr_tf.exercises.knn` (06): :func:`check_knn_predict`;
* :mod:`~simclr_tf.exercises.retrieval` (07): :func:`check_nearest_neighbours`;
* :mod:`~simclr_tf.exercises.pretext` (08): :func:`check_rotate_batch`.

Importing this package imports NumPy only; each checker imports TensorFlow and the library
parts it compares with when it runs.
"""

from __future__ import annotations

# In the order of the notebooks, which is also the order of MISTAKES.
# isort: off
from simclr_tf.exercises.checking import (
    FAILED,
    MISTAKES,
    NOT_ATTEMPTED,
    PASSED,
    CheckResult,
    relative_error,
)
from simclr_tf.exercises.augmentation import check_adjust_saturation, check_image_transforms
from simclr_tf.exercises.encoder import check_cifar_stem
from simclr_tf.exercises.projection_head import check_projection_head
from simclr_tf.exercises.contrastive_loss import check_contrastive_accuracy, check_nt_xent
from simclr_tf.exercises.training import check_learning_rate_schedule, check_train_step
from simclr_tf.exercises.knn import check_knn_predict
from simclr_tf.exercises.retrieval import check_nearest_neighbours
from simclr_tf.exercises.pretext import check_rotate_batch
# isort: on

__all__ = [
    "FAILED",
    "MISTAKES",
    "NOT_ATTEMPTED",
    "PASSED",
    "CheckResult",
    "check_adjust_saturation",
    "check_cifar_stem",
    "check_contrastive_accuracy",
    "check_image_transforms",
    "check_knn_predict",
    "check_learning_rate_schedule",
    "check_nearest_neighbours",
    "check_nt_xent",
    "check_projection_head",
    "check_rotate_batch",
    "check_train_step",
    "relative_error",
]
