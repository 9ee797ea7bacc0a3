"""The exercise checkers: solutions pass, stubs are "not attempted", wrong answers fail.

The reference solutions live in ``notebooks/solutions/solutions.py`` (loaded here by path), so
this file also keeps them honest: a solution that stops passing its checker fails CI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from simclr_tf import exercises

SOLUTIONS_PATH = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "solutions.py"


def _load_solutions():
    spec = importlib.util.spec_from_file_location("notebook_solutions", SOLUTIONS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


solutions = _load_solutions()


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.fixture(scope="module")
def exported_encoder(tmp_path_factory) -> str:
    from simclr_tf.export import export_encoder
    from simclr_tf.models import build_encoder

    keras.utils.set_random_seed(0)
    encoder = build_encoder("small_cnn", 32)
    return export_encoder(encoder, tmp_path_factory.mktemp("export") / "encoder", 32)


# checker, its solution; every checker of the notebooks appears here.
CASES = {
    "adjust_saturation": (exercises.check_adjust_saturation, solutions.adjust_saturation),
    "conv_parameter_count": (
        exercises.check_conv_parameter_count,
        solutions.conv_parameter_count,
    ),
    "projection_head": (exercises.check_projection_head, solutions.projection_head),
    "nt_xent": (exercises.check_nt_xent, solutions.nt_xent_vectorised),
    "contrastive_accuracy": (
        exercises.check_contrastive_accuracy,
        solutions.contrastive_accuracy,
    ),
    "learning_rate_schedule": (
        exercises.check_learning_rate_schedule,
        solutions.warmup_cosine_learning_rate,
    ),
    "knn_predict": (exercises.check_knn_predict, solutions.knn_predict),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_solution_passes_its_checker(name):
    checker, solution = CASES[name]
    result = checker(solution)
    assert result.passed, str(result)
    assert result.exercise == name
    assert str(result).startswith("PASSED")


@pytest.mark.parametrize("name", sorted(CASES))
def test_stub_is_reported_as_not_attempted(name):
    checker, _ = CASES[name]
    result = checker(_stub)
    assert result.status == exercises.NOT_ATTEMPTED
    assert not result.passed
    assert str(result).startswith("NOT ATTEMPTED YET")


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_exception_in_the_answer_is_a_failure_not_a_crash(name):
    checker, _ = CASES[name]

    def broken(*args, **kwargs):
        raise TypeError("oops")

    result = checker(broken)
    assert result.status == exercises.FAILED
    assert "TypeError: oops" in result.message


def _saturation_with_channel_mean(images, factors):
    gray = images.mean(axis=-1, keepdims=True)  # not the BT.601 luma
    factors = factors[:, None, None, None]
    return np.clip(factors * images + (1 - factors) * gray, 0, 1)


def _head_with_bias(input_dim, hidden_dim, output_dim):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden_dim),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(output_dim),
        ]
    )


def _linear_head(input_dim, hidden_dim, output_dim):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden_dim, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(output_dim),
        ]
    )


def _nt_xent_keeping_self_similarity(z1, z2, temperature):
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / temperature  # the diagonal is not masked
    n = len(z1)
    positives = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    log_norm = np.log(np.exp(logits).sum(1))
    return float(np.mean(log_norm - logits[np.arange(2 * n), positives]))


def _accuracy_of_first_views_only(z1, z2):
    a = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    b = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    return float(np.mean((a @ b.T).argmax(1) == np.arange(len(a))))


def _schedule_without_warmup(step, peak, warmup_steps, total_steps):
    progress = min(1.0, step / total_steps)
    return 0.5 * peak * (1 + np.cos(np.pi * progress))


def _knn_farthest(train_features, train_labels, test_features, k, temperature, num_classes):
    return solutions.knn_predict(
        -train_features, train_labels, test_features, k, temperature, num_classes
    )


WRONG = {
    "adjust_saturation": _saturation_with_channel_mean,
    "conv_parameter_count": lambda k, c_in, c_out, bias: k * k * c_in * c_out,
    "projection_head": _head_with_bias,
    "nt_xent": _nt_xent_keeping_self_similarity,
    "contrastive_accuracy": _accuracy_of_first_views_only,
    "learning_rate_schedule": _schedule_without_warmup,
    "knn_predict": _knn_farthest,
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_answer_fails(name):
    checker, _ = CASES[name]
    result = checker(WRONG[name])
    assert result.status == exercises.FAILED, str(result)
    assert str(result).startswith("FAILED")


def test_linear_head_fails_for_being_linear():
    result = exercises.check_projection_head(_linear_head)
    assert result.status == exercises.FAILED
    # A linear head has fewer parameters too, but either reason is a failure; the message names it.
    assert "parameters" in result.message or "linear" in result.message


def test_wrong_shape_is_reported():
    result = exercises.check_nt_xent(lambda z1, z2, t: np.zeros(3))
    assert result.status == exercises.FAILED


def test_relative_error_properties():
    reference = np.array([1.0, -2.0, 4.0])
    assert exercises.relative_error(reference, reference) == 0.0
    assert exercises.relative_error(reference + 0.4, reference) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        exercises.relative_error(np.zeros(2), reference)


def test_downstream_solution_passes(exported_encoder):
    result = exercises.check_downstream_model(solutions.downstream_model, exported_encoder)
    assert result.passed, str(result)


def test_downstream_stub_and_trainable_encoder(exported_encoder):
    assert (
        exercises.check_downstream_model(_stub, exported_encoder).status == exercises.NOT_ATTEMPTED
    )

    def unfrozen(encoder_path, num_classes):
        encoder = keras.layers.TFSMLayer(encoder_path, call_endpoint="serve", trainable=True)
        images = keras.Input(shape=(32, 32, 3), dtype="uint8")
        return keras.Model(images, keras.layers.Dense(num_classes)(encoder(images)))

    result = exercises.check_downstream_model(unfrozen, exported_encoder)
    assert result.status == exercises.FAILED
    assert "freeze" in result.message
