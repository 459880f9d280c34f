"""The study's wall time: the old default's training runs, one at a time vs two at once (issue 12, item 3).

Before notebooks 02 and 05 trained through ``hhlib.parallel.fit_runs``, ``make reproduce`` trained
its runs one after another in the notebook's kernel, each on every core (``num_threads`` None). It now
trains ``parallel_runs`` runs at once, each in its own process on ``num_threads`` threads. This times
the same runs both ways, side by side in one call:

- the old default notebook 02's runs: HybridHash small32 (patch 4) with the paper's loss at 16, 32,
  48 and 64 bits, one seed, the CPU recipe, evaluated on the whole 64,000-image database;
- ``--epochs`` per run (the old default trained 48; 8 keeps the benchmark to a few minutes, and the
  ratio does not depend on it beyond the evaluations' share);
- "one at a time": ``fit_runs(configs, 1)`` with ``num_threads`` = the CPU cores;
- "parallel": ``fit_runs(configs, cores)`` with ``num_threads`` 1.

Every run trains from scratch in a fresh temporary folder (no finished run is read back).
Writes outputs/bench/study.json. Target (issue 12): the parallel path at least 1.5x faster.

Usage: .venv/bin/python benchmarks/bench_study.py [--epochs 8] [--out outputs/bench/study.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hhlib.parallel import fit_runs  # noqa: E402
from hhlib.runtime import environment  # noqa: E402
from hhlib.train import TrainConfig  # noqa: E402

OLD_DEFAULT_BITS = (16, 32, 48, 64)  # the old default notebook 02's code lengths (one seed)
OLD_RECIPE = dict(  # params/fashion_mnist/02_train.yaml before the study issue: small32, patch 4
    dataset="fashion_mnist", img_size=32, split_seed=0, preset="small32", transform_params={"pad": 2, "flip": True},
    loss="wml", optimizer="adamw", lr=0.002, weight_decay=0.05, batch_size=64, schedule="cosine", warmup_epochs=1.0,
    eval_batch_size=512, progress=False, device="cpu", seed=0,
)


def old_default_configs(out_dir: Path, epochs: int, threads: int) -> list[TrainConfig]:
    """The old default's notebook-02 runs, ``epochs`` long, each on ``threads`` torch threads."""
    return [TrainConfig(**OLD_RECIPE, bits=bits, epochs=epochs, eval_every=0, num_threads=threads,
                        out_dir=str(out_dir), run_name=f"study_bench_{bits}") for bits in OLD_DEFAULT_BITS]


def timed(configs: list[TrainConfig], parallel_runs: int) -> float:
    """Seconds to train and evaluate every config through ``fit_runs``."""
    start = time.perf_counter()
    fit_runs(configs, parallel_runs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (the old default: 48)")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "study.json"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        one_at_a_time = timed(old_default_configs(Path(folder) / "one_at_a_time", args.epochs, cores), 1)
        parallel = timed(old_default_configs(Path(folder) / "parallel", args.epochs, 1), cores)
    report = {
        "what": "the old default notebook 02's runs (small32 patch 4, 16/32/48/64 bits, one seed, whole-database "
                "evaluation): one at a time on every core vs one process per core",
        "epochs_per_run": args.epochs,
        "cores": cores,
        "one_at_a_time_seconds": round(one_at_a_time, 1),
        "parallel_seconds": round(parallel, 1),
        "speedup": round(one_at_a_time / parallel, 2),
        "target_speedup": 1.5,
        "command": "benchmarks/bench_study.py --epochs " + str(args.epochs),
        "environment": environment("cpu"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("one_at_a_time_seconds", "parallel_seconds", "speedup")}))


if __name__ == "__main__":
    main()
