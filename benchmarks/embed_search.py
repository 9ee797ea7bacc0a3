"""After pretraining: how fast embedding and search are, and how well near-duplicates are found.

Three parts, each printing a table (``--parts`` picks them):

* **embed**: images/s of ``embed_folder`` on JPEG files on disk, for the ``cpu`` preset's
  encoder (``small_cnn``, ``h`` 1024; the trained export given by ``--encoder``, else random
  weights) and ResNet-18 (random weights: speed does not depend on them) at 32 and 96 px,
  against the encoder's bare forward pass on a fixed batch (the SavedModel's ``serve``) and
  against the input pipeline alone (reading, decoding, resizing, batching; no encoder).
  ``embed / bare`` near 1 means the input pipeline is not the bottleneck.
* **search**: ``--sizes`` random unit vectors of width ``--dim`` (memory-mapped ``.npy``, as
  an index stores them); exact search (blocked matrix products) and FAISS IVF / HNSW: build
  time, query latency for 1 and 100 queries, memory, recall@10 against exact. Random vectors
  are the worst case for approximate search (no clusters to exploit), so recall is also
  measured on real embeddings: the 60,000 CIFAR-10 images through ``--encoder``.
* **duplicates**: the 10,000 CIFAR-10 test images plus planted copies of 500 of them (125 each
  of horizontal flip, a small crop resized back, JPEG recompression at quality 75, a slight
  colour shift), written as PNG files, embedded, and every pair compared: recall (planted pairs
  at or above the threshold) and precision (planted pairs among all pairs at or above it) for a
  sweep of thresholds, for the trained encoder and the same network with random weights.

    SIMCLR_DATA_DIR=/work/shared/datasets/cifar10 .venv/bin/python benchmarks/embed_search.py \\
        --encoder /tmp/embed_enc/encoder --json benchmarks/results/amd-epyc-zen5/embed_search.json

The machine is shared and its speed wanders: quote every figure with the machine, the date and
the load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from datetime import datetime, timezone

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_tf import duplicates, embed, search, similarity  # noqa: E402
from simclr_tf.data import load_cifar10  # noqa: E402
from simclr_tf.evaluate.features import FeatureEncoder  # noqa: E402
from simclr_tf.export import export_encoder  # noqa: E402
from simclr_tf.models import build_encoder  # noqa: E402

TRANSFORMS = ("flip", "crop", "jpeg", "colour")


def machine() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return platform.processor()


def load() -> float:
    return round(os.getloadavg()[0], 2)


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def write_images(folder: str, images: np.ndarray, names: list[str], jpeg: bool) -> None:
    os.makedirs(folder, exist_ok=True)
    for image, name in zip(images, names, strict=True):
        data = tf.io.encode_jpeg(image, quality=90) if jpeg else tf.io.encode_png(image)
        tf.io.write_file(os.path.join(folder, name), data)


def quiet_embed(encoder, folder: str, out: str, **options) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embed.embed_folder(encoder, folder, out, verbose=False, **options)


# -- embedding throughput -----------------------------------------------------------------------


def export_random(work: str, name: str, size: int, precision: str, **options) -> str:
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = build_encoder(name, size, **options)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    path = os.path.join(work, f"{name}-{size}px-{precision}")
    return export_encoder(model, path, size, include_keras=False, include_tflite=False)


def bare_forward(encoder: FeatureEncoder, batch: np.ndarray, seconds: float = 4.0) -> float:
    encoder(batch)  # warm-up (first call)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        encoder(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def pipeline_only(paths: list[str], size: int, batch_size: int) -> float:
    start, done = time.perf_counter(), 0
    for images, _ in embed.image_batches(paths, (size, size), batch_size):
        done += int(images.shape[0])
    return done / (time.perf_counter() - start)


def part_embed(args, work: str, x_test: np.ndarray) -> dict:
    configs = [
        (
            "small_cnn (cpu preset, h 1024)",
            args.encoder,
            "small_cnn",
            32,
            "mixed_bfloat16",
            {"representation_dim": 1024},
            args.embed_images,
        ),
        ("resnet18 (CIFAR stem)", None, "resnet18", 32, "float32", {}, args.embed_images // 2),
        ("resnet18 (ImageNet stem)", None, "resnet18", 96, "float32", {}, args.embed_images // 2),
    ]
    results = []
    for label, path, name, size, precision, options, count in configs:
        if path is None:
            path = export_random(work, name, size, precision, **options)
            weights = "random"
        else:
            weights = "trained"
        folder = os.path.join(work, f"jpeg-{size}px-{count}")
        if not os.path.isdir(folder):
            images = x_test[:count]
            if size != 32:
                images = tf.cast(tf.round(tf.image.resize(images, (size, size))), tf.uint8)
                images = images.numpy()
            write_images(folder, images, [f"{i:05d}.jpg" for i in range(len(images))], jpeg=True)
        paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
        encoder = FeatureEncoder(path)
        batch = np.stack([tf.io.decode_jpeg(tf.io.read_file(p)).numpy() for p in paths[:256]])
        load_before = load()
        bare = bare_forward(encoder, batch)
        feed = pipeline_only(paths, size, 256)
        out = os.path.join(work, f"index-{name}-{size}")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        manifest = quiet_embed(path, folder, out, batch_size=256)
        whole = manifest["count"] / (time.perf_counter() - start)
        row = {
            "encoder": label,
            "weights": weights,
            "image_size": size,
            "precision": precision,
            "images": manifest["count"],
            "bare_forward_images_per_s": round(bare, 1),
            "input_pipeline_images_per_s": round(feed, 1),
            "embed_folder_images_per_s": round(whole, 1),
            "embed_stream_images_per_s": manifest["images_per_second"]["after_first_batch"],
            "stream_over_bare": round(manifest["images_per_second"]["after_first_batch"] / bare, 2),
            "load": max(load_before, load()),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    table(
        "Embedding throughput (JPEG files on disk, batch 256). Stream: embed_folder's images/s "
        "while streaming, after its first batch (which also warms the SavedModel up); whole "
        "call: everything, also loading the export, hashing it, listing the folder and writing "
        "the index",
        [
            "Encoder",
            "px",
            "Weights",
            "Images",
            "Bare forward img/s",
            "Input pipeline img/s",
            "embed_folder stream img/s",
            "Stream / bare",
            "embed_folder whole call img/s",
            "Load",
        ],
        [
            [
                r["encoder"],
                r["image_size"],
                r["weights"],
                r["images"],
                f"{r['bare_forward_images_per_s']:,.0f}",
                f"{r['input_pipeline_images_per_s']:,.0f}",
                f"{r['embed_stream_images_per_s']:,.0f}",
                r["stream_over_bare"],
                f"{r['embed_folder_images_per_s']:,.0f}",
                r["load"],
            ]
            for r in results
        ],
    )
    return {"rows": results}


# -- search -------------------------------------------------------------------------------------


def random_index(path: str, count: int, dim: int, seed: int) -> np.memmap:
    rng = np.random.default_rng(seed)
    vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    for start in range(0, count, 65536):
        rows = min(65536, count - start)
        vectors[start : start + rows] = similarity.normalize(rng.standard_normal((rows, dim)))
    vectors.flush()
    del vectors
    return np.load(path, mmap_mode="r")


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def search_figures(vectors, queries, kinds, faiss_ok: bool, hnsw_max: int) -> list[dict]:
    rows = []
    count = len(vectors)
    repeats = 3 if count <= 100_000 else 1

    def exact(q):
        return similarity.top_k(q, vectors, 10, normalized=True)

    exact(queries[:1])  # warm the page cache
    tracemalloc.start()
    latency_100, (_, exact_rows) = timed(lambda: exact(queries), repeats)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    latency_1, _ = timed(lambda: exact(queries[:1]), repeats)
    rows.append(
        {
            "method": "exact (blocked matmul, mmap)",
            "count": count,
            "build_s": 0.0,
            "latency_1_query_ms": round(1000 * latency_1, 2),
            "latency_100_queries_ms": round(1000 * latency_100, 1),
            "memory_mib": round(vectors.nbytes / 2**20, 1),
            "working_memory_mib": round(peak / 2**20, 1),
            "recall_at_10": 1.0,
            "load": load(),
        }
    )
    print(json.dumps(rows[-1]), flush=True)
    if not faiss_ok:
        return rows
    import faiss

    for kind in kinds:
        if kind == "hnsw" and count > hnsw_max:
            continue
        start = time.perf_counter()
        index = search.ApproximateIndex.build(vectors, kind)
        build = time.perf_counter() - start
        for widen in (1, 4):
            if kind == "ivf":
                index.index.nprobe = min(index.index.nlist, widen * max(8, index.index.nlist // 16))
                settings = f"nlist {index.index.nlist}, nprobe {index.index.nprobe}"
            else:
                index.index.hnsw.efSearch = 64 * widen
                settings = f"M 32, efSearch {index.index.hnsw.efSearch}"
            latency_100, (_, found) = timed(lambda index=index: index.search(queries, 10), 3)
            latency_1, _ = timed(lambda index=index: index.search(queries[:1], 10), 20)
            rows.append(
                {
                    "method": f"faiss {kind} ({settings})",
                    "count": count,
                    "build_s": round(build, 1),
                    "latency_1_query_ms": round(1000 * latency_1, 2),
                    "latency_100_queries_ms": round(1000 * latency_100, 1),
                    "memory_mib": round(faiss.serialize_index(index.index).nbytes / 2**20, 1),
                    "working_memory_mib": None,
                    "recall_at_10": round(search.recall_at_k(found, exact_rows), 4),
                    "load": load(),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        del index
    return rows


def part_search(args, work: str, real: np.ndarray | None) -> dict:
    try:
        import faiss  # noqa: F401

        faiss_ok = True
    except ImportError:
        faiss_ok = False
        print("faiss is not installed: approximate search is not measured")
    rng = np.random.default_rng(1)
    queries = similarity.normalize(rng.standard_normal((100, args.dim)))
    results = []
    for count in args.sizes:
        path = os.path.join(work, f"random-{count}.npy")
        vectors = random_index(path, count, args.dim, seed=count)
        results += [
            {**row, "data": f"random, dim {args.dim}"}
            for row in search_figures(vectors, queries, ("ivf", "hnsw"), faiss_ok, args.hnsw_max)
        ]
        del vectors
        os.remove(path)
    if real is not None:
        held_out = similarity.normalize(real[:100])
        database = similarity.normalize(real[100:])
        results += [
            {**row, "data": f"CIFAR-10 embeddings, dim {real.shape[1]}"}
            for row in search_figures(database, held_out, ("ivf", "hnsw"), faiss_ok, 10**9)
        ]
    table(
        "Search: top-10 by cosine similarity (exact = blocked matrix products over a memory-mapped "
        "float32 .npy; memory = the vectors / the FAISS index; working memory = NumPy's peak "
        "allocations while searching 100 queries)",
        [
            "Data",
            "Vectors",
            "Method",
            "Build s",
            "1 query ms",
            "100 queries ms",
            "Memory MiB",
            "Working MiB",
            "Recall@10",
            "Load",
        ],
        [
            [
                r["data"],
                f"{r['count']:,}",
                r["method"],
                r["build_s"],
                r["latency_1_query_ms"],
                r["latency_100_queries_ms"],
                r["memory_mib"],
                r["working_memory_mib"] or "",
                r["recall_at_10"],
                r["load"],
            ]
            for r in results
        ],
    )
    return {"rows": results, "dim": args.dim}


# -- near-duplicates ----------------------------------------------------------------------------


def planted_copies(
    images: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    originals = np.sort(rng.choice(len(images), count, replace=False))
    copies, kinds = [], []
    for number, index in enumerate(originals):
        image = images[index]
        kind = TRANSFORMS[number % len(TRANSFORMS)]
        if kind == "flip":
            copy = image[:, ::-1]
        elif kind == "crop":
            side = int(rng.integers(26, 30))
            top, left = rng.integers(0, 32 - side + 1, 2)
            crop = image[top : top + side, left : left + side]
            copy = tf.cast(tf.round(tf.image.resize(crop, (32, 32), antialias=True)), tf.uint8)
        elif kind == "jpeg":
            copy = tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=75))
        else:
            shifted = tf.image.adjust_saturation(
                tf.cast(image, tf.float32) / 255.0, float(rng.uniform(0.85, 1.15))
            )
            shifted = tf.image.adjust_brightness(shifted, float(rng.uniform(-0.06, 0.06)))
            copy = tf.cast(tf.round(tf.clip_by_value(shifted, 0, 1) * 255), tf.uint8)
        copies.append(np.asarray(copy))
        kinds.append(kind)
    return originals, np.stack(copies), kinds


def pair_histogram(vectors: np.ndarray, edges: np.ndarray, block: int = 2048) -> np.ndarray:
    """How many pairs i < j have a similarity in each bin of ``edges``."""
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for start in range(0, len(vectors), block):
        sims = vectors[start : start + block] @ vectors.T
        rows = np.arange(start, start + len(sims))[:, None]
        upper = np.arange(len(vectors))[None, :] > rows
        counts += np.histogram(sims[upper], bins=edges)[0]
    return counts


def duplicate_figures(index_folder: str, originals, kinds, thresholds) -> dict:
    index = search.EmbeddingIndex.load(index_folder)
    vectors = np.asarray(index.embeddings, dtype=np.float32)
    row_of = {os.path.basename(path): row for row, path in enumerate(index.paths)}
    first = np.array([row_of[f"orig-{i:05d}.png"] for i in originals])
    second = np.array(
        [row_of[f"copy-{i:05d}-{kind}.png"] for i, kind in zip(originals, kinds, strict=True)]
    )
    planted = np.sum(vectors[first] * vectors[second], axis=1)
    edges = np.concatenate([[-1.01], np.asarray(thresholds), [1.01]])
    all_pairs = pair_histogram(vectors, edges)
    at_or_above = np.cumsum(all_pairs[::-1])[::-1][1:]  # pairs with similarity >= threshold
    kinds = np.array(kinds)
    sweep = []
    for threshold, found_all in zip(thresholds, at_or_above, strict=True):
        hits = planted >= threshold
        recall = float(hits.mean())
        precision = float(hits.sum() / found_all) if found_all else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        sweep.append(
            {
                "threshold": threshold,
                "recall": round(recall, 4),
                "precision": round(precision, 4),
                "f1": round(f1, 4),
                "pairs_at_or_above": int(found_all),
                "recall_by_transform": {
                    k: round(float(hits[kinds == k].mean()), 4) for k in TRANSFORMS
                },
            }
        )
    best = max(sweep, key=lambda row: (row["f1"], row["threshold"]))
    groups = duplicates.find_duplicates(index.embeddings, best["threshold"], normalized=True)
    group_of = {}
    for number, group in enumerate(groups):
        for row in group["rows"]:
            group_of[row] = number
    together = np.mean(
        [group_of.get(a, -1) == group_of.get(b, -2) for a, b in zip(first, second, strict=True)]
    )
    return {
        "sweep": sweep,
        "best": best,
        "groups_at_best": len(groups),
        "planted_pairs_grouped_at_best": round(float(together), 4),
        "groups_of_exactly_two_at_best": sum(group["size"] == 2 for group in groups),
        "planted_similarity_quantiles": [
            round(float(q), 4) for q in np.quantile(planted, [0, 0.1, 0.5, 0.9, 1])
        ],
    }


def part_duplicates(args, work: str, x_test: np.ndarray) -> dict:
    originals, copies, kinds = planted_copies(x_test, args.planted, seed=0)
    folder = os.path.join(work, "cifar10-test-with-copies")
    names = [f"orig-{i:05d}.png" for i in range(len(x_test))]
    write_images(folder, x_test, names, jpeg=False)
    copy_names = [f"copy-{i:05d}-{k}.png" for i, k in zip(originals, kinds, strict=True)]
    write_images(folder, copies, copy_names, jpeg=False)
    thresholds = [round(t, 3) for t in np.arange(0.80, 0.995, 0.01)] + [0.995, 0.998]
    encoders = {}
    if args.encoder:
        encoders["trained (" + os.path.basename(os.path.dirname(args.encoder)) + ")"] = args.encoder
    encoders["random weights"] = export_random(
        work, "small_cnn", 32, "mixed_bfloat16", representation_dim=1024
    )
    results = {}
    for label, path in encoders.items():
        out = os.path.join(work, f"dup-index-{len(results)}")
        start = time.perf_counter()
        manifest = quiet_embed(path, folder, out, batch_size=256)
        figures = duplicate_figures(out, originals, kinds, thresholds)
        figures["images"] = manifest["count"]
        figures["seconds"] = round(time.perf_counter() - start, 1)
        results[label] = figures
        best = figures["best"]
        print(
            json.dumps({"encoder": label, **best, "groups": figures["groups_at_best"]}), flush=True
        )
        table(
            f"Near-duplicates, {label}: {manifest['count']:,} images ({len(x_test):,} CIFAR-10 "
            f"test + {len(originals)} planted copies); similarity of planted pairs (min, 10 %, "
            f"median, 90 %, max): {figures['planted_similarity_quantiles']}",
            [
                "Threshold",
                "Recall",
                "Precision",
                "F1",
                "Pairs >= threshold",
                "flip",
                "crop",
                "jpeg",
                "colour",
            ],
            [
                [
                    r["threshold"],
                    r["recall"],
                    r["precision"],
                    r["f1"],
                    f"{r['pairs_at_or_above']:,}",
                    *(r["recall_by_transform"][k] for k in TRANSFORMS),
                ]
                for r in figures["sweep"]
                if r["threshold"] in (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998)
                or r is best
            ],
        )
        print(
            f"best F1 at threshold {best['threshold']}: {figures['groups_at_best']} groups, "
            f"{figures['planted_pairs_grouped_at_best']:.1%} of planted pairs in one group"
        )
    return {"planted": len(originals), "transforms": TRANSFORMS, "by_encoder": results}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="embed,search,duplicates")
    parser.add_argument("--encoder", default=None, help="trained cpu-preset export (RUN/encoder)")
    parser.add_argument("--data_dir", default=os.environ.get("SIMCLR_DATA_DIR"))
    parser.add_argument("--embed_images", type=int, default=4096)
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 100_000, 1_000_000],
    )
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--hnsw_max", type=int, default=100_000, help="largest N built as HNSW")
    parser.add_argument("--planted", type=int, default=500)
    parser.add_argument("--no_real", action="store_true", help="skip the CIFAR-10 embeddings")
    parser.add_argument("--json", default=None, help="write every figure here")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    print(
        f"machine: {machine()}; TensorFlow {tf.__version__}; load {load()}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    (x_train, _), (x_test, _) = load_cifar10(args.data_dir)
    report = {
        "machine": machine(),
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
        "command": " ".join(["benchmarks/embed_search.py", *(argv or sys.argv[1:])]),
        "tensorflow": tf.__version__,
    }
    work = tempfile.mkdtemp(prefix="embed-bench-")
    try:
        if "embed" in parts:
            report["embed"] = part_embed(args, work, x_test)
        if "search" in parts:
            real = None
            if args.encoder and not args.no_real:
                start = time.perf_counter()
                from simclr_tf.evaluate.features import extract_features

                real = extract_features(args.encoder, np.concatenate([x_test, x_train]))
                print(f"embedded 60,000 CIFAR-10 images in {time.perf_counter() - start:.0f} s")
            report["search"] = part_search(args, work, real)
        if "duplicates" in parts:
            report["duplicates"] = part_duplicates(args, work, x_test)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
