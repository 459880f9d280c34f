"""Short Fashion-MNIST runs that check each backbone learns, with its parameters and FLOPs (issues 11 and 14).

One small protocol for every backbone, so that the rows compare: 500 training images (50 per
class), 200 queries (20 per class), a 1,000-image database, 64 bits, the paper's loss (wml),
AdamW 2e-3 cosine, batch 64, pad-2 crop + flip, seed 0, one CPU thread. This is a learning check
sized to a few CPU minutes per row (ResNet-18 at 32 px costs 1.1 GFLOPs per image), not a
converged comparison: the backbone study in notebook 05 runs the converged budget.

Usage (one row per call; rows accumulate in the JSON file):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/short_backbone_runs.py resnet18 [--weights imagenet] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hhlib.complexity import model_complexity
from hhlib.model import BACKBONES
from hhlib.train import TrainConfig, _build_network, fit

OUT = Path(__file__).resolve().parents[1] / "outputs" / "bench" / "short_backbone_runs.json"


def _config(backbone: str, weights: str | None, epochs: int, run_dir: str) -> TrainConfig:
    overrides = {"backbone": backbone, "drop_path_rate": 0.0}
    if weights is not None:
        overrides["backbone_weights"] = weights
    return TrainConfig(
        dataset="fashion_mnist", img_size=32, query_per_class=20, train_per_class=50, database_limit=1000,
        transform_params={"pad": 2, "flip": True}, preset="small32", bits=64, model_overrides=overrides,
        loss="wml", optimizer="adamw", lr=2e-3, weight_decay=0.05, epochs=epochs, schedule="cosine",
        warmup_epochs=0.0, eval_every=0, seed=0, device="cpu", progress=False, resume=False,
        out_dir=run_dir, run_name=f"{backbone}_{weights or 'scratch'}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", choices=sorted(BACKBONES))
    parser.add_argument("--weights", default=None, help="backbone_weights (efficientnet_lite0: imagenet)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run-dir", default="/tmp/hhlib_short_runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = _config(args.backbone, args.weights, args.epochs, args.run_dir)
    complexity = model_complexity(_build_network(config))
    start = time.time()
    result = fit(config)
    row = {
        "backbone": args.backbone, "backbone_weights": args.weights, "epochs": args.epochs,
        "map": round(result.final_map, 4), "parameters": complexity.parameters, "flops": complexity.flops,
        "train_seconds": round(result.train_seconds, 1), "wall_seconds": round(time.time() - start, 1),
        "protocol": "fashion_mnist 500 train / 200 query / 1000 database, 64 bits, wml, AdamW 2e-3 cosine, seed 0, 1 thread",
    }
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    rows = [r for r in rows if (r["backbone"], r["backbone_weights"], r["epochs"]) != (args.backbone, args.weights, args.epochs)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows + [row], indent=1) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
