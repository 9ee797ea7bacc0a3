"""Checkers for the exercises of the teaching notebooks.

Each notebook exercise asks for a function; the matching ``check_*`` function here calls it on
a few inputs, compares the answer with the library's own implementation and returns a
:class:`CheckResult`, which Jupyter displays as one line::

    PASSED  nt_xent: relative error 3.1e-08 (tolerance 1e-04)

A checker never raises because of the function it checks: an exercise that still raises
``NotImplementedError`` is reported as ``NOT ATTEMPTED YET``, and any other exception or a wrong
shape as ``FAILED`` with the reason. That is what lets the notebooks, stubs included, run from
top to bottom in continuous integration. The reference solutions are in
``notebooks/solutions/solutions.py``; ``tests/test_exercises.py`` checks that every one of them
passes its checker and that deliberately wrong answers fail.

The relative error between an answer ``a`` and the reference ``r`` is
``max |a - r| / max(max |r|, 1e-8)`` over all inputs tried.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

PASSED = "passed"
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker.

    Attributes:
        exercise: name of the exercise.
        status: "passed", "failed" or "not attempted".
        message: one line saying why.
        relative_error: the largest relative error found, when numbers were compared.
    """

    exercise: str
    status: str
    message: str
    relative_error: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        label = {PASSED: "PASSED", FAILED: "FAILED", NOT_ATTEMPTED: "NOT ATTEMPTED YET"}
        return f"{label[self.status]}  {self.exercise}: {self.message}"

    def __repr__(self) -> str:
        return str(self)


def relative_error(answer: Any, reference: Any) -> float:
    """``max |answer - reference| / max(max |reference|, 1e-8)``, as a float.

    Raises:
        ValueError: if the shapes differ.
    """
    answer = np.asarray(answer, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if answer.shape != reference.shape:
        raise ValueError(f"expected shape {reference.shape}, got {answer.shape}")
    scale = max(float(np.max(np.abs(reference), initial=0.0)), 1e-8)
    return float(np.max(np.abs(answer - reference), initial=0.0) / scale)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _run(exercise: str, body: Callable[[], CheckResult]) -> CheckResult:
    """Runs a checker body, turning the student's exceptions into a verdict."""
    try:
        return body()
    except NotImplementedError:
        return CheckResult(
            exercise, NOT_ATTEMPTED, "the function still raises NotImplementedError."
        )
    except Exception as error:  # noqa: BLE001 - any mistake in the answer is a verdict
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return CheckResult(
            exercise,
            FAILED,
            f"{type(error).__name__}: {error} (line {frame.lineno} of {frame.name})",
        )


def _compare(exercise: str, errors: list[float], tolerance: float, what: str = "") -> CheckResult:
    worst = max(errors)
    detail = f"relative error {worst:.1e} (tolerance {tolerance:.0e}){what}"
    status = PASSED if worst <= tolerance else FAILED
    return CheckResult(exercise, status, detail, worst)


# -- 01_augmentation -----------------------------------------------------------------------


def check_adjust_saturation(fn: Callable[..., Any], tolerance: float = 1e-5) -> CheckResult:
    """Checks ``fn(images, factors)`` against :func:`simclr_tf.augment.adjust_saturation`.

    Args:
        fn: takes float images ``[B, H, W, 3]`` in [0, 1] (NumPy) and factors ``[B]`` and
            returns the saturation-adjusted images ``[B, H, W, 3]`` (NumPy or tensor).
        tolerance: largest relative error accepted.
    """
    from simclr_tf.augment import adjust_saturation

    def body() -> CheckResult:
        rng = np.random.default_rng(1)
        errors = []
        for factors in ([0.0, 1.0, 1.7], [0.3, 0.9, 2.5]):
            images = rng.uniform(0.0, 1.0, (3, 5, 4, 3)).astype(np.float32)
            factors = np.asarray(factors, np.float32)
            reference = adjust_saturation(images, factors).numpy()
            answer = _to_numpy(fn(images.copy(), factors.copy()))
            errors.append(relative_error(answer, reference))
        return _compare("adjust_saturation", errors, tolerance)

    return _run("adjust_saturation", body)


# -- 02_base_encoder -----------------------------------------------------------------------


def check_conv_parameter_count(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(kernel_size, in_channels, out_channels, use_bias)`` against Keras.

    Args:
        fn: returns the number of trainable parameters of a 2-D convolution layer.
    """
    import keras

    cases = [(3, 3, 64, False), (1, 64, 256, False), (7, 3, 64, True), (3, 128, 128, True)]

    def body() -> CheckResult:
        for kernel_size, in_channels, out_channels, use_bias in cases:
            layer = keras.layers.Conv2D(out_channels, kernel_size, use_bias=use_bias)
            layer.build((None, 32, 32, in_channels))
            expected = layer.count_params()
            answer = fn(kernel_size, in_channels, out_channels, use_bias)
            if int(answer) != expected:
                return CheckResult(
                    "conv_parameter_count",
                    FAILED,
                    f"for kernel_size={kernel_size}, in_channels={in_channels}, "
                    f"out_channels={out_channels}, use_bias={use_bias} the layer has {expected:,} "
                    f"parameters; your function returned {answer}.",
                )
        return CheckResult(
            "conv_parameter_count", PASSED, f"all {len(cases)} layers counted exactly.", 0.0
        )

    return _run("conv_parameter_count", body)


# -- 03_projection_head --------------------------------------------------------------------


def check_projection_head(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(input_dim, hidden_dim, output_dim)``, a builder of SimCLR's head g.

    The model it returns must map ``[B, input_dim]`` to ``[B, output_dim]``, have as many
    parameters as :func:`simclr_tf.models.build_projection_head` (Dense without bias, BatchNorm,
    ReLU, Dense with bias) and be non-linear.
    """
    import keras

    from simclr_tf.models import build_projection_head

    def body() -> CheckResult:
        input_dim, hidden_dim, output_dim = 48, 40, 16
        keras.utils.set_random_seed(0)
        model = fn(input_dim, hidden_dim, output_dim)
        h = np.random.default_rng(0).normal(size=(8, input_dim)).astype(np.float32)
        z = _to_numpy(model(h, training=False))
        if z.shape != (8, output_dim):
            return CheckResult(
                "projection_head",
                FAILED,
                f"expected output shape (8, {output_dim}) for input (8, {input_dim}); "
                f"got {z.shape}.",
            )
        expected = build_projection_head(input_dim, hidden_dim, output_dim).count_params()
        if model.count_params() != expected:
            return CheckResult(
                "projection_head",
                FAILED,
                f"expected {expected:,} parameters (Dense {input_dim}->{hidden_dim} without bias, "
                f"BatchNorm, ReLU, Dense {hidden_dim}->{output_dim} with bias); the model has "
                f"{model.count_params():,}.",
            )
        plus = _to_numpy(model(h, training=False))
        minus = _to_numpy(model(-h, training=False))
        zero = _to_numpy(model(np.zeros_like(h), training=False))
        if np.allclose(plus + minus, 2 * zero, atol=1e-5):
            return CheckResult(
                "projection_head", FAILED, "the head is linear: is the ReLU missing?"
            )
        return CheckResult(
            "projection_head",
            PASSED,
            f"shape, parameter count ({expected:,}) and non-linearity are right.",
        )

    return _run("projection_head", body)


# -- 04_contrastive_loss -------------------------------------------------------------------


def _projection_pairs() -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(4)
    pairs = []
    for batch, dim, temperature in ((4, 8, 0.5), (16, 32, 0.1), (7, 3, 1.0)):
        z1 = rng.normal(size=(batch, dim)).astype(np.float32)
        z2 = (z1 + 0.5 * rng.normal(size=(batch, dim))).astype(np.float32)
        pairs.append((z1, z2, temperature))
    return pairs


def check_nt_xent(fn: Callable[..., Any], tolerance: float = 1e-4) -> CheckResult:
    """Checks ``fn(z1, z2, temperature)`` against :func:`simclr_tf.losses.nt_xent_loss`.

    Args:
        fn: takes two ``[N, D]`` NumPy arrays (row k of each is a view of image k) and the
            temperature, returns the scalar NT-Xent loss averaged over all 2N anchors.
        tolerance: largest relative error accepted.
    """
    from simclr_tf.losses import nt_xent_loss

    def body() -> CheckResult:
        errors = []
        for z1, z2, temperature in _projection_pairs():
            reference, _ = nt_xent_loss(z1, z2, temperature)
            answer = np.asarray(_to_numpy(fn(z1.copy(), z2.copy(), temperature))).reshape(())
            errors.append(relative_error(answer, reference.numpy()))
        return _compare("nt_xent", errors, tolerance)

    return _run("nt_xent", body)


def check_contrastive_accuracy(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(z1, z2)``, the fraction of the 2N anchors whose positive is most similar.

    Compared with the accuracy :func:`simclr_tf.losses.nt_xent_loss` returns (which does not
    depend on the temperature).
    """
    from simclr_tf.losses import nt_xent_loss

    def body() -> CheckResult:
        errors = []
        for z1, z2, temperature in _projection_pairs():
            _, reference = nt_xent_loss(z1, z2, temperature)
            answer = np.asarray(_to_numpy(fn(z1.copy(), z2.copy()))).reshape(())
            errors.append(abs(float(answer) - float(reference)))
        return _compare("contrastive_accuracy", errors, 1e-6, " (absolute, accuracies)")

    return _run("contrastive_accuracy", body)


# -- 05_training ---------------------------------------------------------------------------


def check_learning_rate_schedule(fn: Callable[..., Any], tolerance: float = 1e-5) -> CheckResult:
    """Checks ``fn(step, peak, warmup_steps, total_steps)`` against ``WarmupCosineDecay``.

    Args:
        fn: returns the learning rate at ``step`` (a Python int) as a float.
        tolerance: largest relative error accepted, relative to ``peak``.
    """
    from simclr_tf.optim import WarmupCosineDecay

    def body() -> CheckResult:
        errors = []
        for peak, warmup, total in ((1.0, 10, 100), (0.3, 0, 50), (2e-3, 5, 5), (0.5, 20, 8)):
            schedule = WarmupCosineDecay(peak, warmup, total)
            for step in sorted(
                {
                    0,
                    1,
                    warmup // 2,
                    warmup,
                    warmup + 1,
                    (warmup + total) // 2,
                    total - 1,
                    total,
                    total + 10,
                }
            ):
                reference = float(schedule(step))
                answer = float(fn(step, peak, warmup, total))
                errors.append(abs(answer - reference) / peak)
        return _compare("learning_rate_schedule", errors, tolerance, " (relative to the peak)")

    return _run("learning_rate_schedule", body)


# -- 06_evaluation -------------------------------------------------------------------------


def check_knn_predict(fn: Callable[..., Any]) -> CheckResult:
    """Checks ``fn(train_features, train_labels, test_features, k, temperature, num_classes)``.

    The answer must be the predicted labels ``[N_test]`` of the weighted kNN vote of
    :func:`simclr_tf.evaluate.knn.knn_predict`; it passes when every prediction agrees.
    """
    from simclr_tf.evaluate.knn import knn_predict

    def body() -> CheckResult:
        rng = np.random.default_rng(6)
        centres = rng.normal(size=(4, 16))
        train_labels = rng.integers(0, 4, 300)
        test_labels = rng.integers(0, 4, 80)
        train = (centres[train_labels] + 1.2 * rng.normal(size=(300, 16))).astype(np.float32)
        test = (centres[test_labels] + 1.2 * rng.normal(size=(80, 16))).astype(np.float32)
        disagreements = 0
        for k, temperature in ((1, 0.1), (15, 0.1), (40, 0.5)):
            reference = knn_predict(train, train_labels, test, k, temperature, 4)
            answer = np.asarray(_to_numpy(fn(train, train_labels, test, k, temperature, 4)))
            if answer.shape != reference.shape:
                return CheckResult(
                    "knn_predict",
                    FAILED,
                    f"expected predictions of shape {reference.shape}, got {answer.shape}.",
                )
            disagreements += int(np.sum(answer.astype(np.int64) != reference))
        if disagreements:
            return CheckResult(
                "knn_predict",
                FAILED,
                f"{disagreements} of 240 predictions differ from the library.",
            )
        return CheckResult("knn_predict", PASSED, "all 240 predictions agree with the library.")

    return _run("knn_predict", body)


# -- 07_export -----------------------------------------------------------------------------


def check_downstream_model(
    fn: Callable[..., Any], encoder_path: str, image_size: int = 32, num_classes: int = 10
) -> CheckResult:
    """Checks ``fn(encoder_path, num_classes)``, a classifier built on an exported encoder.

    The model must take uint8 images ``[B, image_size, image_size, 3]``, return
    ``[B, num_classes]`` logits, and keep the encoder frozen: its only trainable weights are
    those of the new head.
    """

    def body() -> CheckResult:
        model = fn(encoder_path, num_classes)
        images = np.random.default_rng(7).integers(0, 256, (4, image_size, image_size, 3))
        logits = _to_numpy(model(images.astype(np.uint8), training=False))
        if logits.shape != (4, num_classes):
            return CheckResult(
                "downstream_model",
                FAILED,
                f"expected logits of shape (4, {num_classes}) for 4 images; got {logits.shape}.",
            )
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        feature_dim = None
        for layer in model.layers:
            weights = layer.trainable_weights
            if weights and len(weights[0].shape) == 2 and weights[0].shape[1] == num_classes:
                feature_dim = int(weights[0].shape[0])
        if feature_dim is None:
            return CheckResult(
                "downstream_model", FAILED, "no Dense layer with num_classes outputs was found."
            )
        head = feature_dim * num_classes + num_classes
        if trainable != head:
            return CheckResult(
                "downstream_model",
                FAILED,
                f"{trainable:,} trainable parameters, but a linear head on a frozen encoder has "
                f"{head:,}: freeze the encoder (trainable=False).",
            )
        return CheckResult(
            "downstream_model",
            PASSED,
            f"uint8 in, {num_classes} logits out, encoder frozen ({head:,} trainable parameters).",
        )

    return _run("downstream_model", body)
