"""GPU check for a lent machine: training-step throughput and memory, one recipe epoch, encode throughput.

Writes one JSON file (default outputs/bench/gpu.json) with three sections, each timed on its own
so that one failure keeps the others:

- ``train_step``: paper15 at 224 px (the official training script's network), one optimiser step
  (forward, WML loss, backward, AdamW) per timing, in four settings: fp32; bf16 autocast;
  bf16 + channels_last; bf16 + channels_last + torch.compile (compile time reported apart). With
  ``HYBRIDHASH_OFFICIAL_DIR`` set (benchmarks/official.py), the official network + loss under the
  same bf16 autocast. Images/s and peak GPU memory per setting.
- ``recipe_epoch``: two epochs of the Fashion-MNIST recipe (params/fashion_mnist/02_train.yaml)
  through fit(), the split resized once and kept on the GPU (hhlib.batches), eager and compiled.
- ``encode``: encode() throughput over the database at several batch sizes.
- ``study_time``: how long the GPU set's study (params/fashion_mnist_full, notebooks 02 and 05) trains on
  this device: one short run of each kind of run timed, scaled to every run's sizes (hhlib.study_time).
- ``study_run``: one whole run of that study (notebook 02's at 64 bits, seed 0), timed: the check on the estimate.

The report is rewritten after each section, so a run stopped at its time limit keeps the finished ones;
``--sections`` runs some of them only (e.g. to redo one that failed).

Without CUDA it writes ``{"skipped": "..."}`` and exits 0, unless ``--dry-run``: then everything
runs on the CPU at toy sizes (tiny32 at 32 px, a few steps), which is what tests/test_gpu_check.py
exercises. Budget on one H200: under 8 minutes (torch.compile and the study's 27 kinds of run take most of it).

Usage: .venv/bin/python scripts/gpu_check.py [--dry-run] [--data-dir DIR] [--out outputs/bench/gpu.json]
           [--sections train_step,recipe_epoch,encode,study_time,study_run] [--study-runs FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from hhlib import artifacts, losses, study_time  # noqa: E402
from hhlib.model import build  # noqa: E402
from hhlib.train import TrainConfig, _load_splits, encode, fit  # noqa: E402

FULL = {"preset": "paper15", "img_size": 224, "batch": 64, "steps": 30, "warmup_steps": 3, "query_images": None, "recipe_images": 500,
        "encode": 20_000, "compile": True, "study": "fashion_mnist_full", "study_train_per_class": 200,
        "study_database": 16_000, "study_kinds": None, "study_run_bits": 64}
# CPU toy run: compiling takes minutes on a CPU, so the dry run leaves the compiled settings out
DRY_RUN = {"preset": "tiny32", "img_size": 32, "batch": 4, "steps": 2, "warmup_steps": 1, "query_images": 1, "recipe_images": 2,
           "encode": 40, "compile": False, "study": "smoke", "study_train_per_class": 10, "study_database": 100,
           "study_kinds": 2, "study_run_bits": 16}
RECIPE = {  # params/fashion_mnist/02_train.yaml
    "dataset": "fashion_mnist", "img_size": 32, "preset": "small32", "optimizer": "adamw", "lr": 0.002,
    "weight_decay": 0.05, "batch_size": 64, "schedule": "cosine", "warmup_epochs": 1.0,
    "transform_params": {"pad": 2, "flip": True}, "loss": "wml", "bits": 64, "progress": False,
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak allocated GPU memory since the last reset, MiB (None on CPU)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def time_steps(step: Callable[[], None], steps: int, batch: int, device: torch.device, warmup_steps: int = 1) -> dict:
    """Images/s over ``steps`` calls after ``warmup_steps`` untimed ones (the first one's time is first_step_s)."""
    reset_memory(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    first = time.perf_counter() - start
    for _ in range(warmup_steps - 1):  # cuDNN autotuning and autocast's first casts can outlast the first step
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_second": round(steps * batch / seconds, 2), "first_step_s": round(first, 2),
            "peak_memory_mib": peak_memory_mib(device)}


def make_step(network: torch.nn.Module, loss_call: Callable, images: torch.Tensor, dtype: torch.dtype | None,
              device: torch.device) -> Callable[[], None]:
    """One training step (forward under autocast, float loss, backward, AdamW) on a fixed batch."""
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4, weight_decay=0.05)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = network(images)
        value = loss_call(outputs.float())
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    return step


def train_step(sizes: dict, device: torch.device) -> dict:
    """paper15 (tiny32 in a dry run) train-step throughput and memory, per setting, plus the official code."""
    batch, bits = sizes["batch"], 64
    images = torch.randn(batch, 3, sizes["img_size"], sizes["img_size"], device=device)
    labels = torch.nn.functional.one_hot(torch.arange(batch, device=device) % 10, 10).float()
    rows = torch.arange(batch, device=device)
    bf16 = torch.bfloat16 if device.type == "cuda" else None  # CPU autocast brings no speed here
    settings = {"fp32": (None, False, False), "bf16": (bf16, False, False),
                "bf16_channels_last": (bf16, True, False), "bf16_channels_last_compile": (bf16, True, True)}
    results = {}
    for name, (dtype, channels_last, compiled) in settings.items():
        if compiled and not sizes["compile"]:
            results[name] = {"skipped": "torch.compile is left out of the CPU dry run (minutes to compile)"}
            continue
        torch.manual_seed(0)
        network = build(sizes["preset"], bits=bits, img_size=sizes["img_size"], token_layout="reference").to(device)
        batch_images = images.contiguous(memory_format=torch.channels_last) if channels_last else images
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        wml = losses.build("wml", bits, 10, batch).to(device)
        runner = torch.compile(network) if compiled else network
        step = make_step(runner, lambda outputs: wml(outputs, labels, rows), batch_images, dtype, device)
        results[name] = guarded(lambda: time_steps(step, sizes["steps"], batch, device, sizes["warmup_steps"]))
    results["official_bf16"] = guarded(lambda: official_step(sizes, images, labels, rows, bf16, device))
    return {"preset": sizes["preset"], "img_size": sizes["img_size"], "batch": batch, "steps": sizes["steps"],
            "warmup_steps": sizes["warmup_steps"], "settings": results}


def official_step(sizes: dict, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor,
                  dtype: torch.dtype | None, device: torch.device) -> dict:
    """The official network and loss, same batch and autocast; skipped without HYBRIDHASH_OFFICIAL_DIR."""
    import official  # noqa: PLC0415 (benchmarks/official.py)

    folder, skipped = official.official_dir()
    if folder is None:
        return {"skipped": skipped}
    config = build(sizes["preset"], bits=64, img_size=sizes["img_size"], token_layout="reference").config
    torch.manual_seed(0)
    network = official.build_network(folder, config).to(device)
    loss, settings = official.build_loss(folder, 64, 10, len(images))
    loss.U, loss.Y = loss.U.to(device), loss.Y.to(device)
    step = make_step(network, lambda outputs: loss(outputs, labels, rows, settings), images, dtype, device)
    return time_steps(step, sizes["steps"], len(images), device, sizes["warmup_steps"])


def recipe_epoch(sizes: dict, device: torch.device, data_dir: str | None, out_dir: str) -> dict:
    """Two epochs of the Fashion-MNIST recipe through fit(), data on the device, eager and compiled."""
    results = {}
    for compiled in (False, True) if sizes["compile"] else (False,):
        config = TrainConfig.from_dict({
            **RECIPE, "data_dir": data_dir, "device": str(device), "epochs": 2, "eval_every": 0,
            "train_per_class": sizes["recipe_images"], "query_per_class": sizes["query_images"], "database_limit": 20, "compile": compiled,
            "out_dir": out_dir, "run_name": f"recipe_compile_{compiled}".lower(),
        })
        reset_memory(device)
        fit(config, max_epochs=2)
        history = artifacts.read_jsonl(config.run_dir / artifacts.METRICS_LOG_FILE)
        results["compiled" if compiled else "eager"] = {
            "images_per_second_per_epoch": [round(r["images_per_second"], 1) for r in history],
            "peak_memory_mib": peak_memory_mib(device)}
    return {"images_per_epoch": sizes["recipe_images"] * 10, **results}


def encode_throughput(sizes: dict, device: torch.device, data_dir: str | None) -> dict:
    """encode() images/s over the first items of the Fashion-MNIST database, per batch size."""
    config = TrainConfig.from_dict({**RECIPE, "data_dir": data_dir, "query_per_class": sizes["query_images"],
                                    "train_per_class": sizes["recipe_images"], "database_limit": sizes["encode"]})
    splits = _load_splits(config)
    network = build("small32", bits=64).to(device)
    results = {}
    for batch_size in (256, 1024, 4096):
        encode(network, splits.database, device, batch_size, limit=batch_size)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        codes, _ = encode(network, splits.database, device, batch_size)
        synchronize(device)
        results[str(batch_size)] = round(len(codes) / (time.perf_counter() - start), 1)
    return {"images": len(splits.database), "preset": "small32", "images_per_second_by_batch": results}


def study_runs(sizes: dict, runs_file: str | None) -> list[dict]:
    """The GPU set's runs: from ``runs_file`` (``--study-runs``, for a machine without papermill), else listed here."""
    return json.loads(Path(runs_file).read_text()) if runs_file else study_time.study_runs(sizes["study"])


def study_seconds(sizes: dict, device: torch.device, data_dir: str | None, out_dir: str, runs_file: str | None) -> dict:
    """The GPU set's training time on this device, estimated from one timed run per kind (hhlib.study_time)."""
    runs = study_runs(sizes, runs_file)
    return study_time.measure_study_time(
        sizes["study"], out_dir, device=str(device), data_dir=data_dir, train_per_class=sizes["study_train_per_class"],
        database_limit=sizes["study_database"], max_kinds=sizes["study_kinds"], runs=runs,
        report=lambda line: print(line, flush=True))


def study_run(sizes: dict, device: torch.device, data_dir: str | None, out_dir: str, runs_file: str | None) -> dict:
    """One whole run of the GPU set (notebook 02's, seed 0, at ``study_run_bits``), timed: checks study_time's estimate."""
    runs = study_runs(sizes, runs_file)
    run = next(r for r in runs if r["stage"] == "02_train" and r["bits"] == sizes["study_run_bits"] and r["seed"] == 0)
    fields = {**study_time.run_fields(run, out_dir, "study_run"), "device": str(device)}
    if data_dir is not None:
        fields["data_dir"] = data_dir
    config = TrainConfig.from_dict(fields)
    start = time.perf_counter()
    result = fit(config)
    wall = time.perf_counter() - start
    history = artifacts.read_jsonl(config.run_dir / artifacts.METRICS_LOG_FILE)
    return {"run": fields, "wall_seconds": round(wall, 3), "train_seconds": round(result.train_seconds, 3),
            "eval_seconds": round(result.eval_seconds, 3), "map": result.final_map, "constant_bits": result.health.get("constant_bits"),
            "map_by_epoch": {str(r["epoch"]): round(r["map"], 4) for r in history if "map" in r}}


SECTIONS = ("train_step", "recipe_epoch", "encode", "study_time", "study_run")


def guarded(section: Callable[[], dict]) -> dict:
    """Run one measurement; a failure becomes {"error": ...} so the other sections still report."""
    try:
        return section()
    except Exception as error:  # noqa: BLE001 (a lent machine's run must write what it has)
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU (no GPU needed)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: the registry's)")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench" / "gpu.json"))
    parser.add_argument("--study-runs", default=None,
                        help="the study's runs as JSON (python -m hhlib.study_time SET FILE), where papermill is missing")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = [name for name in args.sections.split(",") if name]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}: choose from {', '.join(SECTIONS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available() and not args.dry_run:
        report = {"skipped": "no CUDA device: run this on a GPU machine, or pass --dry-run for the CPU toy run"}
        print(report["skipped"])
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = DRY_RUN if args.dry_run else FULL
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "dry_run": args.dry_run}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        measures = {"train_step": lambda: train_step(sizes, device),
                    "recipe_epoch": lambda: recipe_epoch(sizes, device, args.data_dir, out_dir),
                    "encode": lambda: encode_throughput(sizes, device, args.data_dir),
                    "study_time": lambda: study_seconds(sizes, device, args.data_dir, out_dir, args.study_runs),
                    "study_run": lambda: study_run(sizes, device, args.data_dir, out_dir, args.study_runs)}
        for name in sections:
            report[name] = guarded(measures[name])
            report["seconds"] = round(time.perf_counter() - start, 1)
            out.write_text(json.dumps(report, indent=2) + "\n")  # after each section: a stopped run keeps what it has
            print(f"{name} done at {report['seconds']} s", flush=True)
    print(f"wrote {out} in {report['seconds']} s")
    return report


if __name__ == "__main__":
    main()
