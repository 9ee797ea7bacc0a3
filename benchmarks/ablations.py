"""The paper's two famous ablations, small enough for a 2-core CPU, on full CIFAR-10.

* ``augmentations`` (the paper's Figure 5): crop and colour together (the ``cpu`` preset),
  crop and flip only (``--set augment=cifar_crop_only``), colour only (``--set
  crop_min_area=1.0``: every crop box is the whole image).
* ``batch_size`` (Figure 9: more negatives per step): batches of 32, 128 (the preset) and
  512, the learning rate scaled with the square root of the batch from the preset's 4e-3 at
  128 (the small-batch rule the paper recommends), so 2e-3 and 8e-3.

Each variant is one ``cifar10_budget.py`` run of ``--minutes`` of ``--clock`` time (CPU time
by default, which other work on the machine barely shifts; its own process, so that every
run's clock starts at its start), in turns; the table gives linear-probe and 200-NN top-1 on
the 10,000 test images.

    SIMCLR_DATA_DIR=../shared/datasets/cifar10 .venv/bin/python benchmarks/ablations.py \\
        --study augmentations --minutes 10 --out benchmarks/results/<machine>/ablation-aug.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

STUDIES = {
    "augmentations": {
        "crop + colour (cpu preset)": [],
        "crop only": ["augment=cifar_crop_only"],
        "colour only": ["crop_min_area=1.0"],
    },
    "batch_size": {
        "batch 32, lr 2e-3": ["batch_size=32", "lr=2e-3"],
        "batch 128, lr 4e-3 (cpu preset)": [],
        "batch 512, lr 8e-3": ["batch_size=512", "lr=8e-3"],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=tuple(STUDIES), required=True)
    parser.add_argument("--minutes", type=float, required=True, help="Budget of each variant.")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="What --minutes counts (cifar10_budget.py --clock): CPU time (default) or wall.",
    )
    parser.add_argument("--out", required=True, help="Results JSON.")
    args = parser.parse_args()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cifar10_budget.py")
    rows = []
    for name, overrides in STUDIES[args.study].items():
        with tempfile.TemporaryDirectory() as scratch:
            out_dir = os.path.join(scratch, "budget")
            command = [
                sys.executable,
                script,
                "--minutes",
                f"{args.minutes:g}",
                "--clock",
                args.clock,
                "--out_dir",
                out_dir,
            ]
            for override in overrides:
                command += ["--set", override]
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True)
            with open(os.path.join(out_dir, "budget.json"), encoding="utf-8") as handle:
                result = json.load(handle)
        rows.append({"variant": name, "overrides": overrides, **result})
        table = ["| Variant | Epochs | Linear probe | 200-NN |", "|---|---:|---:|---:|"]
        table += [
            f"| {r['variant']} | {r['epochs']:.1f} | {100 * r['linear_top1']:.1f} % | "
            f"{100 * r['knn_top1']:.1f} % |"
            for r in rows
        ]
        document = {
            "study": args.study,
            "minutes": args.minutes,
            "clock": args.clock,
            "command": " ".join([sys.executable, *sys.argv]),
            "date": time.strftime("%Y-%m-%d"),
            "rows": rows,
            "table": "\n".join(table),
        }
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
    print(document["table"])


if __name__ == "__main__":
    main()
