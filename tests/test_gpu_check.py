"""benchmarks/gpu_check.py in --quick mode: it runs on a machine without a GPU, skips the GPU
checks with a reason each, and writes its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_quick_mode_runs_and_says_what_it_skipped(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--quick", "--out_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (report_file,) = tmp_path.glob("gpu_check-*.json")
    checks = json.loads(report_file.read_text())["checks"]
    assert checks["devices"]["status"] == "ok"
    assert checks["precision"]["status"] == "ok"
    assert checks["precision"]["mixed_float16"]["loss_scale"][0] == 2.0**15
    assert checks["tests"]["status"] == "skipped"
    if not tf.config.list_physical_devices("GPU"):
        for name in ("two_logical_gpus", "views", "throughput", "full_epoch"):
            assert checks[name] == {"reason": "needs a GPU; none is visible", **checks[name]}
            assert checks[name]["status"] == "skipped"
            assert f"{name}: skipped  needs a GPU" in result.stdout
