"""How good is a learned representation? The pieces behind ``simclr_tf.evaluate``.

Self-supervised pretraining never sees a label, so its result, the encoder ``f``, is judged
by what other models can do with the representation ``h = f(x)``:

* ``features``: run an encoder (in memory or an exported SavedModel) over a data set in batches.
* ``linear_probe``: a logistic-regression classifier trained on frozen ``h``.
* ``knn``: a weighted k-nearest-neighbour classifier on frozen ``h``, no training at all.
* ``finetune``: few-label fine-tuning of the whole encoder, with its baselines.
* ``quality``: label-free measures (alignment, uniformity, collapse indicators).
* ``report``: results as a markdown table and JSON.

Import from ``simclr_tf.evaluate``, which gathers the public functions in one place.
"""
