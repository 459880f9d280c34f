"""Stochastic depth with the dropped samples' branches skipped, against computing them and multiplying by zero.

paper15 trains with drop path rising linearly to 0.5 over its 19 transformer layers, so on average
about a quarter of its per-sample residual branches are dropped. hhlib's ``DropPath.residual``
runs each branch only on the kept samples (hhlib/layers.py). This script times one forward +
backward of paper15 at 224 px on a small batch with that path ("kept_rows") and with the textbook
form ``x + branch(x) * mask / keep`` ("all_rows", patched in here for the comparison only), the two
columns interleaved repeat by repeat after one untimed warm-up each, and writes
outputs/bench/drop_path.json (median and best images/s, their ratio, and the fraction of branch
rows the kept-rows column actually computed in its timed repeats).

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_drop_path.py [--repeats 3] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_train.py: idle threads sleep on a shared CPU

import torch  # noqa: E402

from hhlib import layers  # noqa: E402
from hhlib.model import build  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def all_rows_residual(self: layers.DropPath, x: torch.Tensor, branch) -> torch.Tensor:
    """The textbook stochastic depth: the branch on every sample, then the per-sample mask."""
    return x + self(branch(x))


class KeptFraction:
    """Counts the branch rows ``kept_rows`` lets through, to report the work actually skipped."""

    def __init__(self) -> None:
        self.draw = layers.kept_rows  # the real draw, taken before the patch replaces it
        self.kept, self.drawn = 0, 0

    def __call__(self, batch: int, keep: float, device: torch.device) -> torch.Tensor:
        rows = self.draw(batch, keep, device)
        self.kept, self.drawn = self.kept + len(rows), self.drawn + batch
        return rows



def step(model: torch.nn.Module, images: torch.Tensor) -> float:
    """One forward + backward; returns images/s."""
    start = time.perf_counter()
    model(images).pow(2).mean().backward()
    model.zero_grad(set_to_none=True)
    return len(images) / (time.perf_counter() - start)


def summarise(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "max": round(max(values), 4), "repeats": [round(v, 4) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per column")
    parser.add_argument("--batch", type=int, default=4, help="images per forward + backward")
    parser.add_argument("--img-size", type=int, default=224, help="input edge in pixels (the paper's 224)")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "drop_path.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build("paper15", bits=64, img_size=args.img_size).train()
    images = torch.randn(args.batch, 3, args.img_size, args.img_size)
    counter = KeptFraction()
    columns = {
        "kept_rows": lambda: mock.patch.object(layers, "kept_rows", counter),
        "all_rows": lambda: mock.patch.object(layers.DropPath, "residual", all_rows_residual),
    }
    samples = {name: [] for name in columns}
    for repeat in range(args.repeats + 1):  # repeat 0 is the untimed warm-up
        if repeat == 1:
            counter.kept, counter.drawn = 0, 0
        for name, patch in columns.items():
            with patch():
                speed = step(model, images)
            if repeat:
                samples[name].append(speed)
    timings = {name: summarise(values) for name, values in samples.items()}
    report = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine()},
        "network": {"preset": "paper15", "bits": 64, "img_size": args.img_size, "drop_path_rate": model.config.drop_path_rate},
        "batch_size": args.batch, "what": "forward + backward, images/s",
        "images_per_second": timings,
        "speedup": {key: round(timings["kept_rows"][key] / timings["all_rows"][key], 3) for key in ("median", "max")},
        "kept_branch_fraction": round(counter.kept / max(counter.drawn, 1), 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"speedup": report["speedup"], "kept_branch_fraction": report["kept_branch_fraction"]}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
