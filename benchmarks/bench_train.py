"""Training throughput of hhlib against the official HybridHash code, side by side in one run (issue 12).

Measured, with every pair interleaved repeat by repeat so that load from other processes hits both:

1. ``recipe_network``: the Fashion-MNIST recipe's network as the official code can build it
   (small32 dims, 8 interaction heads, reference token layout), 2,000 Fashion-MNIST training
   images, batch 64, AdamW. hhlib runs ``fit()`` itself, one epoch per call (data, augmentation,
   model, loss, optimiser, checkpoint, as the study runs them); the official network and loss run
   in a plain loop over the same images, already transformed, in memory. Both at one thread and at
   ``--cores`` threads: the ratios at equal thread counts, and as each is run (hhlib's recipe: one
   thread per run; the official script: torch's default, every core). At one thread, each network
   also runs alone (forward, a mean-square loss, backward, fused AdamW, nothing else): hhlib's
   network alone over the official loop is the ceiling of what fit() can reach without changing
   the network's arithmetic (``ceiling_1``).
2. ``paper15_224``: the official training script's network (paper15, reference layout) at 224 px,
   one optimiser step per repeat (forward, WML loss, backward, AdamW) on a small batch.
3. ``study``: per-epoch throughput of the recipe's own runs (small32 as the preset builds it, on
   2,000 of its 5,000 images: the cost per image does not depend on the count). Before: one run
   at a time on all cores through the path fit() had (a DataLoader over the split, per-tensor
   AdamW). Now: today's fit(), one run per core side by side (hhlib.parallel.fit_many), images/s
   summed over the runs. Their ratio estimates the wall-time gain of ``make reproduce``, whose
   runs are independent (the 41-minute study cannot run inside a benchmark).

Both networks get the same weights (the official state dict loaded into hhlib), and their outputs
are compared: ``max_abs_output_difference``. The official code is imported from the folder named by
``HYBRIDHASH_OFFICIAL_DIR`` (see benchmarks/official.py); without it those columns are ``null``
with the reason in ``official_skipped``.

Usage: HYBRIDHASH_OFFICIAL_DIR=/path/to/HybridHash .venv/bin/python benchmarks/bench_train.py
           [--quick] [--repeats N] [--threads N] [--sections NAME ...] [--out outputs/bench/train.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

# idle OpenMP threads sleep instead of spinning, as under the Makefile (on a shared 2-core CPU a
# spinning 2-thread run was 5-10x slower, docs/training.md); must be set before torch starts OpenMP
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import official  # noqa: E402

from hhlib import artifacts, batches, losses  # noqa: E402
from hhlib.model import build, load_checkpoint  # noqa: E402
from hhlib.train import TrainConfig, _load_splits, fit  # noqa: E402

SECTIONS = ("recipe_network", "paper15_224", "study")  # the numbered sections of the docstring, in order
OFFICIAL_SHAPE = {"interaction_heads": 8, "token_layout": "reference"}  # what the official code can build
RECIPE = {  # params/fashion_mnist/02_train.yaml, the study's training recipe
    "dataset": "fashion_mnist", "img_size": 32, "preset": "small32", "optimizer": "adamw", "lr": 0.002,
    "weight_decay": 0.05, "batch_size": 64, "schedule": "cosine", "warmup_epochs": 1.0,
    "transform_params": {"pad": 2, "flip": True}, "loss": "wml", "bits": 64, "progress": False,
}


def summarise(images_per_second: list[float]) -> dict:
    """Median and best of the repeats (best = least disturbed by other processes)."""
    return {"median": round(statistics.median(images_per_second), 3), "max": round(max(images_per_second), 3),
            "repeats": [round(v, 3) for v in images_per_second]}


def ratio(ours: dict, theirs: dict | None) -> dict | None:
    """Throughput ratios ours / theirs, of the medians and of the best repeats."""
    if theirs is None:
        return None
    return {"median": round(ours["median"] / theirs["median"], 3), "max": round(ours["max"] / theirs["max"], 3)}


class FitEpochs:
    """One fit() epoch per call, resuming the same run; returns the epoch's images/s from its metrics log."""

    def __init__(self, out_dir: str, name: str, epochs: int, in_memory: bool = True, **overrides) -> None:
        values = {**RECIPE, "out_dir": out_dir, "run_name": name, "epochs": epochs, "eval_every": 0, **overrides}
        self.config = TrainConfig.from_dict(values)
        self.in_memory = in_memory

    def __call__(self) -> float:
        if self.in_memory:
            fit(self.config, max_epochs=1)
        else:  # the path fit() took before hhlib.batches: a DataLoader over the split
            with mock.patch.object(batches, "supports_in_memory", lambda dataset: False):
                fit(self.config, max_epochs=1)
        return artifacts.read_jsonl(self.config.run_dir / artifacts.METRICS_LOG_FILE)[-1]["images_per_second"]


class OfficialEpochs:
    """The official network and loss in a plain in-memory loop over already transformed images."""

    def __init__(self, folder: Path, network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 batch_size: int, lr: float, weight_decay: float) -> None:
        self.network = network
        self.loss, self.settings = official.build_loss(folder, network.hashlayer_train.conv2.out_channels,
                                                       labels.shape[1], len(images))
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def __call__(self) -> float:
        self.network.train()
        order = torch.randperm(len(self.images))
        start = time.perf_counter()
        for first in range(0, len(order), self.batch_size):
            rows = order[first : first + self.batch_size]
            value = self.loss(self.network(self.images[rows]), self.labels[rows], rows, self.settings)
            self.optimizer.zero_grad()
            value.backward()
            self.optimizer.step()
        return len(order) / (time.perf_counter() - start)


class NetworkSteps:
    """A network alone in a plain in-memory loop: forward, a free loss, backward, fused AdamW.

    The loss is the mean square of the outputs (no hashing loss, no augmentation, no bookkeeping),
    so this is the most any change outside the network's own arithmetic could give ``fit()``.
    """

    def __init__(self, network: torch.nn.Module, images: torch.Tensor, batch_size: int, lr: float,
                 weight_decay: float) -> None:
        self.network, self.images, self.batch_size = network, images, batch_size
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay, fused=True)

    def __call__(self) -> float:
        self.network.train()
        order = torch.randperm(len(self.images))
        start = time.perf_counter()
        for first in range(0, len(order), self.batch_size):
            value = self.network(self.images[order[first : first + self.batch_size]]).square().mean()
            self.optimizer.zero_grad()
            value.backward()
            self.optimizer.step()
        return len(order) / (time.perf_counter() - start)


def interleave(columns: dict[str, Callable[[], float] | None], repeats: int) -> dict[str, dict | None]:
    """Run every column once per repeat, in turn, after one untimed warm-up call each."""
    live = {name: run for name, run in columns.items() if run is not None}
    for run in live.values():
        run()
    samples = {name: [] for name in live}
    for _ in range(repeats):
        for name, run in live.items():
            samples[name].append(run())
    return {name: summarise(samples[name]) if name in samples else None for name in columns}


def output_difference(ours: torch.nn.Module, theirs: torch.nn.Module, images: torch.Tensor) -> float:
    """Largest |hhlib - official| output on ``images`` once hhlib holds the official weights."""
    load_checkpoint(ours, theirs.state_dict())
    ours.eval(), theirs.eval()
    with torch.no_grad():
        return float((ours(images) - theirs(images)).abs().max())


class WithThreads:
    """Run ``column`` with torch's intra-op thread count set to ``threads``, restoring it afterwards."""

    def __init__(self, column: Callable[[], float], threads: int) -> None:
        self.column, self.threads = column, threads

    def __call__(self) -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self.column()
        finally:
            torch.set_num_threads(previous)


def recipe_network(folder: Path | None, repeats: int, train_per_class: int, out_dir: str, cores: int) -> dict:
    """Section 1: fit() on the official-shaped recipe network vs the official plain loop, at 1 thread and at ``cores``.

    Ratios: at equal thread counts (the same arithmetic on the same threads), and as each is run on the
    study machine: hhlib at the recipe's one thread per run (params num_threads: 1, two runs at once),
    the official script at torch's default, every core for one run.
    """
    shape = {"train_per_class": train_per_class, "model_overrides": OFFICIAL_SHAPE, "database_limit": 100}
    hhlib_epochs = FitEpochs(out_dir, "recipe_network", 2 * repeats + 3, **shape)
    splits = _load_splits(hhlib_epochs.config)
    result = {"images": len(splits.train), "batch_size": RECIPE["batch_size"], "optimizer": "adamw",
              "network": {"preset": "small32", **OFFICIAL_SHAPE}, "cores": cores}
    official_epochs, official_alone, difference = None, None, None
    loader = torch.utils.data.DataLoader(splits.train_eval, batch_size=len(splits.train))
    images, labels, _ = next(iter(loader))
    step_settings = (images, RECIPE["batch_size"], RECIPE["lr"], RECIPE["weight_decay"])
    hhlib_alone = NetworkSteps(build("small32", bits=64, **OFFICIAL_SHAPE), *step_settings)
    if folder is not None:
        network = official.build_network(folder, hhlib_alone.network.config)
        difference = output_difference(build("small32", bits=64, **OFFICIAL_SHAPE), network, images[:8])
        official_epochs = OfficialEpochs(folder, network, images, labels, RECIPE["batch_size"],
                                         RECIPE["lr"], RECIPE["weight_decay"])
        official_alone = NetworkSteps(official.build_network(folder, hhlib_alone.network.config), *step_settings)
    columns = {"hhlib_fit_1_thread": WithThreads(hhlib_epochs, 1),
               "official_loop_1_thread": official_epochs and WithThreads(official_epochs, 1),
               "hhlib_network_alone_1_thread": WithThreads(hhlib_alone, 1),
               "official_network_alone_1_thread": official_alone and WithThreads(official_alone, 1),
               f"hhlib_fit_{cores}_threads": WithThreads(hhlib_epochs, cores),
               f"official_loop_{cores}_threads": official_epochs and WithThreads(official_epochs, cores)}
    timings = interleave(columns, repeats)
    result.update(images_per_second=timings, max_abs_output_difference=difference, speedup={
        "same_threads_1": ratio(timings["hhlib_fit_1_thread"], timings["official_loop_1_thread"]),
        f"same_threads_{cores}": ratio(timings[f"hhlib_fit_{cores}_threads"], timings[f"official_loop_{cores}_threads"]),
        "as_run": ratio(timings["hhlib_fit_1_thread"], timings[f"official_loop_{cores}_threads"]),
        "ceiling_1": ratio(timings["hhlib_network_alone_1_thread"], timings["official_loop_1_thread"]),
        "networks_alone_1": ratio(timings["hhlib_network_alone_1_thread"], timings["official_network_alone_1_thread"]),
        "fit_share_of_ceiling_1": ratio(timings["hhlib_fit_1_thread"], timings["hhlib_network_alone_1_thread"]),
    }, ceiling_note=("ceiling_1: hhlib's network alone (forward, mean-square loss, backward, fused AdamW; no hashing "
                     "loss, augmentation or bookkeeping) over the official loop, both at 1 thread: the most fit() "
                     "could reach without changing the network's arithmetic; networks_alone_1: the two networks "
                     "in that same loop"), as_run_note=(f"hhlib at the recipe's 1 thread per run (params/fashion_mnist: num_threads 1, parallel_runs 2) "
                    f"against the official script at torch's default thread count ({cores} on this machine)"))
    return result


def paper15_step(folder: Path | None, repeats: int, batch_size: int) -> dict:
    """Section 2: one training step of paper15 at 224 px, hhlib vs official (same weights)."""
    torch.manual_seed(0)
    ours = build("paper15", bits=64, token_layout="reference")
    images = torch.randn(batch_size, 3, 224, 224)
    labels = torch.nn.functional.one_hot(torch.arange(batch_size) % 10, 10).float()
    rows = torch.arange(batch_size)
    loss = losses.build("wml", 64, 10, batch_size)
    optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-4, weight_decay=0.05)

    def hhlib_step() -> float:  # the step of fit(): forward, float outputs, loss, zero_grad, backward, step
        ours.train()
        start = time.perf_counter()
        value = loss(ours(images).float(), labels, rows)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        return batch_size / (time.perf_counter() - start)

    official_step, difference = None, None
    if folder is not None:
        network = official.build_network(folder, ours.config)
        difference = output_difference(ours, network, images[:2])
        official_step = OfficialEpochs(folder, network, images, labels, batch_size, 1e-4, 0.05)  # one batch: one step
    timings = interleave({"hhlib_step": hhlib_step, "official_step": official_step}, repeats)
    return {"batch_size": batch_size, "img_size": 224, "network": {"preset": "paper15", "token_layout": "reference"},
            "images_per_second": timings, "max_abs_output_difference": difference,
            "speedup": ratio(timings["hhlib_step"], timings["official_step"])}


def legacy_optimizer(config: TrainConfig, params: list) -> torch.optim.Optimizer:
    """AdamW as fit() built it before: one update per tensor (no fused kernel)."""
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=False)


class StudyBefore:
    """One recipe run through the path fit() had before: DataLoader, per-tensor AdamW (``study`` runs it on every core)."""

    def __init__(self, out_dir: str, train_per_class: int) -> None:
        self.out_dir, self.train_per_class, self.calls = out_dir, train_per_class, 0

    def __call__(self) -> float:
        self.calls += 1
        run = FitEpochs(self.out_dir, f"before_{self.calls}", 2, in_memory=False,
                        train_per_class=self.train_per_class, database_limit=100)
        with mock.patch("hhlib.train._build_optimizer", legacy_optimizer):
            run()  # epoch 1: warm-up
            return run()


class StudyNow:
    """Two recipe runs side by side, one process and one thread each (hhlib.parallel.fit_many)."""

    def __init__(self, out_dir: str, train_per_class: int, runs: int) -> None:
        self.out_dir, self.train_per_class, self.runs, self.calls = out_dir, train_per_class, runs, 0

    def __call__(self) -> float:
        from hhlib.parallel import fit_many

        self.calls += 1
        configs = [FitEpochs(self.out_dir, f"now_{self.calls}_{seed}", 2, train_per_class=self.train_per_class,
                             database_limit=100, seed=seed, eval_every=2).config for seed in range(self.runs)]
        results = fit_many(configs, processes=self.runs, threads_per_run=1)
        return sum(result.history[-1]["images_per_second"] for result in results)  # epoch 2, all runs at once


def study(repeats: int, train_per_class: int, out_dir: str, cores: int) -> dict:
    """Section 3: the recipe's own runs, as make reproduce ran them vs one process per core with today's fit()."""
    timings = interleave({
        "now_one_process_per_core": StudyNow(out_dir, train_per_class, cores),
        "before_one_run_at_a_time": WithThreads(StudyBefore(out_dir, train_per_class), cores),  # as make reproduce ran it
    }, repeats)
    return {"images_per_epoch": train_per_class * 10, "cores": cores,
            "images_per_second": timings,
            "speedup": ratio(timings["now_one_process_per_core"], timings["before_one_run_at_a_time"]),
            "note": "images/s summed over the runs training at the same time, measured in each run's second epoch"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per column")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--cores", type=int, default=2, help="cores of the study machine (the issue's: 2)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="which sections to run (default: all); e.g. --sections paper15_224")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "train.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder, skipped = official.official_dir()
    if folder is None:
        print(f"official columns skipped: {skipped}")
    repeats = 1 if args.quick else args.repeats
    report = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine()},
              "official_dir": str(folder) if folder else None, "official_skipped": skipped or None}
    with tempfile.TemporaryDirectory() as out_dir:
        if "recipe_network" in args.sections:
            report["recipe_network"] = recipe_network(folder, repeats, 20 if args.quick else 200, out_dir, args.cores)
            print(json.dumps(report["recipe_network"]["speedup"]), "recipe network, hhlib fit / official loop")
        if "paper15_224" in args.sections:
            report["paper15_224"] = paper15_step(folder, repeats, 1 if args.quick else 2)
            print(json.dumps(report["paper15_224"]["speedup"]), "paper15 at 224 px, hhlib / official step")
        if "study" in args.sections:
            report["study"] = study(max(repeats - 1, 1), 20 if args.quick else 200, out_dir, args.cores)
            print(json.dumps(report["study"]["speedup"]), "study runs, now (one process per core) / before")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
