"""Benchmark of the list-file (JPEG) data path against the 224-px training step (issue 17, item 4).

NUS-WIDE, MS-COCO and ImageNet-100 are read from list files of JPEGs: every training image is
decoded, resized (shorter side 256), randomly cropped to 224 and normalised on the CPU, and every
database image is decoded for encoding. This measures, on this machine's CPU cores:

- seconds per image of JPEG decoding alone, of the train transform, of the eval transform;
- DataLoader throughput (images/s) with 0, 1, 2 ... worker processes (batch 64, train transform);
- seconds per image of one paper15 training step at 224 px on the CPU (batch 2, forward, backward,
  RMSprop step), the accelerator-free stand-in for the step the loader has to keep fed;
- peak memory while encoding a list dataset (images stream batch by batch, only codes are kept).

From these it derives the worker count that keeps decoding off the critical path at a given
training throughput: ``workers >= images_per_second * seconds_per_image_per_worker``.

Synthetic JPEGs: smooth random colour fields plus noise at typical Flickr "medium" sizes
(500 x 375 and the like, the source of NUS-WIDE's images), quality 90 (ours).

Usage: .venv/bin/python benchmarks/bench_data.py [--images 192] [--workers 0 1 2] [--out outputs/bench/data.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hhlib.data import SplitDataset  # noqa: E402
from hhlib.datasets import read_list_splits  # noqa: E402
from hhlib.model import build  # noqa: E402
from hhlib.train import encode  # noqa: E402
from hhlib.transforms import build_transform  # noqa: E402

FLICKR_SIZES = ((500, 375), (375, 500), (500, 333), (640, 480), (500, 500))  # ours: common Flickr "medium" shapes
JPEG_QUALITY = 90  # ours
N_CLASSES = 21  # NUS-WIDE-21
GPU_IMAGES_PER_SECOND = (100, 300, 1000)  # ours: training throughputs to size the worker pool for (not measured here)


def write_jpegs(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` synthetic JPEGs + train.txt/test.txt/database.txt (all the same n entries) under ``folder``."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        width, height = FLICKR_SIZES[i % len(FLICKR_SIZES)]
        coarse = rng.integers(0, 256, size=(height // 25 + 1, width // 25 + 1, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), dtype=np.float32)
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        relative = f"images/{i:05d}.jpg"
        (folder / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / relative, "JPEG", quality=JPEG_QUALITY)
        labels = np.zeros(N_CLASSES, dtype=int)
        labels[i % N_CLASSES] = 1
        lines.append(relative + " " + " ".join(map(str, labels)))
    for name in ("train.txt", "test.txt", "database.txt"):
        (folder / name).write_text("\n".join(lines) + "\n")


def per_image_seconds(function, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        function(i)
    return (time.perf_counter() - start) / n


def loader_throughput(dataset: SplitDataset, workers: int, batch_size: int = 64) -> float:
    """Images per second through a DataLoader (one pass, worker start-up included)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    seen = sum(len(images) for images, _, _ in loader)
    return seen / (time.perf_counter() - start)


def train_step_seconds(batch: int = 2, steps: int = 2) -> float:
    """Seconds per image of a paper15 training step at 224 px on the CPU (after one warm-up step)."""
    torch.manual_seed(0)
    model = build("paper15", bits=64).train()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=2.5e-5, weight_decay=1e-5)  # the paper's (Sec. 4.1)
    images = torch.randn(batch, 3, 224, 224)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(images).pow(2).mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.mean(times[1:])) / batch


def encode_memory(dataset: SplitDataset) -> dict:
    """Peak RSS growth while encoding ``dataset`` at 224 px, against holding its decoded images."""
    model = build("tiny32", bits=64, img_size=224).eval()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    codes, _ = encode(model, dataset, "cpu", batch_size=32)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "images": len(dataset), "codes_shape": list(codes.shape), "seconds": round(seconds, 2),
        "peak_rss_growth_mib": round(after - before, 1),
        "decoded_images_would_take_mib": round(len(dataset) * 3 * 224 * 224 * 4 / 2**20, 1),
        "nuswide_database_decoded_would_take_gib": round(193_734 * 3 * 224 * 224 * 4 / 2**30, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "data.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_jpegs(folder, args.images)
        lists = read_list_splits(folder, n_classes=N_CLASSES)
        source = lists["train.txt"]
        indices = np.arange(len(source))
        train = SplitDataset(source, indices, build_transform("resize_crop", True, 224))
        evaluation = SplitDataset(source, indices, build_transform("resize_crop", False, 224))
        n = min(args.images, 96)
        record = {
            "images": args.images, "jpeg_sizes": FLICKR_SIZES, "jpeg_quality": JPEG_QUALITY,
            "decode_seconds_per_image": per_image_seconds(source.load, n),
            "train_transform_seconds_per_image": per_image_seconds(lambda i: train[i], n),
            "eval_transform_seconds_per_image": per_image_seconds(lambda i: evaluation[i], n),
            "loader_images_per_second": {str(w): round(loader_throughput(train, w), 1) for w in args.workers},
        }
        record["encode_memory"] = encode_memory(evaluation)
    step = train_step_seconds()
    per_image = record["train_transform_seconds_per_image"]
    record["paper15_cpu_train_step_seconds_per_image"] = step
    record["cpu_step_over_decode"] = round(step / per_image, 1)
    record["workers_needed_at_images_per_second"] = {str(r): int(np.ceil(r * per_image)) for r in GPU_IMAGES_PER_SECOND}
    record["machine"] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "python": platform.python_version(), "torch": torch.__version__}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
