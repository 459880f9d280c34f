"""Benchmark of hhlib's evaluation layer against the per-query argsort algorithm (issue 6).

Measures, in one run and on 2 CPU cores (the process is pinned to the first two cores and every
thread pool is capped at 2):
- NUS-WIDE protocol: 2,100 queries x 190,000 database items, 64 bits, 21 classes multi-label, mAP@5000;
- CIFAR-10 protocol: 1,000 queries x 54,000 items, 64 bits, 10 classes single-label, mAP@all;
hhlib.metrics.mean_average_precision (packing included) versus the common DeepHash-pytorch style
loop (per query: Hamming distance by a dot product of +-1 codes, np.argsort, AP over the top k).
The baseline uses a stable argsort, so that it follows hhlib's tie rule and the results can be
compared for equality; it runs on a subset of the queries and its time is extrapolated linearly
to all of them (its cost is the same for every query). The same loop with numpy's default
(unstable, quicksort) argsort, i.e. the reference's exact algorithm, is timed too.
Also timed: tie-aware mAP, the full evaluate() report, HammingIndex exact search vs faiss
IndexBinaryFlat, and the faiss multi-index-hashing / HNSW modes.

Synthetic codes are correlated with the labels (sign of the sum of per-class prototypes plus
noise), so relevant items rank high and Hamming ties are frequent, as with trained codes.

Usage: .venv/bin/python benchmarks/bench_eval.py [--quick] [--out outputs/bench/eval.json]
"""

from __future__ import annotations

import os

CORES = 2  # the target machine: 2 CPU cores
HNSW_ITEMS = 50_000  # database items indexed for the HNSW timing
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = str(CORES)
if hasattr(os, "sched_setaffinity"):
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:CORES])

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hhlib import metrics  # noqa: E402
from hhlib.evaluate import evaluate  # noqa: E402
from hhlib.hamming import pack_codes  # noqa: E402
from hhlib.index import HammingIndex  # noqa: E402


def synthetic_problem(
    n_query: int, n_database: int, bits: int, n_classes: int, multi_label: bool, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """+-1 float32 codes correlated with multi-hot labels (queries first, then database)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((n_classes, bits)).astype(np.float32)
    total = n_query + n_database
    labels = np.zeros((total, n_classes), dtype=np.float32)
    if multi_label:  # 1-3 concepts per image, skewed frequencies as in NUS-WIDE
        frequency = 1.0 / np.arange(1, n_classes + 1) ** 0.7
        frequency /= frequency.sum()
        for row, count in enumerate(rng.integers(1, 4, total)):
            labels[row, rng.choice(n_classes, count, replace=False, p=frequency)] = 1.0
    else:
        labels[np.arange(total), rng.integers(0, n_classes, total)] = 1.0
    signal = labels @ prototypes / np.sqrt(labels.sum(axis=1, keepdims=True))
    codes = np.where(signal + noise * rng.standard_normal((total, bits)).astype(np.float32) > 0, 1.0, -1.0)
    codes = codes.astype(np.float32)
    return codes[:n_query], codes[n_query:], labels[:n_query], labels[n_query:]


def baseline_average_precisions(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    topk: int,
    kind: str | None,
) -> np.ndarray:
    """The DeepHash-pytorch CalcTopMap loop: per query, dot-product Hamming, argsort, AP@topk."""
    bits = query_codes.shape[1]
    average_precisions = np.zeros(query_codes.shape[0])
    for i in range(query_codes.shape[0]):
        relevant = (query_labels[i] @ database_labels.T > 0).astype(np.float32)
        hamming = 0.5 * (bits - query_codes[i] @ database_codes.T)
        order = np.argsort(hamming, kind=kind)
        top = relevant[order][:topk]
        n_relevant = int(top.sum())
        if n_relevant == 0:
            continue
        count = np.linspace(1, n_relevant, n_relevant)
        ranks = np.flatnonzero(top == 1) + 1.0
        average_precisions[i] = np.mean(count / ranks)
    return average_precisions


def timed(function, repeats: int = 1):
    """(best seconds over repeats, all seconds, last result)."""
    seconds = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return min(seconds), seconds, result


def run_protocol(name: str, sizes: dict, baseline_queries: int, repeats: int, index_k: int) -> dict:
    """Benchmark one protocol; returns the JSON record."""
    query, database, query_labels, database_labels = synthetic_problem(**sizes["problem"])
    topk = sizes["topk"]
    n_query, n_database = query.shape[0], database.shape[0]
    cut = n_database if topk is None else min(topk, n_database)
    print(f"[{name}] {n_query} queries x {n_database} items, {query.shape[1]} bits, mAP@{cut}", flush=True)

    arguments = (query, database, query_labels, database_labels)
    metrics.mean_average_precision(*(a[:2] for a in arguments), topk)  # load the compiled kernels (numba cache)
    fast_seconds, fast_runs, fast_map = timed(lambda: metrics.mean_average_precision(*arguments, topk), repeats)
    tie_seconds, _, tie_map = timed(lambda: metrics.tie_aware_map(*arguments, topk), repeats)
    report_seconds, _, report = timed(lambda: evaluate(*arguments, topk), 1)

    subset = slice(0, min(baseline_queries, n_query))
    sub_arguments = (query[subset], database, query_labels[subset], database_labels)
    base_seconds, _, base_aps = timed(lambda: baseline_average_precisions(*sub_arguments, cut, "stable"))
    quick_seconds, _, quick_aps = timed(lambda: baseline_average_precisions(*sub_arguments, cut, None))
    inputs = metrics.prepare_inputs(*sub_arguments)
    fast_aps = metrics.compute_ranking_summary(inputs, topk, exact=True, tie_aware=False).average_precision
    scale = n_query / (subset.stop - subset.start)
    base_total, quick_total = base_seconds * scale, quick_seconds * scale
    max_difference = float(np.max(np.abs(fast_aps - base_aps)))
    print(
        f"  hhlib mAP {fast_map:.6f} in {fast_seconds:.3f}s (runs {np.round(fast_runs, 3).tolist()}); "
        f"tie-aware {tie_map:.6f} in {tie_seconds:.3f}s; evaluate() {report_seconds:.3f}s",
        flush=True,
    )
    print(
        f"  baseline stable argsort {base_total:.1f}s (extrapolated from {subset.stop} queries) -> "
        f"{base_total / fast_seconds:.1f}x; unstable argsort {quick_total:.1f}s -> {quick_total / fast_seconds:.1f}x; "
        f"max |AP difference| {max_difference:.2e}",
        flush=True,
    )

    build_seconds, _, index = timed(lambda: HammingIndex(database, database_labels))
    exact_seconds, _, (exact_distances, _) = timed(lambda: index.search(query, index_k), repeats)
    packed_query = pack_codes(query)
    faiss_build, _, flat = timed(lambda: index.faiss_index)
    faiss_seconds, _, (faiss_distances, _) = timed(lambda: flat.search(packed_query, index_k), repeats)
    index_record = {
        "k": index_k,
        "hhlib_exact_build_seconds": build_seconds,
        "hhlib_exact_search_seconds": exact_seconds,
        "faiss_flat_build_seconds": faiss_build,
        "faiss_flat_search_seconds": faiss_seconds,
        "same_distances_as_faiss_flat": bool(np.array_equal(exact_distances, faiss_distances)),
    }
    # HNSW builds slowly (minutes for 190k binary codes on 2 cores): timed on at most 50,000 items
    hnsw_items = min(n_database, HNSW_ITEMS)
    hnsw_exact = index.search(query, index_k)[0] if hnsw_items == n_database else (
        HammingIndex(database[:hnsw_items]).search(query, index_k)[0]
    )
    for mode, items, reference in (("multihash", n_database, exact_distances), ("hnsw", hnsw_items, hnsw_exact)):
        approximate = HammingIndex(database[:items], mode=mode)
        build, _, _ = timed(lambda: approximate.faiss_index)
        search, _, (distances, _) = timed(lambda: approximate.search(query, index_k))
        index_record[f"faiss_{mode}_database_items"] = items
        index_record[f"faiss_{mode}_build_seconds"] = build
        index_record[f"faiss_{mode}_search_seconds"] = search
        # share of queries whose k-th result is as close as the exact k-th result
        index_record[f"faiss_{mode}_exact_kth_distance_share"] = float(np.mean(distances[:, -1] <= reference[:, -1]))
    print(
        f"  index top-{index_k}: hhlib exact {exact_seconds:.3f}s, faiss flat {faiss_seconds:.3f}s, "
        f"multihash {index_record['faiss_multihash_search_seconds']:.3f}s "
        f"(build {index_record['faiss_multihash_build_seconds']:.2f}s), hnsw "
        f"{index_record['faiss_hnsw_search_seconds']:.3f}s (build {index_record['faiss_hnsw_build_seconds']:.2f}s, "
        f"{hnsw_items} items)",
        flush=True,
    )
    return {
        "sizes": {
            "n_query": n_query,
            "n_database": n_database,
            "bits": int(query.shape[1]),
            "n_classes": int(query_labels.shape[1]),
            "multi_label": sizes["problem"]["multi_label"],
            "topk": cut,
        },
        "map": fast_map,
        "map_tie_aware": tie_map,
        "hhlib_seconds": fast_seconds,
        "hhlib_seconds_runs": fast_runs,
        "tie_aware_seconds": tie_seconds,
        "evaluate_report_seconds": report_seconds,
        "baseline_stable_seconds": base_total,
        "baseline_unstable_seconds": quick_total,
        "baseline_queries_timed": subset.stop,
        "baseline_extrapolated": subset.stop < n_query,
        "speedup_vs_stable": base_total / fast_seconds,
        "speedup_vs_unstable": quick_total / fast_seconds,
        "equal": max_difference <= 1e-12,
        "max_abs_ap_difference": max_difference,
        "precision_within_radius_2": report["precision_within_radius"],
        "index_search": index_record,
    }


def machine_info() -> dict:
    """Where the numbers come from (shared machines: the load average is recorded too)."""
    import faiss
    import numba

    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cores_used": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else CORES,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.threading_layer(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "faiss": faiss.__version__,
        "platform": platform.platform(),
        "load_average_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller problems: a smoke test")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "eval.json"))
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    protocols = {
        "nuswide_21": {
            "problem": dict(n_query=2100 // scale, n_database=190000 // scale, bits=64, n_classes=21,
                            multi_label=True, noise=1.2, seed=0),
            "topk": 5000 // scale,
        },
        "cifar10": {
            "problem": dict(n_query=1000 // scale, n_database=54000 // scale, bits=64, n_classes=10,
                            multi_label=False, noise=1.6, seed=1),
            "topk": None,
        },
    }
    record = {"machine": machine_info(), "quick": args.quick, "protocols": {}}
    start = time.perf_counter()
    for name, sizes in protocols.items():
        record["protocols"][name] = run_protocol(
            name, sizes, baseline_queries=max(20, 200 // scale), repeats=3, index_k=100
        )
    record["machine"]["load_average_end"] = os.getloadavg()
    record["total_seconds"] = time.perf_counter() - start
    record["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the >= 20x target is set for the full sizes; quick mode only checks that everything runs and agrees
    record["targets_met"] = None if args.quick else all(
        p["equal"] and p["speedup_vs_stable"] >= 20 and p["speedup_vs_unstable"] >= 20
        for p in record["protocols"].values()
    )
    record["results_equal"] = all(p["equal"] for p in record["protocols"].values())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"wrote {out} (results equal: {record['results_equal']}, targets met: {record['targets_met']}, "
        f"{record['total_seconds']:.0f}s total)"
    )
    if not record["results_equal"]:
        raise SystemExit("hhlib and the argsort baseline disagree: see max_abs_ap_difference in the JSON")


if __name__ == "__main__":
    main()
