"""Tests for simclr_tf.config: presets, validation, the flags of the command lines."""

from __future__ import annotations

import math

import pytest

from simclr_tf.config import (
    PRESET_ALIASES,
    PRESETS,
    SimCLRConfig,
    config_from_args,
    preset,
)


def test_command_line_accepts_the_seed_invocation():
    config = config_from_args(["--batch_size=32", "--lr=0.003"])
    assert config.batch_size == 32
    assert config.lr == 0.003
    assert config.encoder == "resnet18"  # paper defaults everywhere else
    cpu = config_from_args(["--preset=cpu", "--epochs=2", "--no-online_probe"])
    assert (cpu.encoder, cpu.epochs, cpu.online_probe) == ("small_cnn", 2, False)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch_size=-4"], "batch_size must be >= 2"),
        (["--warmup_epochs=inf"], "warmup_epochs must be a finite number"),
        (["--warmup_epochs=nan"], "warmup_epochs must be a finite number"),
        (["--weight_decay=inf"], "weight_decay must be a finite number"),
        (["--image_size=20000"], "image_size must be in [1, 1024]"),
        (["--momentum=1"], "momentum must be in [0, 1)"),
        (["--verbose=3"], "verbose must be one of 0, 1, 2"),
        (["--encoder=vgg"], "encoder must be one of"),
        (["--temperature=0"], "temperature must be > 0"),
        (["--dataset=folder"], "data_dir"),
        (["--precision=float8"], "precision must be one of"),
        (["--view_size_ratio=0"], "view_size_ratio must be in (0, 1]"),
        (["--view_size_ratio=1.5"], "view_size_ratio must be in (0, 1]"),
    ],
)
def test_command_line_rejects_bad_values(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_from_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_from_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--epochs",
        "--steps",
        "--encoder",
        "--width",
        "--image_size",
        "--temperature",
        "--optimizer",
        "--lr_scaling",
        "--weight_decay",
        "--warmup_epochs",
        "--precision",
        "--strategy",
        "--dataset",
        "--data_dir",
        "--out_dir",
        "--seed",
        "--resume",
        "--augment",
        "--preset",
    ):
        assert flag in text, flag


def test_full_is_another_name_for_the_paper_preset():
    assert PRESET_ALIASES == {"full": "paper"}
    assert "full" not in PRESETS
    assert preset("full") == preset("paper") == SimCLRConfig().validate()


def test_every_float_field_must_be_finite():
    for name in ("lr", "weight_decay", "warmup_epochs", "temperature", "color_strength"):
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(ValueError, match=f"{name} must be a finite number"):
                preset("smoke", **{name: value})


def test_config_round_trips_through_json_atomically(tmp_path):
    config = preset("cpu", epochs=3)
    path = tmp_path / "config.json"
    config.save(path)
    assert SimCLRConfig.load(path) == config
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left


def test_from_dict_can_ignore_fields_of_other_versions():
    values = {**preset("cpu").to_dict(), "field_of_a_newer_version": 1}
    with pytest.raises(ValueError, match="Unknown config field"):
        SimCLRConfig.from_dict(values)
    assert SimCLRConfig.from_dict(values, ignore_unknown=True) == preset("cpu")


def test_augment_config_follows_the_run():
    augment = preset("cpu").augment_config()
    assert augment.crop_area == (0.2, 1.0)
    assert augment.output_size == 24
    assert preset("smoke", image_size=16).augment_config().output_size is None
