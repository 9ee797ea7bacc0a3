"""Checkers of notebook 05 (training): the learning-rate schedule and one SimCLR step."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from simclr_tf.exercises.checking import (
    MISTAKES,
    CheckResult,
    fail,
    first_match,
    record_case,
    run_check,
    to_numpy,
)

# -- the learning-rate schedule --------------------------------------------------------------------

MISTAKES["learning_rate_schedule"] = {
    "no_warmup": "the rate starts at the peak: during the first warmup_steps it rises "
    "linearly from 0, peak * step / warmup_steps.",
    "warmup_off_by_one": "the warm-up is one step ahead: at step 0 the rate is 0, "
    "peak * step / warmup_steps (not (step + 1)).",
    "decay_from_step_zero": "the cosine starts at the end of the warm-up: its progress is "
    "(step - warmup_steps) / (total_steps - warmup_steps), not step / total_steps.",
    "not_zero_after_end": "from total_steps on the rate is 0, also when the warm-up is longer "
    "than the run: check `step >= total_steps` first.",
}


def _schedule_variant(step: int, peak: float, warmup: int, total: int, mistake: str) -> float:
    """The warm-up + cosine schedule with one mistake of ``MISTAKES["learning_rate_schedule"]``."""
    if step >= total and mistake != "not_zero_after_end":
        return 0.0
    if step < warmup and mistake != "no_warmup":
        return peak * (step + (mistake == "warmup_off_by_one")) / warmup
    start = 0 if mistake in ("no_warmup", "decay_from_step_zero") else warmup
    progress = min(1.0, max(0.0, (step - start) / max(total - start, 1)))
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def check_learning_rate_schedule(fn: Callable[..., Any], tolerance: float = 1e-5) -> CheckResult:
    """Checks ``fn(step, peak, warmup_steps, total_steps)`` against ``WarmupCosineDecay``.

    Args:
        fn: returns the learning rate at ``step`` (a Python int) as a float.
        tolerance: largest relative error accepted, relative to ``peak``.
    """
    from simclr_tf.optim import WarmupCosineDecay

    name = "learning_rate_schedule"

    def body() -> str:
        schedules = ((1.0, 10, 100), (0.3, 0, 50), (2e-3, 5, 5), (0.5, 20, 8))
        for peak, warmup, total in schedules:
            record_case(f"schedule peak={peak:g}, warmup_steps={warmup}, total_steps={total}")
            schedule = WarmupCosineDecay(peak, warmup, total)
            steps = sorted(
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
            )
            steps = [step for step in steps if step >= 0]
            answers = [float(fn(step, peak, warmup, total)) for step in steps]
            references = [float(schedule(step)) for step in steps]
            for step, answer, reference in zip(steps, answers, references, strict=True):
                if abs(answer - reference) / peak <= tolerance:
                    continue
                mistake = next(
                    (
                        key
                        for key in MISTAKES[name]
                        if all(
                            abs(_schedule_variant(s, peak, warmup, total, key) - a) / peak
                            <= tolerance
                            for s, a in zip(steps, answers, strict=True)
                        )
                    ),
                    None,
                )
                fail(
                    name,
                    f"schedule peak={peak:g}, warmup_steps={warmup}, total_steps={total}, at "
                    f"step {step}: yours {answer:.6g}, expected {reference:.6g}.",
                    mistake,
                    None
                    if mistake
                    else "evaluate the three cases in order: step >= total_steps (0), the "
                    "warm-up (step < warmup_steps), the cosine.",
                )
        return f"{len(schedules)} schedules agree with st.optim.WarmupCosineDecay at 9 steps each."

    return run_check(name, body)


# -- the training step -----------------------------------------------------------------------------

MISTAKES["train_step"] = {
    "no_loss_returned": "return the NT-Xent loss (the first of the two numbers "
    "st.losses.nt_xent_loss returns).",
    "inference_mode": "call the encoder and the head with training=True: in inference mode "
    "BatchNorm uses its running averages instead of the statistics of the batch.",
    "separate_views": "encode both views in one call, encoder(tf.concat([view1, view2], 0), "
    "training=True), then split z in two: BatchNorm then normalises over all 2N views, as in "
    "the library (two calls give each view its own batch statistics).",
    "same_views": "the two views are the same: SimCLR compares two different random views, "
    "view1, view2 = st.augment.two_views(images, config.seed, step, config.augment_config()).",
    "no_augmentation": "the images go in unaugmented: make the two views with "
    "st.augment.two_views(images, config.seed, step, config.augment_config()).",
    "wrong_augment_config": "pass config.augment_config() to two_views: it holds the run's "
    "crop, colour strength and view size.",
    "wrong_temperature": "use the run's temperature, config.temperature, in nt_xent_loss.",
    "fixed_step": "step 0 is right but step 1 is not: pass `step` to two_views, so that every "
    "step draws new views.",
    "no_update": "the weights did not change: take gradients = tape.gradient(loss, variables) "
    "with variables = encoder.trainable_variables + head.trainable_variables, then "
    "optimizer.apply(gradients, variables).",
    "encoder_not_updated": "only the head was updated: the variables passed to tape.gradient "
    "and optimizer.apply must include encoder.trainable_variables.",
    "head_not_updated": "only the encoder was updated: the variables passed to tape.gradient "
    "and optimizer.apply must include head.trainable_variables.",
    "update_differs": "the loss is right but the update is not: apply the gradients of this "
    "loss once, optimizer.apply(gradients, variables), with the variables in the same order "
    "as for tape.gradient.",
    "loss_outside_tape": "no gradients reached the weights: compute the forward pass and the "
    "loss inside `with tf.GradientTape() as tape:`; only what is computed there is recorded.",
}


def _loss_value(result: Any) -> float | None:
    """The loss a step function returned: a scalar, the first of a tuple, or dict['loss']."""
    if isinstance(result, dict):
        result = result.get("loss")
    elif isinstance(result, (tuple, list)) and result:
        result = result[0]
    if result is None:
        return None
    value = to_numpy(result)
    return float(value.reshape(())) if value.size == 1 else None


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(variable.numpy()) for variable in model.trainable_variables]


def _update_error(before: list, after: list, reference_before: list, reference_after: list):
    """(largest update of the answer, relative error of its update against the reference's)."""
    answer = [b - a for a, b in zip(before, after, strict=True)]
    reference = [b - a for a, b in zip(reference_before, reference_after, strict=True)]
    size = max(float(np.abs(delta).max(initial=0.0)) for delta in answer)
    scale = max(max(float(np.abs(delta).max(initial=0.0)) for delta in reference), 1e-12)
    error = max(
        float(np.abs(a - r).max(initial=0.0)) for a, r in zip(answer, reference, strict=True)
    )
    return size, error / scale


def _step_variants(pretrainer: Any, images: Any, step: int, config: Any) -> dict[str, float]:
    """The loss of one step of ``pretrainer``'s models computed with each mistake of the step."""
    import tensorflow as tf

    from simclr_tf.augment import AugmentConfig, two_views
    from simclr_tf.losses import nt_xent_loss

    encoder, head = pretrainer.encoder, pretrainer.projection_head
    views = two_views(images, config.seed, step, config.augment_config())

    def loss_of(view1, view2, training=True, together=True, temperature=config.temperature):
        if together:
            z = head(encoder(tf.concat([view1, view2], 0), training=training), training=training)
            z1, z2 = tf.split(z, 2, axis=0)
        else:
            z1 = head(encoder(view1, training=training), training=training)
            z2 = head(encoder(view2, training=training), training=training)
        return float(nt_xent_loss(z1, z2, temperature)[0])

    plain = tf.cast(images, tf.float32) / 255.0
    other = two_views(images, config.seed, step, AugmentConfig.preset(config.augment))
    return {
        "inference_mode": loss_of(*views, training=False),
        "separate_views": loss_of(*views, together=False),
        "same_views": loss_of(views[0], views[0]),
        "no_augmentation": loss_of(plain, plain),
        "wrong_augment_config": loss_of(*other),
        "wrong_temperature": loss_of(*views, temperature=0.5),
    }


def _explain_step_error(error: BaseException) -> str | None:
    text = str(error)
    if re.search(r"[Nn]o gradients|gradient.*None|None.*gradient", text):
        return "loss_outside_tape"
    return None


def check_train_step(fn: Callable[..., Any], tolerance: float = 1e-3) -> CheckResult:
    """Checks ``fn(encoder, head, optimizer, images, step, config)``, one SimCLR step.

    The step must make two views of the uint8 ``images`` with ``st.augment.two_views(images,
    config.seed, step, config.augment_config())``, encode both in one call with
    ``training=True``, project, compute ``st.losses.nt_xent_loss`` with
    ``config.temperature`` inside a ``tf.GradientTape``, apply the gradients of the encoder's
    and the head's variables with ``optimizer`` and return the loss.

    The checker builds two identical small models (the smoke recipe, SGD, 16-px views of 8
    images), runs two steps of the library's :class:`~simclr_tf.pretrainer.Pretrainer` on one and
    two steps of ``fn`` on the other, with the same weights, views and seed, and compares the
    losses and the weight updates after each step.
    """
    from simclr_tf.config import preset
    from simclr_tf.pretrainer import Pretrainer

    name = "train_step"

    def body() -> str:
        config = preset(
            "smoke",
            batch_size=8,
            epochs=2,
            steps=2,
            optimizer="sgd",
            lr=0.1,
            online_probe=False,
            view_size_ratio=0.5,
            out_dir=os.path.join(tempfile.gettempdir(), "simclr_tf_check_train_step"),
        )
        images = np.random.default_rng(5).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        reference = Pretrainer(config, num_examples=len(images))
        learner = Pretrainer(config, num_examples=len(images))
        for step in range(2):
            case = record_case(f"step {step} (8 images of 32x32, 16-px views, seed {config.seed})")
            # Step 1 with step 0's views (computed before the reference takes step 1).
            fixed = {"fixed_step": _two_view_loss(reference, images, 0, config)} if step else {}
            before = [_weights(learner.encoder), _weights(learner.projection_head)]
            reference_before = [_weights(reference.encoder), _weights(reference.projection_head)]
            expected = reference.train_step(images)["loss"]
            # The optimizer's learning rate follows the run's step counter (the schedule).
            learner.step.assign(step)
            result = fn(
                learner.encoder, learner.projection_head, learner.optimizer, images, step, config
            )
            answer = _loss_value(result)
            if answer is None:
                fail(
                    name,
                    f"{case}: the function returned {type(result).__name__}, not the loss.",
                    "no_loss_returned",
                )
            error = abs(answer - expected) / max(abs(expected), 1e-8)
            if error > tolerance:
                variants = fixed or _step_variants(
                    _fresh(config, len(images)), images, step, config
                )
                mistake = first_match(answer, variants, tolerance)
                fail(
                    name,
                    f"{case}: your loss is {answer:.4f}, the library's {expected:.4f} (relative "
                    f"error {error:.1e}).",
                    mistake,
                    None
                    if mistake
                    else "follow Algorithm 1: two views, one encoder call on both, the head, "
                    "nt_xent_loss with config.temperature, all inside the tape.",
                )
            after = [_weights(learner.encoder), _weights(learner.projection_head)]
            reference_after = [_weights(reference.encoder), _weights(reference.projection_head)]
            moved = [
                _update_error(*pair)[0]
                for pair in zip(before, after, reference_before, reference_after, strict=True)
            ]
            if max(moved) == 0:
                fail(name, f"{case}: the loss is right, but no weight changed.", "no_update")
            for part, size, mistake in zip(
                ("encoder", "head"), moved, ("encoder_not_updated", "head_not_updated"), strict=True
            ):
                if size == 0:
                    fail(
                        name,
                        f"{case}: the loss is right, but the {part}'s weights did not change.",
                        mistake,
                    )
            worst = max(
                _update_error(*pair)[1]
                for pair in zip(before, after, reference_before, reference_after, strict=True)
            )
            if worst > tolerance:
                fail(
                    name,
                    f"{case}: the loss is right, but the weight update differs from the "
                    f"library's by {worst:.1e} of its size.",
                    "update_differs",
                )
        return "the losses and weight updates of steps 0 and 1 equal those of st.train.Pretrainer."

    return run_check(name, body, _explain_step_error)


def _fresh(config: Any, num_examples: int) -> Any:
    """A new Pretrainer of ``config``: the same initial weights as every other one."""
    from simclr_tf.pretrainer import Pretrainer

    return Pretrainer(config, num_examples=num_examples)


def _two_view_loss(pretrainer: Any, images: Any, step: int, config: Any) -> float:
    import tensorflow as tf

    from simclr_tf.augment import two_views
    from simclr_tf.losses import nt_xent_loss

    view1, view2 = two_views(images, config.seed, step, config.augment_config())
    z = pretrainer.projection_head(
        pretrainer.encoder(tf.concat([view1, view2], 0), training=True), training=True
    )
    return float(nt_xent_loss(*tf.split(z, 2, axis=0), config.temperature)[0])
