"""The random-init baseline: what the architecture gives before any training.

A convolutional network with random weights already maps similar images to similar features,
and a linear classifier or a kNN vote on those features beats chance by a wide margin. The
"random_init" protocol measures that floor: the same architecture as the encoder under
evaluation, with seeded random weights (:func:`simclr_tf.evaluate.rebuild.keras_copy`), frozen,
under the linear probe and the kNN vote with all labels, and under the linear probe with each
label fraction. Pretraining is worth what it adds above these numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simclr_tf.evaluate.features import FeatureEncoder
from simclr_tf.evaluate.knn import knn_result
from simclr_tf.evaluate.linear import probe_features
from simclr_tf.evaluate.rebuild import keras_copy

if TYPE_CHECKING:
    from simclr_tf.evaluate.options import EvaluationContext


def random_init_protocol(context: EvaluationContext) -> dict[str, Any]:
    """The "random_init" protocol: linear probe and kNN on a randomly initialised copy.

    Args:
        context: the evaluation; its encoder's architecture is rebuilt with weights drawn from
            ``context.options.seed``.

    Returns:
        ``{"linear": ..., "knn": ..., "fractions": {fraction: {"num_labels", "linear"}}}``.
    """
    random_encoder = FeatureEncoder(
        keras_copy(context.encoder, pretrained=False, seed=context.options.seed)
    )
    train_features = context.features(random_encoder, context.x_train)
    test_features = context.features(random_encoder, context.x_test)
    result = {
        "linear": probe_features(context, train_features, test_features),
        "knn": knn_result(context, train_features, test_features),
        "fractions": {
            fraction: {
                "num_labels": int(len(subset)),
                "linear": probe_features(context, train_features, test_features, subset),
            }
            for fraction, subset in context.subsets.items()
        },
    }
    context.log(
        f"random init: linear {result['linear']['top1']:.4f}, kNN {result['knn']['top1']:.4f}"
    )
    return result
