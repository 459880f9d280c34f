"""Short Fashion-MNIST runs that check each backbone learns, with its parameters and FLOPs (issues 11 and 14).

One small protocol for every backbone, so that the rows compare: 500 training images (50 per
class; --train-per-class 500 for the protocol's 5,000), 200 queries (20 per class), a 1,000-image
database, 64 bits, the paper's loss (wml, or --loss),
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


def _config(args: argparse.Namespace) -> TrainConfig:
    overrides = {"backbone": args.backbone, "drop_path_rate": 0.0}
    if args.weights is not None:
        overrides["backbone_weights"] = args.weights
    if args.patch_size is not None:
        overrides["patch_size"] = args.patch_size
    return TrainConfig(
        dataset="fashion_mnist", img_size=32, query_per_class=20, train_per_class=args.train_per_class, database_limit=1000,
        transform_params={"pad": 2, "flip": True}, preset="small32", bits=64, model_overrides=overrides,
        loss=args.loss, optimizer="adamw", lr=2e-3, weight_decay=0.05, epochs=args.epochs, schedule="cosine",
        warmup_epochs=0.0, eval_every=0, seed=0, device="cpu", progress=False, resume=False,
        out_dir=args.run_dir, run_name=f"{args.backbone}_{args.weights or 'scratch'}_{args.loss}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", choices=sorted(BACKBONES))
    parser.add_argument("--weights", default=None, help="backbone_weights (efficientnet_lite0: imagenet)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loss", default="wml", help="a hhlib.losses.LOSSES name")
    parser.add_argument("--patch-size", type=int, default=None, help="patch_size override (None: the preset's 4)")
    parser.add_argument("--train-per-class", type=int, default=50, help="training images per class (the protocol's: 500)")
    parser.add_argument("--run-dir", default="/tmp/hhlib_short_runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = _config(args)
    complexity = model_complexity(_build_network(config))
    start = time.time()
    result = fit(config)
    row = {
        "backbone": args.backbone, "backbone_weights": args.weights, "epochs": args.epochs, "loss": args.loss,
        "patch_size": args.patch_size, "train_images": 10 * args.train_per_class,
        "map": round(result.final_map, 4), "parameters": complexity.parameters, "flops": complexity.flops,
        "train_seconds": round(result.train_seconds, 1), "wall_seconds": round(time.time() - start, 1),
        "protocol": "fashion_mnist, 200 query / 1000 database, 64 bits, AdamW 2e-3 cosine, pad-2 crop + flip, seed 0, 1 thread",
    }
    key = ("backbone", "backbone_weights", "epochs", "loss", "patch_size", "train_images")
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    rows = [r for r in rows if tuple(r.get(k) for k in key) != tuple(row[k] for k in key)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows + [row], indent=1) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
