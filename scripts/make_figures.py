"""Regenerates the figures in ``imgs/`` from code: ``make figures`` (or this script) runs it.

Every figure the README and the notebooks show is drawn here, never by hand, so that it can be
rebuilt and reviewed like any other code. Each figure is one function registered in
``FIGURES`` under the file name it writes; add new figures the same way.

    .venv/bin/python scripts/make_figures.py              # every figure
    .venv/bin/python scripts/make_figures.py simclr_framework.png
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402
import matplotlib.ticker  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

IMGS_DIR = Path(__file__).resolve().parents[1] / "imgs"

FIGURES: dict[str, Callable[[Path], None]] = {}


def figure(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    """Registers a function that writes ``imgs/<name>``."""

    def register(function: Callable[[Path], None]) -> Callable[[Path], None]:
        FIGURES[name] = function
        return function

    return register


# -- The SimCLR framework (notebooks/00_motivation.ipynb) ------------------------------------

_FRAMEWORK_IMAGE_INDEX = 0  # a training image of the bundled sample (a horse)
_FRAMEWORK_SEED = 3


def _framework_images():
    """One image of the bundled sample and two SimCLR views of it (CIFAR-10 recipe)."""
    import simclr_tf as st

    (images, labels), _ = st.data.load_sample()
    image = images[_FRAMEWORK_IMAGE_INDEX : _FRAMEWORK_IMAGE_INDEX + 1]
    config = st.augment.AugmentConfig.preset("cifar")
    view_i, view_j = st.augment.two_views(image, _FRAMEWORK_SEED, 0, config)
    name = st.data.CIFAR10_CLASSES[int(labels[_FRAMEWORK_IMAGE_INDEX])]
    return image[0], view_i.numpy()[0], view_j.numpy()[0], name


def _box(axes, centre, size, text, colour, fontsize=11):
    x, y = centre
    width, height = size
    axes.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.01,rounding_size=0.02",
            facecolor=colour,
            edgecolor="0.25",
            linewidth=1.2,
        )
    )
    axes.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(axes, start, end, text=None, offset=(0.0, 0.03), style="-|>", colour="0.2", **kw):
    axes.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle=style, mutation_scale=14, color=colour, linewidth=1.4, **kw
        )
    )
    if text:
        middle = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        axes.text(*middle, text, ha="center", va="bottom", fontsize=10, color="0.15")


def _thumbnail(figure, axes, centre, width, height, image, title):
    """Draws an image in a ``width`` x ``height`` box (axes coordinates) around ``centre``."""
    x0, y0 = axes.transAxes.transform((centre[0] - width / 2, centre[1] - height / 2))
    x1, y1 = axes.transAxes.transform((centre[0] + width / 2, centre[1] + height / 2))
    to_figure = figure.transFigure.inverted()
    (fx0, fy0), (fx1, fy1) = to_figure.transform((x0, y0)), to_figure.transform((x1, y1))
    inset = figure.add_axes((fx0, fy0, fx1 - fx0, fy1 - fy0))
    inset.imshow(image, interpolation="nearest")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_title(title, fontsize=10, pad=3)


@figure("simclr_framework.png")
def simclr_framework(path: Path) -> None:
    """x -> t(x) -> f -> h -> g -> z on two branches, joined by the contrastive loss."""
    image, view_i, view_j, name = _framework_images()
    width_inches, height_inches = 12.0, 5.2
    fig = plt.figure(figsize=(width_inches, height_inches))
    axes = fig.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.axis("off")
    # Square thumbnails: a width of w axes units is w * 12 inches, as tall as w * 12 / 5.2.
    thumb_w = 0.075
    thumb_h = thumb_w * width_inches / height_inches

    top, bottom, middle = 0.72, 0.26, 0.49
    x_image, x_view, x_f, x_h, x_g, x_z = 0.07, 0.24, 0.38, 0.52, 0.66, 0.79
    _thumbnail(fig, axes, (x_image, middle), thumb_w, thumb_h, image, f"image $x$ ({name})")
    for row, view, suffix in ((top, view_i, "i"), (bottom, view_j, "j")):
        _thumbnail(
            fig, axes, (x_view, row), thumb_w, thumb_h, view, rf"view $\tilde{{x}}_{suffix}$"
        )
        going_up = row > middle
        _arrow(
            axes,
            (x_image + thumb_w / 2 + 0.005, middle + (0.05 if going_up else -0.05)),
            (x_view - thumb_w / 2 - 0.01, row),
        )
        axes.text(
            (x_image + x_view) / 2 - 0.005,
            (middle + row) / 2 + (0.03 if going_up else -0.07),
            rf"$t_{suffix} \sim \mathcal{{T}}$",
            ha="right",
            fontsize=11,
        )
        _box(axes, (x_f, row), (0.1, 0.16), "encoder\n$f(\\cdot)$", "#cfe2f3")
        _box(axes, (x_h, row), (0.07, 0.12), f"$h_{suffix}$", "#d9ead3", fontsize=13)
        _box(axes, (x_g, row), (0.1, 0.16), "projection\nhead $g(\\cdot)$", "#fce5cd")
        _box(axes, (x_z, row), (0.07, 0.12), f"$z_{suffix}$", "#f4cccc", fontsize=13)
        _arrow(axes, (x_view + thumb_w / 2 + 0.01, row), (x_f - 0.05, row))
        _arrow(axes, (x_f + 0.05, row), (x_h - 0.035, row))
        _arrow(axes, (x_h + 0.035, row), (x_g - 0.05, row))
        _arrow(axes, (x_g + 0.05, row), (x_z - 0.035, row))
    # Shared weights between the two branches.
    for x in (x_f, x_g):
        axes.plot([x, x], [bottom + 0.09, top - 0.09], linestyle=":", color="0.4")
        axes.text(x + 0.006, middle, "shared\nweights", fontsize=9, va="center", color="0.3")
    # The loss joins the two projections.
    x_loss = x_z + 0.05
    axes.plot([x_z + 0.035, x_loss], [top, top], color="C3", linewidth=1.4)
    axes.plot([x_z + 0.035, x_loss], [bottom, bottom], color="C3", linewidth=1.4)
    _arrow(axes, (x_loss, top), (x_loss, bottom), style="<|-|>", colour="C3")
    axes.text(
        x_loss + 0.012,
        middle,
        "maximise agreement\nof $z_i$ and $z_j$:\nNT-Xent loss, with the\nother images of the\n"
        "batch as negatives",
        fontsize=10,
        va="center",
        color="C3",
    )
    # What is kept and what is thrown away.
    axes.text(
        x_h,
        bottom - 0.12,
        "$h = f(x)$: the representation,\nkept for downstream tasks",
        ha="center",
        va="top",
        fontsize=9.5,
        color="#38761d",
    )
    axes.text(
        x_g,
        top + 0.12,
        "$z = g(h)$: used only by the loss;\n$g$ is discarded after pretraining",
        ha="center",
        va="bottom",
        fontsize=9.5,
        color="#b45f06",
    )
    fig.savefig(path, dpi=150)
    plt.close(fig)


# -- Augmented views (notebooks/01_augmentation.ipynb, README) --------------------------------

_VIEWS_FIRST_IMAGE = 0  # first of the bundled sample's training images drawn
_VIEWS_IMAGES = 8
_VIEWS_PAIRS = 2
_VIEWS_SEED = 0


@figure("augmented_views.png")
def augmented_views(path: Path) -> None:
    """Eight sample images, each above two pairs of SimCLR views (CIFAR-10 recipe)."""
    import numpy as np

    import simclr_tf as st

    (images, labels), _ = st.data.load_sample()
    # One image per class where possible, so that the figure shows varied content.
    picks, seen = [], set()
    for index in range(_VIEWS_FIRST_IMAGE, len(labels)):
        if int(labels[index]) not in seen:
            seen.add(int(labels[index]))
            picks.append(index)
        if len(picks) == _VIEWS_IMAGES:
            break
    batch = images[picks]
    config = st.augment.AugmentConfig.preset("cifar")
    pairs = [st.augment.two_views(batch, _VIEWS_SEED, step, config) for step in range(_VIEWS_PAIRS)]
    views1 = np.stack([first.numpy() for first, _ in pairs])
    views2 = np.stack([second.numpy() for _, second in pairs])
    titles = [st.data.CIFAR10_CLASSES[int(labels[index])] for index in picks]
    fig = st.viz.plot_view_pairs(batch, views1, views2, titles=titles, path=path)
    plt.close(fig)


# -- Accuracy per minute of CPU (README, performance section) -------------------------------

BUDGET_RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
# Sub-folders of BUDGET_RESULTS_DIR, one per machine the budget runs were made on.
BUDGET_MACHINES = {
    "intel-xeon-amx": "Intel Xeon (AMX), 2 cores",
    "amd-epyc": "AMD EPYC (Zen 4, no AMX), 2 cores",
}


# The recipes drawn: the current cpu preset, and the same with 32-px training views (the preset
# before views became 24 px), so that the figure shows what the smaller views bought.
BUDGET_RECIPES = {
    "cpu preset": {},
    "cpu preset with 32-px views": {"view_size_ratio": 1.0},
}


def _budget_runs_of_cpu_preset(folder: Path, **changes: object) -> list[dict]:
    """The ``budget-*.json`` results in ``folder`` whose recipe is the current ``cpu`` preset
    with ``changes``."""
    import json

    from simclr_tf.config import preset

    # Fields that size or place a run rather than define its recipe.
    run_fields = {"steps", "epochs", "out_dir", "verbose", "checkpoint_every", "data_dir"}
    recipe = preset("cpu", dataset="cifar10", **changes).to_dict()
    defaults = preset("paper").to_dict()
    runs = []
    for result_path in sorted(folder.glob("budget-*.json")):
        result = json.loads(result_path.read_text(encoding="utf-8"))
        if set(result["config"]) - set(defaults):
            continue  # fields this code does not know: written by another version of it
        # Fields that a result predates had their default value.
        config = {**defaults, **result["config"]}
        if all(config[k] == v for k, v in recipe.items() if k not in run_fields):
            runs.append(result)
    return sorted(runs, key=lambda result: result["minutes"])


def _round_half_up(percent: float) -> str:
    """``percent`` to one decimal as the tables write it (68.35 -> "68.4", not "68.3")."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(repr(round(percent, 6))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@figure("cifar10_budget.png")
def cifar10_budget(path: Path) -> None:
    """Linear-probe and kNN top-1 on CIFAR-10 against the pretraining budget in minutes.

    Reads the ``budget-*.json`` files that ``benchmarks/cifar10_budget.py`` wrote and that
    were copied to ``benchmarks/results/<machine>/``; only runs of the ``BUDGET_RECIPES`` are
    drawn (whatever flags produced them), one line per machine, recipe and protocol.
    """
    fig, axes = plt.subplots(figsize=(6.4, 4.4))
    drawn = []
    curves = [
        (folder, machine, recipe, changes)
        for folder, machine in BUDGET_MACHINES.items()
        for recipe, changes in BUDGET_RECIPES.items()
    ]
    for (folder, machine, recipe, changes), colour in zip(
        curves, ("C0", "C2", "C1", "C3"), strict=True
    ):
        runs = _budget_runs_of_cpu_preset(BUDGET_RESULTS_DIR / folder, **changes)
        if not runs:
            continue
        minutes = [result["minutes"] for result in runs]
        drawn.extend(minutes)
        for key, label, style in (
            ("linear_top1", "linear probe", "-o"),
            ("knn_top1", "kNN", "--s"),
        ):
            values = [100 * result[key] for result in runs]
            axes.plot(minutes, values, style, color=colour, label=f"{label}, {recipe}, {machine}")
            for x, y in zip(minutes, values, strict=True):
                axes.annotate(
                    _round_half_up(y), (x, y), textcoords="offset points", xytext=(4, -12)
                )
        for x, result in zip(minutes, runs, strict=True):
            axes.annotate(
                f"{result['epochs']:.1f} ep",
                (x, 100 * result["linear_top1"]),
                textcoords="offset points",
                xytext=(-10, 8),
                fontsize=8,
                color=colour,
            )
    if not drawn:
        raise FileNotFoundError(
            f"No budget results of the cpu preset under {BUDGET_RESULTS_DIR}; run "
            "benchmarks/cifar10_budget.py and copy its budget.json to "
            "benchmarks/results/<machine>/budget-<M>min.json."
        )
    ticks = sorted(set(drawn))
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes.set_xticks(ticks, [f"{m:g}" for m in ticks])
    axes.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)
    axes.margins(y=0.12)
    axes.set_xlabel("pretraining budget (minutes of wall clock)")
    axes.set_ylabel("CIFAR-10 test top-1 (%)")
    axes.set_title("simclr-tf cpu preset on full CIFAR-10")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"Figures to write (default: all): {', '.join(FIGURES)}."
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}.")
    IMGS_DIR.mkdir(exist_ok=True)
    for name in args.names or FIGURES:
        FIGURES[name](IMGS_DIR / name)
        print(f"wrote {IMGS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
