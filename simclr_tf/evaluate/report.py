"""Evaluation results as a markdown table and a JSON file, with the command that made them.

The results dict that :func:`simclr_tf.evaluate.evaluate_encoder` returns is the single source:
``results.json`` is that dict verbatim, and ``results.md`` the human-readable table built from it
by :func:`format_results_table`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"


def _percent(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{100.0 * value:.2f}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _fraction_label(fraction: str, count: int) -> str:
    return f"{100.0 * float(fraction):g} % ({count:,})"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(method, labels, top-1, seconds, notes) for every accuracy in ``results``."""
    protocols = results.get("protocols", {})
    all_labels = f"100 % ({results.get('num_train', 0):,})"
    rows = []
    linear = protocols.get("linear")
    if linear:
        note = f"C = {linear['c']:g}, chosen on a validation split of the training set"
        rows.append(("Linear probe", all_labels, linear["top1"], linear["seconds"], note))
    knn = protocols.get("knn")
    if knn:
        note = f"k = {knn['k']}, temperature {knn['temperature']:g}, cosine similarity"
        rows.append(("Weighted kNN", all_labels, knn["top1"], knn["seconds"], note))
    retrieval = protocols.get("retrieval")
    if retrieval:
        last = retrieval["ks"][-1]
        note = (
            f"recall@1 of test images against the training images; mAP@{last} "
            f"{retrieval[f'map@{last}']:.3f}, precision@{last} {retrieval[f'precision@{last}']:.3f}"
        )
        rows.append(("Retrieval", all_labels, retrieval["recall@1"], retrieval["seconds"], note))
    random_init = protocols.get("random_init")
    if random_init:
        rows.append(
            (
                "Linear probe, random-init encoder",
                all_labels,
                random_init["linear"]["top1"],
                random_init["linear"]["seconds"],
                f"C = {random_init['linear']['c']:g}",
            )
        )
        rows.append(
            (
                "Weighted kNN, random-init encoder",
                all_labels,
                random_init["knn"]["top1"],
                random_init["knn"]["seconds"],
                "",
            )
        )
    finetune = protocols.get("finetune", {}).get("fractions", {})
    random_fractions = (random_init or {}).get("fractions", {})
    for fraction in sorted(set(finetune) | set(random_fractions), key=float):
        entry = finetune.get(fraction, {})
        count = entry.get("num_labels") or random_fractions[fraction]["num_labels"]
        labels = _fraction_label(fraction, count)
        for key, method in (
            ("finetune", "Fine-tuned encoder + linear head"),
            ("supervised", "Supervised from scratch, same architecture"),
            ("linear", "Linear probe on the labelled subset"),
        ):
            if key in entry:
                rows.append((method, labels, entry[key]["top1"], entry[key]["seconds"], ""))
        if fraction in random_fractions:
            linear_random = random_fractions[fraction]["linear"]
            rows.append(
                (
                    "Linear probe on the labelled subset, random-init encoder",
                    labels,
                    linear_random["top1"],
                    linear_random["seconds"],
                    "",
                )
            )
    return [(m, lab, _percent(t), _seconds(s), n) for m, lab, t, s, n in rows]


def format_results_table(results: dict[str, Any]) -> str:
    """Renders evaluation results as markdown: a header, an accuracy table, a quality table.

    Args:
        results: the dict returned by :func:`simclr_tf.evaluate.evaluate_encoder`.

    Returns:
        Markdown text ending with a newline.
    """
    lines = [f"# Evaluation of `{results.get('encoder', '?')}` on {results.get('dataset', '?')}"]
    lines.append("")
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    lines.append(
        f"{results.get('num_train', 0):,} training and {results.get('num_test', 0):,} test "
        f"images; representation width {results.get('feature_dim', '?')}. Top-1 accuracy on the "
        "test set; seconds are wall-clock time of each protocol on this machine (feature "
        f"extraction: {_seconds(results.get('feature_seconds'))} s, counted once)."
    )
    rows = _rows(results)
    if rows:
        lines += [
            "",
            "| Method | Labels | Top-1 (%) | Seconds | Notes |",
            "|---|---|---:|---:|---|",
        ]
        lines += [f"| {' | '.join(row)} |" for row in rows]
    quality = results.get("protocols", {}).get("quality")
    if quality:
        lines += [
            "",
            f"Representation quality without labels, on {quality['num_images']:,} test images:",
            "",
            "| Alignment (lower is better) | Uniformity (lower is better) | Embedding std "
            f"(1/sqrt(D) = {quality['reference_std']:.4f}) | "
            f"Effective rank (of {quality['max_rank']}) |",
            "|---:|---:|---:|---:|",
            f"| {quality['alignment']:.4f} | {quality['uniformity']:.4f} | "
            f"{quality['embedding_std']:.4f} | {quality['effective_rank']:.1f} |",
        ]
    figures = results.get("figures")
    if figures:
        lines += ["", "Figures:", ""]
        lines += [f"- {name}: `{path}`" for name, path in figures.items()]
    return "\n".join(lines) + "\n"


def save_results(results: dict[str, Any], out_dir: str | os.PathLike) -> tuple[str, str]:
    """Writes ``results.json`` and ``results.md`` into ``out_dir`` (created if needed).

    Each file is written to a temporary name and then renamed into place, so an interrupted or
    failed write never leaves a half-written results file (an older complete one stays).

    Args:
        results: the dict returned by :func:`simclr_tf.evaluate.evaluate_encoder`.
        out_dir: the folder.

    Returns:
        The paths of the JSON and markdown files.
    """
    json_text = json.dumps(results, indent=2, sort_keys=True, default=_json_default) + "\n"
    markdown_text = format_results_table(results)  # both rendered before anything is written
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, RESULTS_JSON)
    markdown_path = os.path.join(out_dir, RESULTS_MARKDOWN)
    _write_atomically(json_path, json_text)
    _write_atomically(markdown_path, markdown_text)
    return json_path, markdown_path


def _write_atomically(path: str, text: str) -> None:
    partial = f"{path}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
