"""Tests of evaluate_encoder, its options and the protocol registry."""

from __future__ import annotations

import json
import os

import pytest
from colour_data import colour_images

from simclr_tf import evaluate
from simclr_tf.evaluate import linear as linear_probe_module


def test_evaluate_encoder_runs_linear_knn_quality_and_random_init(
    exported_encoder, tiny_data, tmp_path
):
    results = evaluate.evaluate_encoder(
        exported_encoder,
        dataset="tiny",
        protocols=["linear", "knn", "quality", "random_init"],
        data=tiny_data,
        label_fractions=[0.25],
        knn_k=10,
        out_dir=tmp_path,
        command="pytest",
        cache_dir=tmp_path / "cache",
    )
    protocols = results["protocols"]
    # Colour classes are easy: even a random CNN separates them.
    assert protocols["linear"]["top1"] > 0.9
    assert protocols["knn"]["top1"] > 0.9
    assert protocols["random_init"]["fractions"]["0.25"]["num_labels"] == 15
    assert 0.0 <= protocols["quality"]["alignment"] <= 4.0
    assert protocols["quality"]["uniformity"] <= 0.0
    assert results["num_train"] == 60 and results["feature_dim"] == 256
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["protocols"]["knn"]["top1"] == protocols["knn"]["top1"]
    table = (tmp_path / "results.md").read_text()
    assert "Command: `pytest`" in table and "| Linear probe |" in table
    assert "random-init encoder" in table and "Effective rank" in table
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_labelled_protocols_on_unlabelled_data_are_refused(tiny_encoder):
    images, _ = colour_images(10)
    with pytest.raises(ValueError, match="need labels"):
        evaluate.evaluate_encoder(
            tiny_encoder, protocols=["knn"], data=((images, None), (images, None))
        )
    with pytest.raises(ValueError, match="protocols must"):
        evaluate.evaluate_encoder(tiny_encoder, protocols=["telepathy"])
    quality = evaluate.evaluate_encoder(
        tiny_encoder, protocols=["quality"], data=((images, None), (images, None))
    )
    assert "quality" in quality["protocols"]


def test_options_take_the_old_keywords_and_refuse_unknown_ones(tiny_encoder, tiny_data):
    options = evaluate.EvaluationOptions(knn_k=7, seed=3)
    by_object = evaluate.evaluate_encoder(
        tiny_encoder, "tiny", ["knn"], data=tiny_data, options=options
    )
    by_keyword = evaluate.evaluate_encoder(
        tiny_encoder, "tiny", "knn", data=tiny_data, knn_k=7, seed=3
    )
    knn = [
        {key: value for key, value in r["protocols"]["knn"].items() if key != "seconds"}
        for r in (by_object, by_keyword)
    ]
    assert knn[0] == knn[1]
    assert by_object["protocols"]["knn"]["k"] == 7 and by_object["seed"] == 3
    with pytest.raises(TypeError, match="Unknown evaluation option.*knn_kk"):
        evaluate.evaluate_encoder(tiny_encoder, data=tiny_data, knn_kk=7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"knn_k": 0}, "knn_k must be an integer >= 1; received knn_k=0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"label_fractions": (0.0, 0.1)}, r"label_fractions must be a list of numbers in \(0, 1\]"),
        ({"label_fractions": ("abc",)}, "label_fractions must be"),
        ({"c_values": ()}, "c_values must hold at least one value"),
        ({"c_values": (-1.0,)}, "c_values must be a list of numbers"),
        ({"knn_temperature": 0.0}, "knn_temperature must be a number > 0"),
        ({"finetune_options": {"epochs": 1}}, "finetune_options must be a FinetuneOptions"),
    ],
)
def test_options_out_of_range_are_refused_with_their_name(changes, message):
    with pytest.raises(ValueError, match=message):
        evaluate.EvaluationOptions(**changes)


def test_options_hold_tuples_and_default_fine_tuning():
    options = evaluate.EvaluationOptions(label_fractions=[0.5, "0.25"], c_values=[1])
    assert options.label_fractions == (0.5, 0.25) and options.c_values == (1.0,)
    assert options.finetune_options == evaluate.FinetuneOptions()
    assert options.replace(knn_k=3).knn_k == 3 and options.knn_k == evaluate.DEFAULT_K


def test_protocol_names_are_checked_and_cleaned():
    assert evaluate.validate_protocols("linear, knn,,linear") == ("linear", "knn")
    assert evaluate.validate_protocols(["quality"]) == ("quality",)
    with pytest.raises(ValueError, match="unknown: telepathy"):
        evaluate.validate_protocols("linear,telepathy")
    with pytest.raises(ValueError, match="none given"):
        evaluate.validate_protocols(" , ")


def test_registry_names_every_protocol_once():
    assert evaluate.PROTOCOLS == (
        "linear",
        "knn",
        "finetune",
        "random_init",
        "retrieval",
        "quality",
    )
    assert set(evaluate.DEFAULT_PROTOCOLS) <= set(evaluate.PROTOCOLS)
    assert evaluate.LABELED_PROTOCOLS == ("linear", "knn", "finetune", "random_init", "retrieval")
    for name, protocol in evaluate.REGISTRY.items():
        assert protocol.name == name and callable(protocol.run) and protocol.description


def test_old_names_still_resolve():
    from simclr_tf.evaluation.linear_probe import DEFAULT_C_VALUES
    from simclr_tf.evaluation.quality import two_view_quality

    import simclr_tf as st

    assert st.evaluation is st.evaluate
    assert st.evaluation.knn.knn_predict is evaluate.knn_predict
    assert two_view_quality is evaluate.two_view_quality
    assert DEFAULT_C_VALUES == linear_probe_module.DEFAULT_C_VALUES
    for name in ("class_balanced_subset", "format_results_table", "load_evaluation_data"):
        assert callable(getattr(st.evaluate, name))
    assert not hasattr(evaluate, "extract_dataset_features")  # removed: it had no caller


def test_results_are_rendered_before_anything_is_written(tmp_path):
    with pytest.raises(KeyError):
        evaluate.save_results({"protocols": {"linear": {"top1": 0.5}}}, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    paths = evaluate.save_results({"encoder": "e", "dataset": "d"}, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["results.json", "results.md"]
    assert json.loads(open(paths[0]).read()) == {"dataset": "d", "encoder": "e"}
