"""Evaluate a pretrained encoder: linear probe, kNN, few-label fine-tuning, label-free quality.

Pretraining gives an encoder ``f``; this package measures how useful its representation
``h = f(x)`` is, with the protocols of the SimCLR paper and of the papers that followed it,
one module each:

* ``linear``: logistic regression on frozen, standardised features; its regularisation chosen
  on a validation split of the training set, never on the test set (section 4.1 of the paper).
* ``knn``: weighted k-nearest-neighbour vote on cosine similarities, k = 200, temperature 0.1
  (Wu et al., 2018). No training, no hyper-parameter chosen on data.
* ``finetune``: with 1 % and 10 % of the training labels, fine-tune a copy of the encoder plus a
  linear head, next to the same architecture trained from scratch on the same labels, and the
  linear probe on the same labels (section 6 of the paper).
* ``random_init``: the same architecture with random weights, frozen, under the linear probe and
  kNN (with all labels and with each label fraction): what the architecture gives for free.
* ``quality``: alignment and uniformity (Wang & Isola, 2020), the per-dimension standard
  deviation of normalised embeddings and the effective rank, which flag collapse. No labels.

And around them: ``features`` (run an encoder, in memory or an exported SavedModel, over images
in batches, with a cache), ``rebuild`` (copies of an encoder's architecture), ``options`` (the
knobs, :class:`EvaluationOptions`, and the shared :class:`EvaluationContext`), ``registry``
(protocol name -> function, and which need labels), ``evaluator`` (:func:`evaluate_encoder`),
``report`` (markdown and JSON), ``figures`` (t-SNE, retrieval grid, projector, training curves)
and ``cli`` (``python -m simclr_tf.evaluate``).

The encoder is either a Keras model in memory or the folder of an exported SavedModel (its
image size comes from the export's metadata). Data: the bundled CIFAR-10 sample, the full
CIFAR-10, or a folder of images (``train/`` and ``test/`` subfolders with one folder per class,
or one folder per class that is split 80/20, seeded).

Command line (results go to ``--out_dir`` as ``results.json`` and ``results.md``; ``--figures``
adds a t-SNE map, a nearest-neighbour grid, Embedding Projector files and the training
curves)::

    python -m simclr_tf.evaluate --encoder runs/simclr/encoder --dataset cifar10 \\
        --protocols linear,knn,quality
    python -m simclr_tf.evaluate --random_encoder small_cnn --dataset sample --figures

Python::

    from simclr_tf.evaluate import evaluate_encoder, format_results_table
    results = evaluate_encoder("runs/simclr/encoder", dataset="sample", knn_k=20)
    print(format_results_table(results))

The names below are gathered here from the modules; ``simclr_tf.evaluation`` is an old name of
this package.
"""

from simclr_tf.config import DATASETS
from simclr_tf.data.sampling import Split, class_balanced_subset, split_train_validation
from simclr_tf.data.sources import load_splits as load_evaluation_data
from simclr_tf.evaluate.cli import main
from simclr_tf.evaluate.evaluator import evaluate_encoder
from simclr_tf.evaluate.features import (
    FeatureEncoder,
    check_features,
    extract_features,
    read_metadata,
)
from simclr_tf.evaluate.figures import class_names_for, save_embedding_figures
from simclr_tf.evaluate.finetune import FinetuneOptions, train_classifier
from simclr_tf.evaluate.knn import DEFAULT_K, DEFAULT_TEMPERATURE, knn_accuracy, knn_predict
from simclr_tf.evaluate.label_efficiency import (
    ALL_LABELS,
    LABELS_PER_CLASS,
    label_draws,
    probe_curve,
    training_curve,
)
from simclr_tf.evaluate.linear import DEFAULT_C_VALUES, choose_regularization, linear_probe
from simclr_tf.evaluate.options import (
    DEFAULT_LABEL_FRACTIONS,
    EvaluationContext,
    EvaluationOptions,
)
from simclr_tf.evaluate.quality import (
    QUALITY_IMAGES,
    alignment,
    effective_rank,
    embedding_std,
    two_view_quality,
    uniformity,
)
from simclr_tf.evaluate.rebuild import encoder_config, keras_copy
from simclr_tf.evaluate.registry import (
    DEFAULT_PROTOCOLS,
    LABELED_PROTOCOLS,
    PROTOCOLS,
    REGISTRY,
    Protocol,
    require_labels,
    validate_protocols,
)
from simclr_tf.evaluate.report import format_results_table, save_results
from simclr_tf.similarity import normalize as l2_normalize_rows  # the one NumPy row normalisation

__all__ = [
    "ALL_LABELS",
    "DATASETS",
    "DEFAULT_C_VALUES",
    "DEFAULT_K",
    "DEFAULT_LABEL_FRACTIONS",
    "DEFAULT_PROTOCOLS",
    "DEFAULT_TEMPERATURE",
    "LABELED_PROTOCOLS",
    "LABELS_PER_CLASS",
    "PROTOCOLS",
    "QUALITY_IMAGES",
    "REGISTRY",
    "EvaluationContext",
    "EvaluationOptions",
    "FeatureEncoder",
    "FinetuneOptions",
    "Protocol",
    "Split",
    "label_draws",
    "probe_curve",
    "training_curve",
    "alignment",
    "check_features",
    "choose_regularization",
    "class_balanced_subset",
    "class_names_for",
    "effective_rank",
    "embedding_std",
    "encoder_config",
    "evaluate_encoder",
    "extract_features",
    "format_results_table",
    "keras_copy",
    "knn_accuracy",
    "knn_predict",
    "l2_normalize_rows",
    "linear_probe",
    "load_evaluation_data",
    "main",
    "read_metadata",
    "require_labels",
    "save_embedding_figures",
    "save_results",
    "split_train_validation",
    "train_classifier",
    "two_view_quality",
    "uniformity",
    "validate_protocols",
]
