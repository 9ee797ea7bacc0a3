"""The simclr_tf.augment package: lazy re-exports, and which imports stay free of TensorFlow."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import simclr_tf
from simclr_tf import augment

REPO = Path(__file__).resolve().parent.parent

# The public names of the single-module simclr_tf/augment.py this package replaced.
FORMER_NAMES = (
    "GRAY_WEIGHTS JITTER_OPERATIONS HUE_METHODS PRESETS AugmentConfig to_unit_range "
    "sample_crop_boxes resized_crop flip_boxes horizontal_flip grayscale apply_color_matrices "
    "brightness_matrices saturation_matrices yiq_hue_matrices adjust_brightness adjust_contrast "
    "adjust_saturation to_grayscale adjust_hue color_jitter gaussian_blur solarize "
    "AugmentParameters sample_parameters apply_parameters augment_batch two_views "
    "SimCLRAugmentation"
).split()


@pytest.mark.parametrize(
    "module", ["simclr_tf.augment.config", "simclr_tf.transforms", "simclr_tf.config"]
)
def test_module_imports_without_tensorflow(module):
    # conftest.py has already imported TensorFlow here, so the check runs in a fresh process.
    code = (
        f"import sys, {module}\n"
        "heavy = sorted({'tensorflow', 'keras'} & set(sys.modules))\n"
        f"assert not heavy, f'importing {module} loaded {{heavy}}'\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_public_name_resolves_to_its_module():
    assert set(FORMER_NAMES) <= set(augment.__all__)
    for name in augment.__all__:
        value = getattr(augment, name)
        module = importlib.import_module(f"simclr_tf.augment.{augment._EXPORTS[name]}")
        assert getattr(module, name) is value, name
    from simclr_tf.augment import AugmentConfig, two_views

    assert simclr_tf.augment.two_views is two_views
    assert AugmentConfig is augment.config.AugmentConfig


def test_dir_lists_the_names_and_submodules_for_tab_completion():
    names = dir(augment)
    assert set(augment.__all__) <= set(names)
    assert {"config", "views", "layer", "two_views", "SimCLRAugmentation"} <= set(names)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        augment.no_such_name  # noqa: B018
