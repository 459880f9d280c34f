"""Evaluation at database scale: time and memory of exact mAP@k and top-k search over 1M and 10M items.

For each database size (1,000,000 and 10,000,000 items) and code length (16, 32, 64, 128 bits):
``hhlib.metrics.mean_average_precision`` at k = 1,000 and ``hhlib.index.HammingIndex`` exact
("flat") top-100 search, over a few queries (the cost per query is the same for every query: one
pass over the packed database), with

- seconds per query (best of the repeats),
- peak memory the call allocated (tracemalloc; numpy and numba arrays are traced) and the
  process's peak RSS,
- the packed database's own size, for comparison.

Codes are uniform random bits (packed directly, so a 10M x 128-bit database costs 160 MB, not a
10M x 128 float matrix); queries are database items with 10% of their bits flipped, labels are
one of 10 classes. Exactness is not re-checked here: tests/test_metrics.py and tests/test_index.py
compare the same functions with the argsort oracle on small sizes.

Usage: .venv/bin/python benchmarks/bench_eval_scale.py [--quick] [--out outputs/bench/eval_scale.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hhlib.index import HammingIndex  # noqa: E402
from hhlib.metrics import mean_average_precision  # noqa: E402

SIZES = {1_000_000: 16, 10_000_000: 4}  # database items -> queries timed (kept few at 10M)
BITS = (16, 32, 64, 128)
TOPK = 1000
SEARCH_K = 100
N_CLASSES = 10


def synthetic(n_database: int, n_query: int, bits: int, seed: int) -> dict:
    """Packed random database codes, one-hot labels, and queries near database items."""
    rng = np.random.default_rng(seed)
    database = rng.integers(0, 256, size=(n_database, bits // 8), dtype=np.uint8)
    classes = rng.integers(0, N_CLASSES, n_database)
    labels = np.zeros((n_database, N_CLASSES), dtype=bool)
    labels[np.arange(n_database), classes] = True
    picks = rng.choice(n_database, n_query, replace=False)
    flips = np.packbits(rng.random((n_query, bits)) < 0.1, axis=1)
    return {"database": database, "labels": labels, "queries": database[picks] ^ flips,
            "query_labels": labels[picks]}


def measure(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` calls and the peak traced allocation of one call (MiB)."""
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best, peak


def one_case(n_database: int, n_query: int, bits: int, repeats: int) -> dict:
    data = synthetic(n_database, n_query, bits, seed=bits)
    map_seconds, map_peak = measure(lambda: mean_average_precision(
        data["queries"], data["database"], data["query_labels"], data["labels"], TOPK, bits=bits), repeats)
    index = HammingIndex(data["database"], bits=bits)
    search_seconds, search_peak = measure(lambda: index.search(data["queries"], SEARCH_K), repeats)
    return {"items": n_database, "bits": bits, "queries": n_query,
            "database_mib": round(data["database"].nbytes / 2**20, 1),
            "map_at_k": {"k": TOPK, "seconds_per_query": round(map_seconds / n_query, 4),
                         "peak_allocated_mib": round(map_peak, 1)},
            "top_k_search": {"k": SEARCH_K, "seconds_per_query": round(search_seconds / n_query, 4),
                             "peak_allocated_mib": round(search_peak, 1)},
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100x smaller databases (a smoke run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "eval_scale.json"))
    args = parser.parse_args()
    divisor = 100 if args.quick else 1
    cases = []
    for n_database, n_query in SIZES.items():
        for bits in BITS:
            case = one_case(n_database // divisor, n_query, bits, args.repeats)
            print(json.dumps(case))
            cases.append(case)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "cases": cases}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
