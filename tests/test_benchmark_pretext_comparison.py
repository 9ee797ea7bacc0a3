"""benchmarks/pretext_comparison.py: merging earlier runs' seeds into one summary."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def comparison(monkeypatch_module):
    # As when it runs as a script: its folder is on the path (it imports cifar10_budget).
    monkeypatch_module.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    path = os.path.join(ROOT, "benchmarks", "pretext_comparison.py")
    spec = importlib.util.spec_from_file_location("pretext_comparison", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIELDS = {
    "minutes": 30.0,
    "clock": "cpu",
    "quick_check": False,
    "preset": "cpu",
    "overrides": [],
    "num_train": 50000,
    "num_test": 10000,
}


def _row(method, seed, linear):
    return {"method": method, "seed": seed, "linear_top1": linear, "knn_top1": linear - 0.1}


def _write(path, results, **changes):
    path.write_text(json.dumps({**FIELDS, **changes, "results": results}))
    return str(path)


def test_merged_seeds_are_summarised_over_seeds(comparison, tmp_path):
    first = _write(tmp_path / "a.json", [_row("simclr", 0, 0.70), _row("rotation", 0, 0.66)])
    second = _write(tmp_path / "b.json", [_row("simclr", 1, 0.74), _row("rotation", 1, 0.68)])
    rows = comparison.earlier_results([first, second], FIELDS)
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("simclr", 0),
        ("rotation", 0),
        ("simclr", 1),
        ("rotation", 1),
    ]
    summary = comparison.summarize(rows, num_test=10000)
    assert summary["simclr"]["seeds"] == [0, 1]
    assert summary["simclr"]["linear_mean"] == pytest.approx(0.72)
    # the standard error over two seeds: std (ddof 1) / sqrt(2) = |a - b| / 2
    assert summary["simclr"]["linear_stderr"] == pytest.approx(0.02)
    assert summary["simclr"]["stderr_kind"] == "over seeds"
    assert summary["rotation"]["simclr_margin"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    "field, value", [("minutes", 12.0), ("clock", "wall"), ("quick_check", True), ("preset", "x")]
)
def test_a_run_with_another_budget_or_setting_is_refused(comparison, tmp_path, field, value):
    other = _write(tmp_path / "other.json", [_row("simclr", 0, 0.7)], **{field: value})
    with pytest.raises(ValueError, match=f"its {field} is {value!r} but this run's is"):
        comparison.earlier_results([other], FIELDS)


def test_a_file_that_is_not_a_results_file_is_refused(comparison, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not a results file of this script"):
        comparison.earlier_results([str(broken)], FIELDS)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(FIELDS))  # no "results"
    with pytest.raises(ValueError, match="not a results file of this script.*KeyError"):
        comparison.earlier_results([str(missing)], FIELDS)
    with pytest.raises(ValueError, match="FileNotFoundError"):
        comparison.earlier_results([str(tmp_path / "absent.json")], FIELDS)
