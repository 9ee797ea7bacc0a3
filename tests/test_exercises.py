"""The exercise checkers: solutions pass, stubs are "not attempted", and every mistake a
checker knows is recognised on a deliberately wrong answer of that kind, with its hint.

The reference solutions live in ``notebooks/solutions/solutions.py`` (loaded here by path), so
this file also keeps them honest: a solution that stops passing its checker fails CI. The
wrong answers below are written independently of the checkers' own recomputations (most
change one thing in the solution), so that a checker that stops recognising a mistake fails.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import simclr_tf as st
from simclr_tf import exercises

SOLUTIONS_PATH = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "solutions.py"


def _load_solutions():
    spec = importlib.util.spec_from_file_location("notebook_solutions", SOLUTIONS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


solutions = _load_solutions()


@pytest.fixture(scope="module")
def exported_encoder(tmp_path_factory) -> str:
    from simclr_tf.export import export_encoder
    from simclr_tf.models import build_encoder

    keras.utils.set_random_seed(0)
    encoder = build_encoder("small_cnn", 32)
    return export_encoder(encoder, tmp_path_factory.mktemp("export") / "encoder", 32)


def _stub(*args, **kwargs):
    raise NotImplementedError


def _broken(*args, **kwargs):
    raise TypeError("oops")


# exercise -> (checker, solution, needs the exported encoder)
CASES = {
    "adjust_saturation": (exercises.check_adjust_saturation, solutions.adjust_saturation),
    "image_transforms": (exercises.check_image_transforms, solutions.ImageTransforms),
    "cifar_stem": (exercises.check_cifar_stem, solutions.cifar_stem),
    "projection_head": (exercises.check_projection_head, solutions.projection_head),
    "nt_xent": (exercises.check_nt_xent, solutions.nt_xent_vectorised),
    "contrastive_accuracy": (
        exercises.check_contrastive_accuracy,
        solutions.contrastive_accuracy,
    ),
    "train_step": (exercises.check_train_step, solutions.train_step),
    "learning_rate_schedule": (
        exercises.check_learning_rate_schedule,
        solutions.warmup_cosine_learning_rate,
    ),
    "knn_predict": (exercises.check_knn_predict, solutions.knn_predict),
    "nearest_neighbours": (exercises.check_nearest_neighbours, solutions.nearest_neighbours),
    "rotate_batch": (exercises.check_rotate_batch, solutions.rotate_batch),
}
NEEDS_ENCODER = {"nearest_neighbours"}


def _check(name, answer, request):
    checker, _ = CASES[name]
    if name in NEEDS_ENCODER:
        return checker(answer, request.getfixturevalue("exported_encoder"))
    return checker(answer)


def test_every_checker_of_the_module_is_tested():
    checkers = {name[len("check_") :] for name in dir(exercises) if name.startswith("check_")}
    assert checkers == set(CASES) == set(exercises.MISTAKES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_solution_passes_its_checker(name, request):
    result = _check(name, CASES[name][1], request)
    assert result.passed, str(result)
    assert result.exercise == name and result.hint is None
    assert str(result).startswith("PASSED")


@pytest.mark.parametrize("name", sorted(CASES))
def test_stub_is_reported_as_not_attempted(name, request):
    result = _check(name, _stub, request)
    assert result.status == exercises.NOT_ATTEMPTED
    assert not result.passed
    assert str(result).startswith("NOT ATTEMPTED YET")


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_exception_in_the_answer_is_a_failure_not_a_crash(name, request):
    result = _check(name, _broken, request)
    assert result.status == exercises.FAILED
    assert "TypeError: oops" in result.message
    assert "line" in result.message and "_broken" in result.message  # where, in the learner's code
    assert result.hint


def _calls_the_library_wrongly(z1, z2, temperature):
    return st.transforms.to_float(z1.astype(np.int32))  # raises inside simclr_tf.transforms


def test_an_exception_inside_the_library_names_the_learners_line():
    """The frames of the whole simclr_tf package are skipped, not only those of exercises/."""
    result = exercises.check_nt_xent(_calls_the_library_wrongly)
    assert result.status == exercises.FAILED
    assert "ValueError: image must be uint8 or float" in result.message
    assert "of _calls_the_library_wrongly)" in result.message, result.message


# -- deliberately wrong answers, one per known mistake ------------------------------------------


def _saturation(images, factors, gray=None, clip=True, inverted=False):
    f = np.asarray(factors)[:, None, None, None]
    gray = images @ np.array([0.299, 0.587, 0.114], np.float32) if gray is None else gray
    gray = gray[..., None]
    blend = (1 - f) * images + f * gray if inverted else f * images + (1 - f) * gray
    return np.clip(blend, 0, 1) if clip else blend


class _Transforms(solutions.ImageTransforms):
    """The solution with one of its steps changed by a subclass."""


class _OneView(_Transforms):
    def __call__(self, image):
        return self.augment(image)


class _NoResize(_Transforms):
    def __init__(self, image_size, config=None, seed=None):
        super().__init__(32, config, seed)


class _Uint8Views(_Transforms):
    def augment(self, image):
        return super().augment(image.astype(np.float32) if image.dtype == np.uint8 else image * 255)


class _SameViewTwice(_Transforms):
    def __call__(self, image):
        view = self.augment(image)
        return view, view


class _CvResize(_Transforms):
    """Cuts the box by whole pixels and resizes with OpenCV's area interpolation."""

    def augment(self, image):
        import cv2

        original = st.transforms.resized_crop

        def area_crop(view, box, size):
            height, width = view.shape[:2]
            top, left = round(box[0] * (height - 1)), round(box[1] * (width - 1))
            bottom, right = round(box[2] * (height - 1)) + 1, round(box[3] * (width - 1)) + 1
            return cv2.resize(
                view[top:bottom, left:right], size[::-1], interpolation=cv2.INTER_AREA
            )

        st.transforms.resized_crop = area_crop
        try:
            return super().augment(image)
        finally:
            st.transforms.resized_crop = original


class _Pinned(_Transforms):
    """Replaces one probability of the config before augmenting."""

    changes: dict = {}

    def __init__(self, image_size, config=None, seed=None):
        super().__init__(image_size, config, seed)
        self.config = dataclasses.replace(self.config, **self.changes(self.config))


class _NoFlip(_Pinned):
    changes = staticmethod(lambda config: {"flip_prob": 0.0})


class _NoGray(_Pinned):
    changes = staticmethod(lambda config: {"grayscale_prob": 0.0})


class _NoJitter(_Pinned):
    changes = staticmethod(lambda config: {"color_prob": 0.0})


class _AlwaysJitter(_Pinned):
    changes = staticmethod(lambda config: {"color_prob": 1.0})


class _InvertedGray(_Pinned):
    changes = staticmethod(lambda config: {"grayscale_prob": 1.0 - config.grayscale_prob})


class _FullCrop(_Pinned):
    changes = staticmethod(lambda config: {"crop_area": (1.0, 1.0), "crop_aspect": (1.0, 1.0)})


class _SquareCrop(_Pinned):
    changes = staticmethod(lambda config: {"crop_aspect": (1.0, 1.0)})


class _WideBrightness(_Pinned):
    changes = staticmethod(lambda config: {"brightness": 2 * config.brightness_range})


class _ReseededEachCall(_Transforms):
    def __call__(self, image):
        self.rng = np.random.default_rng(1)
        return super().__call__(image)


class _Unseeded(_Transforms):
    def __init__(self, image_size, config=None, seed=None):
        super().__init__(image_size, config, None)


def _stem(channels, kernel=3, stride=1, padding="same", bias=False, norm=True, pool=False):
    layers = [keras.layers.Conv2D(channels, kernel, stride, padding=padding, use_bias=bias)]
    layers += [keras.layers.BatchNormalization()] if norm else []
    layers += [keras.layers.ReLU()]
    layers += [keras.layers.MaxPooling2D(3, 2, padding="same")] if pool else []
    return keras.Sequential(layers)


def _relu_then_norm(channels):
    return keras.Sequential(
        [
            keras.layers.Conv2D(channels, 3, padding="same", use_bias=False),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    )


def _head(input_dim, hidden_dim, output_dim, bias=False, norm=True, relu=True, extra=0):
    layers = [keras.Input((input_dim,)), keras.layers.Dense(hidden_dim, use_bias=bias)]
    layers += [keras.layers.BatchNormalization()] if norm else []
    layers += [keras.layers.ReLU()] if relu else []
    return keras.Sequential([*layers, keras.layers.Dense(output_dim + extra)])


def _nt_xent_tf(z1, z2, temperature, axis=1, mask=True, cross_only=False):
    """NT-Xent written with TensorFlow ops, with switches for the classic mistakes."""
    n = len(z1)
    z = tf.concat([z1, z2], 0)
    if axis is not None:
        z = z / tf.norm(z, axis=axis, keepdims=True)
    if cross_only:
        logits = tf.matmul(z[:n], z[n:], transpose_b=True) / temperature
        labels = tf.range(n)
        rows = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        columns = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.transpose(logits))
        return float(tf.reduce_mean(tf.concat([rows, columns], 0)))
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    if mask:
        logits -= 1e9 * tf.eye(2 * n)
    labels = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
    return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))


def _accuracy_tf(z1, z2, normalise=True, mask=True, cross_only=False):
    n = len(z1)
    z = tf.concat([z1, z2], 0)
    z = tf.math.l2_normalize(z, 1) if normalise else z
    if cross_only:
        cross = tf.matmul(z[:n], z[n:], transpose_b=True)
        found = tf.concat([tf.argmax(cross, 1), tf.argmax(cross, 0)], 0)
        return float(
            tf.reduce_mean(tf.cast(found == tf.tile(tf.range(n, dtype=tf.int64), [2]), "float32"))
        )
    similarity = tf.matmul(z, z, transpose_b=True) - (1e9 * tf.eye(2 * n) if mask else 0)
    labels = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
    return float(
        tf.reduce_mean(tf.cast(tf.argmax(similarity, 1, output_type=tf.int32) == labels, "float32"))
    )


def _schedule(step, peak, warmup, total, warm=True, shift=0, cosine_from=None, stop=True):
    if stop and step >= total:
        return 0.0
    if warm and step < warmup:
        return peak * (step + shift) / warmup
    start = (warmup if warm else 0) if cosine_from is None else cosine_from
    progress = np.clip((step - start) / max(total - start, 1), 0, 1)
    return float(peak * (np.cos(np.pi * progress) + 1) / 2)


def _step(
    encoder,
    head,
    optimizer,
    images,
    step,
    config,
    *,
    training=True,
    together=True,
    views="two",
    augment=None,
    temperature=None,
    fixed_step=False,
    parts=("encoder", "head"),
    apply_times=1,
    outside_tape=False,
    returns=True,
):
    """The solution's step with switches for each mistake the checker knows."""
    augment = augment or config.augment_config()
    view1, view2 = st.augment.two_views(images, config.seed, 0 if fixed_step else step, augment)
    if views == "same":
        view2 = view1
    elif views == "plain":
        view1 = view2 = tf.cast(images, tf.float32) / 255

    def loss_of():
        batches = [tf.concat([view1, view2], 0)] if together else [view1, view2]
        z = tf.concat([head(encoder(b, training=training), training=training) for b in batches], 0)
        return st.losses.nt_xent_loss(*tf.split(z, 2), temperature or config.temperature)[0]

    if outside_tape:
        loss = loss_of()
        with tf.GradientTape() as tape:
            pass
    else:
        with tf.GradientTape() as tape:
            loss = loss_of()
    models = {"encoder": encoder, "head": head}
    variables = [v for part in parts for v in models[part].trainable_variables]
    gradients = tape.gradient(loss, variables)
    for _ in range(apply_times):
        optimizer.apply(gradients, variables)
    return loss if returns else None


def _knn(
    train,
    labels,
    test,
    k,
    temperature,
    classes,
    normalise=True,
    nearest=True,
    weights="exp/T",
    extra=0,
):
    if normalise:
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    similarity = tf.matmul(test, train, transpose_b=True)
    values, indices = tf.math.top_k(similarity if nearest else -similarity, k=k + extra)
    values = values if nearest else -values
    weight = {
        "exp/T": tf.exp(values / temperature),
        "exp": tf.exp(values),
        "one": tf.ones_like(values),
    }[weights]
    votes = tf.one_hot(tf.gather(labels, indices), classes) * weight[..., None]
    return tf.argmax(tf.reduce_sum(votes, 1), 1).numpy()


def _neighbours(
    encoder,
    gallery,
    image,
    k,
    normalise=True,
    metric="cosine",
    order="nearest",
    scale=False,
    batch=True,
    count=None,
):
    pixels = image.astype(np.float32) / 255 if scale else image
    query = encoder.serve(pixels[None] if batch else pixels).numpy()[0]
    if metric == "euclidean":
        ranked = np.argsort(np.linalg.norm(gallery - query, axis=1))
    else:
        if normalise:
            gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
            query = query / np.linalg.norm(query)
        ranked = np.argsort(-(gallery @ query))
    chosen = {"nearest": ranked[:k], "farthest": ranked[::-1][:k], "reversed": ranked[:k][::-1]}[
        order
    ]
    return ranked[:count] if count else chosen


S = solutions
WRONG = {
    ("adjust_saturation", "shape"): lambda images, factors: _saturation(images, factors)[0],
    ("adjust_saturation", "channel_mean"): lambda x, f: _saturation(x, f, gray=x.mean(-1)),
    ("adjust_saturation", "no_clip"): lambda x, f: _saturation(x, f, clip=False),
    ("adjust_saturation", "inverted"): lambda x, f: _saturation(x, f, inverted=True),
    ("image_transforms", "not_two_views"): _OneView,
    ("image_transforms", "shape"): _NoResize,
    ("image_transforms", "uint8_range"): _Uint8Views,
    ("image_transforms", "same_view_twice"): _SameViewTwice,
    ("image_transforms", "crop_not_reference"): _CvResize,
    ("image_transforms", "flip_ignored"): _NoFlip,
    ("image_transforms", "grayscale_ignored"): _NoGray,
    ("image_transforms", "crop_ignored"): _FullCrop,
    ("image_transforms", "aspect_ignored"): _SquareCrop,
    ("image_transforms", "jitter_ignored"): _NoJitter,
    ("image_transforms", "jitter_range"): _WideBrightness,
    ("image_transforms", "always_applied"): _AlwaysJitter,
    ("image_transforms", "probability_inverted"): _InvertedGray,
    ("image_transforms", "rng_reseeded"): _ReseededEachCall,
    ("image_transforms", "seed_ignored"): _Unseeded,
    ("cifar_stem", "downsamples"): lambda c: _stem(c, stride=2),
    ("cifar_stem", "imagenet_stem"): lambda c: _stem(c, kernel=7, stride=2, pool=True),
    ("cifar_stem", "valid_padding"): lambda c: _stem(c, padding="valid"),
    ("cifar_stem", "channels"): lambda c: _stem(64),
    ("cifar_stem", "conv_bias"): lambda c: _stem(c, bias=True),
    ("cifar_stem", "kernel_size"): lambda c: _stem(c, kernel=7),
    ("cifar_stem", "no_batchnorm"): lambda c: _stem(c, norm=False),
    ("cifar_stem", "relu_last"): _relu_then_norm,
    ("projection_head", "output_shape"): lambda i, h, o: _head(i, h, o, extra=1),
    ("projection_head", "hidden_bias"): lambda i, h, o: _head(i, h, o, bias=True),
    ("projection_head", "no_batchnorm"): lambda i, h, o: _head(i, h, o, norm=False),
    ("projection_head", "hidden_width"): lambda i, h, o: _head(i, i, o),
    ("projection_head", "linear"): lambda i, h, o: _head(i, h, o, relu=False),
    ("nt_xent", "diagonal_not_masked"): lambda a, b, t: _nt_xent_tf(a, b, t, mask=False),
    ("nt_xent", "wrong_axis"): lambda a, b, t: _nt_xent_tf(a, b, t, axis=0),
    ("nt_xent", "not_normalised"): lambda a, b, t: _nt_xent_tf(a, b, t, axis=None),
    ("nt_xent", "n_by_n"): lambda a, b, t: _nt_xent_tf(a, b, t, cross_only=True),
    ("nt_xent", "temperature_twice"): lambda a, b, t: S.nt_xent_vectorised(a, b, t * t),
    ("nt_xent", "no_temperature"): lambda a, b, t: S.nt_xent_vectorised(a, b, 1.0),
    ("nt_xent", "mean_over_n"): lambda a, b, t: 2 * S.nt_xent_vectorised(a, b, t),
    ("contrastive_accuracy", "diagonal_not_masked"): lambda a, b: _accuracy_tf(a, b, mask=False),
    ("contrastive_accuracy", "n_by_n"): lambda a, b: _accuracy_tf(a, b, cross_only=True),
    ("contrastive_accuracy", "not_normalised"): lambda a, b: _accuracy_tf(a, b, normalise=False),
    ("learning_rate_schedule", "no_warmup"): lambda *a: _schedule(*a, warm=False),
    ("learning_rate_schedule", "warmup_off_by_one"): lambda *a: _schedule(*a, shift=1),
    ("learning_rate_schedule", "decay_from_step_zero"): lambda *a: _schedule(*a, cosine_from=0),
    ("learning_rate_schedule", "not_zero_after_end"): lambda *a: _schedule(*a, stop=False),
    ("train_step", "no_loss_returned"): lambda *a: _step(*a, returns=False),
    ("train_step", "inference_mode"): lambda *a: _step(*a, training=False),
    ("train_step", "separate_views"): lambda *a: _step(*a, together=False),
    ("train_step", "same_views"): lambda *a: _step(*a, views="same"),
    ("train_step", "no_augmentation"): lambda *a: _step(*a, views="plain"),
    ("train_step", "wrong_augment_config"): lambda *a: _step(
        *a, augment=st.augment.AugmentConfig.preset("cifar")
    ),
    ("train_step", "wrong_temperature"): lambda *a: _step(*a, temperature=0.5),
    ("train_step", "fixed_step"): lambda *a: _step(*a, fixed_step=True),
    ("train_step", "no_update"): lambda *a: _step(*a, apply_times=0),
    ("train_step", "encoder_not_updated"): lambda *a: _step(*a, parts=("head",)),
    ("train_step", "head_not_updated"): lambda *a: _step(*a, parts=("encoder",)),
    ("train_step", "update_differs"): lambda *a: _step(*a, apply_times=2),
    ("train_step", "loss_outside_tape"): lambda *a: _step(*a, outside_tape=True),
    ("knn_predict", "shape"): lambda *a: S.knn_predict(*a)[:, None],
    ("knn_predict", "not_normalised"): lambda *a: _knn(*a, normalise=False),
    ("knn_predict", "farthest"): lambda *a: _knn(*a, nearest=False),
    ("knn_predict", "unweighted"): lambda *a: _knn(*a, weights="one"),
    ("knn_predict", "no_temperature"): lambda *a: _knn(*a, weights="exp"),
    ("knn_predict", "k_plus_one"): lambda *a: _knn(*a, extra=1),
    ("nearest_neighbours", "shape"): lambda e, g, i, k: _neighbours(e, g, i, k, count=k + 1),
    ("nearest_neighbours", "float_input"): lambda *a: _neighbours(*a, scale=True),
    ("nearest_neighbours", "no_batch_axis"): lambda *a: _neighbours(*a, batch=False),
    ("nearest_neighbours", "not_normalised"): lambda *a: _neighbours(*a, normalise=False),
    ("nearest_neighbours", "euclidean"): lambda *a: _neighbours(*a, metric="euclidean"),
    ("nearest_neighbours", "farthest"): lambda *a: _neighbours(*a, order="farthest"),
    ("nearest_neighbours", "reversed"): lambda *a: _neighbours(*a, order="reversed"),
    ("rotate_batch", "not_a_pair"): lambda images: tf.concat(_turns(images), axis=0),
    ("rotate_batch", "shape"): lambda images: (
        tf.concat(_turns(images)[:3], 0),
        _labels(images, 3),
    ),
    ("rotate_batch", "clockwise"): lambda images: (
        tf.concat(_turns(images, clockwise=True), 0),
        _labels(images),
    ),
    ("rotate_batch", "interleaved"): lambda images: (
        tf.reshape(tf.stack(_turns(images), axis=1), (-1, *images.shape[1:])),
        tf.tile(tf.range(4), [images.shape[0]]),
    ),
    ("rotate_batch", "flips"): lambda images: (
        tf.concat([*_turns(images)[:2], images[:, ::-1], _turns(images)[3]], 0),
        _labels(images),
    ),
    ("rotate_batch", "labels_not_turns"): lambda images: (
        tf.concat(_turns(images), 0),
        90 * _labels(images),
    ),
}


def _turns(images, clockwise=False):
    return [tf.image.rot90(images, -k if clockwise else k) for k in range(4)]


def _labels(images, turns=4):
    return tf.repeat(tf.range(turns), images.shape[0])


def test_every_known_mistake_has_a_wrong_answer():
    known = {
        (name, mistake) for name, mistakes in exercises.MISTAKES.items() for mistake in mistakes
    }
    assert set(WRONG) == known


@pytest.mark.parametrize("key", sorted(WRONG), ids=["-".join(key) for key in sorted(WRONG)])
def test_the_checker_recognises_the_mistake_and_gives_its_hint(key, request):
    name, mistake = key
    result = _check(name, WRONG[key], request)
    assert result.status == exercises.FAILED, str(result)
    assert result.mistake == mistake, str(result)
    assert result.hint == exercises.MISTAKES[name][mistake]
    assert str(result).startswith("FAILED") and "\n  Hint: " in str(result)
    # the failing input is named: which case, step or schedule
    assert any(word in result.message for word in ("case", "step", "schedule")), result.message


def test_an_unknown_mistake_still_gets_a_hint():
    result = exercises.check_nt_xent(lambda z1, z2, t: 0.0)
    assert result.status == exercises.FAILED and result.mistake is None
    assert "case 1 of 3 (N=4, D=8, T=0.5)" in result.message and result.hint


def test_relative_error_properties():
    reference = np.array([1.0, -2.0, 4.0])
    assert exercises.relative_error(reference, reference) == 0.0
    assert exercises.relative_error(reference + 0.4, reference) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        exercises.relative_error(np.zeros(2), reference)
