"""Linear evaluation: a logistic-regression classifier on frozen features.

The standard test of a self-supervised representation (SimCLR paper, section 4.1): keep the
encoder frozen, compute ``h`` for every image once, and train only a linear classifier on top.
If a linear map from ``h`` separates the classes, the encoder has learned what tells them apart
without ever seeing a label.

The recipe here:

1. Standardise each feature dimension (zero mean, unit variance, statistics of the training
   images only), so that one regularisation strength suits every dimension.
2. Fit an L2-regularised multinomial logistic regression (scikit-learn's ``LogisticRegression``
   with the L-BFGS solver) for each value of the inverse regularisation strength ``C`` in a small
   grid, from strongest to weakest regularisation, each fit starting from the previous solution
   ("warm start"), which makes the whole sweep not much slower than one fit.
3. Choose ``C`` by accuracy on a **validation split carved from the training set**. The test
   set is never used to choose anything: choosing on it would report an optimistic number.
4. Refit with the chosen ``C`` on all training images (training + validation split), and report
   top-1 accuracy on the test set once.

scikit-learn's objective is ``C * sum(losses) + ||w||^2 / 2``, so the same ``C`` regularises
less when there are more images. The refit on more images therefore scales ``C`` by
``N_fit / N_refit`` to keep the per-image regularisation that won on the validation split.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from simclr_tf.data.sampling import DEFAULT_VALIDATION_FRACTION, split_train_validation
from simclr_tf.evaluate.features import check_features

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext

# Inverse L2 strengths tried, for scikit-learn's objective on standardised features.
DEFAULT_C_VALUES = (1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_MAX_ITER = 300


def _standardiser(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale (standard deviation, 1 where it is 0) of each feature dimension."""
    mean = features.mean(axis=0, dtype=np.float64).astype(np.float32)
    scale = features.std(axis=0, dtype=np.float64).astype(np.float32)
    scale[scale == 0] = 1.0
    return mean, scale


def _logistic_regression(c: float, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=max_iter, tol=1e-4, warm_start=True, random_state=seed)


def _fit(model, features: np.ndarray, labels: np.ndarray) -> bool:
    """Fits ``model``; returns whether the solver converged within its iteration budget.

    The fit runs on one thread (BLAS and OpenMP). Measured on the 2-core machine this project
    targets, with other work running, one thread fitted 50,000 x 512 features 5 to 10 times
    faster than two, whose OpenMP threads spin while they wait for a core.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=1):
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features, labels)
    return not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def choose_regularization(
    fit_features: np.ndarray,
    fit_labels: np.ndarray,
    validation_features: np.ndarray,
    validation_labels: np.ndarray,
    c_values: tuple[float, ...] = DEFAULT_C_VALUES,
    max_iter: int = DEFAULT_MAX_ITER,
    seed: int = 0,
) -> tuple[float, dict[float, float], Any]:
    """Picks the ``C`` whose classifier is most accurate on the validation split.

    Both feature arrays must already be standardised with the statistics of ``fit_features``.
    Only training-set images may be passed here; the test set is for the final report alone.

    Args:
        fit_features: standardised features the classifiers are fitted on, ``[N_fit, D]``.
        fit_labels: their labels, ``[N_fit]``.
        validation_features: standardised held-out training features, ``[N_val, D]``.
        validation_labels: their labels, ``[N_val]``.
        c_values: inverse regularisation strengths to try (each > 0).
        max_iter: L-BFGS iterations per fit.
        seed: seed of the solver.

    Returns:
        ``(best_c, validation_accuracy_by_c, best_model)``. Ties go to the stronger
        regularisation (smaller ``C``).

    Raises:
        ValueError: if ``c_values`` is empty or holds a value <= 0.
    """
    if not c_values or any(not c > 0 for c in c_values):
        raise ValueError(f"c_values must be non-empty and all > 0; received c_values={c_values!r}.")
    model = _logistic_regression(min(c_values), max_iter, seed)
    accuracy_by_c: dict[float, float] = {}
    best_c, best_accuracy, best_coef = None, -1.0, None
    for c in sorted(float(c) for c in c_values):
        model.set_params(C=c)
        _fit(model, fit_features, fit_labels)  # warm-starts from the previous C's solution
        accuracy = float(model.score(validation_features, validation_labels))
        accuracy_by_c[c] = accuracy
        if accuracy > best_accuracy:
            best_c, best_accuracy = c, accuracy
            best_coef = (model.coef_.copy(), model.intercept_.copy())
    model.coef_, model.intercept_ = best_coef
    model.set_params(C=best_c)
    return best_c, accuracy_by_c, model


def linear_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    c_values: tuple[float, ...] = DEFAULT_C_VALUES,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    max_iter: int = DEFAULT_MAX_ITER,
    seed: int = 0,
) -> dict[str, Any]:
    """Linear-probe top-1 accuracy: ``C`` chosen on a validation split, refit, tested once.

    Args:
        train_features: frozen features of the training images, float ``[N_train, D]``.
        train_labels: integer labels, ``[N_train]``.
        test_features: frozen features of the test images, ``[N_test, D]``.
        test_labels: integer labels, ``[N_test]``.
        c_values: grid of inverse L2 strengths (scikit-learn's ``C``) tried on the validation
            split; a single value skips the selection (no validation split is carved), and
            so does a training set with one image per class (the middle value is used).
        validation_fraction: share of the training images held out to choose ``C``.
        max_iter: L-BFGS iterations per fit.
        seed: seed of the validation split and the solver.

    Returns:
        A dict with ``top1`` (test accuracy in [0, 1]), ``c`` (the chosen ``C``),
        ``validation_top1`` (``{C: accuracy}``), ``converged`` (whether the final fit converged),
        ``num_train``, ``num_test`` and ``seconds``.

    Raises:
        ValueError: for mismatched shapes, fewer than two classes, or a bad grid or fraction.
    """
    start = time.perf_counter()
    train_features, train_labels, test_features, test_labels = check_features(
        train_features, train_labels, test_features, test_labels
    )
    if len(np.unique(train_labels)) < 2:
        raise ValueError("train_labels must hold at least two classes for a classifier.")

    c_values = tuple(float(c) for c in c_values)
    if not c_values or any(not c > 0 for c in c_values):
        raise ValueError(f"c_values must be non-empty and all > 0; received c_values={c_values!r}.")
    chosen_c, accuracy_by_c, warm_model, fit_count = c_values[0], {}, None, len(train_labels)
    if len(c_values) > 1:
        fit_index, validation_index = split_train_validation(
            train_labels, validation_fraction, seed
        )
        if len(validation_index) == 0:
            # One labelled image per class leaves nothing to validate on: take the middle of
            # the grid rather than ever looking at the test set.
            chosen_c = sorted(c_values)[len(c_values) // 2]
        else:
            mean, scale = _standardiser(train_features[fit_index])
            chosen_c, accuracy_by_c, warm_model = choose_regularization(
                (train_features[fit_index] - mean) / scale,
                train_labels[fit_index],
                (train_features[validation_index] - mean) / scale,
                train_labels[validation_index],
                c_values,
                max_iter,
                seed,
            )
            fit_count = len(fit_index)

    # Refit on every training image, keeping the per-image regularisation that was chosen.
    mean, scale = _standardiser(train_features)
    final_c = chosen_c * fit_count / len(train_labels)
    model = _logistic_regression(final_c, max_iter, seed)
    if warm_model is not None:
        model.coef_, model.intercept_ = warm_model.coef_, warm_model.intercept_
    converged = _fit(model, (train_features - mean) / scale, train_labels)
    top1 = float(model.score((test_features - mean) / scale, test_labels))
    return {
        "top1": top1,
        "c": chosen_c,
        "validation_top1": accuracy_by_c,
        "converged": converged,
        "num_train": int(len(train_labels)),
        "num_test": int(len(test_labels)),
        "seconds": time.perf_counter() - start,
    }


def probe_features(
    context: EvaluationContext,
    train_features: np.ndarray,
    test_features: np.ndarray,
    subset: np.ndarray | None = None,
) -> dict[str, Any]:
    """:func:`linear_probe` with the labels, ``C`` grid and seed of an evaluation.

    Args:
        context: the evaluation (labels and options).
        train_features: features of all of ``context``'s training images, ``[N_train, D]``.
        test_features: features of its test images, ``[N_test, D]``.
        subset: indices of the training images whose labels may be used; ``None``: all.

    Returns:
        The dict of :func:`linear_probe`.
    """
    train_labels = context.y_train
    if subset is not None:
        train_features, train_labels = train_features[subset], train_labels[subset]
    return linear_probe(
        train_features,
        train_labels,
        test_features,
        context.y_test,
        c_values=context.options.c_values,
        seed=context.options.seed,
    )


def linear_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "linear" protocol: the linear probe on the frozen encoder, with every label."""
    result = probe_features(context, context.train_features, context.test_features)
    context.log(f"linear probe: {result['top1']:.4f}")
    return result
