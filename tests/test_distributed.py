"""Data-parallel training (hhlib.train under torchrun) matches a single process with the same global batch.

Two CPU processes with the gloo backend train a tiny model for 5 steps (global batch 8 = 2 x 4);
the loss sees the all-gathered global batch, so after DDP's gradient averaging each step equals
the single-process step on the same 8 images. Drop path and augmentation are off (their random
draws differ per rank by design). SGD keeps the comparison linear in the gradients: the parameters
agree to float32 summation-order noise (max abs difference < 1e-6, while the steps move them > 1e-3).
"""

import os
import runpy
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from hhlib import artifacts
from hhlib.model import build
from hhlib.runtime import seed_everything
from hhlib.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def tiny_values(out_dir):
    return dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
        query_per_class=2, train_per_class=4, database_limit=50, batch_size=8, epochs=1, eval_every=0,
        optimizer="sgd", lr=2.0, momentum=0.9, model_overrides={"drop_path_rate": 0.0},
        out_dir=str(out_dir), progress=False, device="cpu", resume=False,
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, values):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        result = fit(TrainConfig.from_dict(values))
        assert (result is None) == (rank != 0)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    torch.set_num_threads(1)
    single = fit(TrainConfig.from_dict(tiny_values(tmp_path / "single")))
    mp.spawn(_worker, args=(2, _free_port(), tiny_values(tmp_path / "ddp")), nprocs=2, join=True)
    ddp_dir = TrainConfig.from_dict(tiny_values(tmp_path / "ddp")).run_dir
    a = artifacts.load_checkpoint(single.checkpoint_path)
    b = artifacts.load_checkpoint(ddp_dir / "checkpoint.pt")
    assert b["sampler"]["world_size"] == 2 and len(b["rng"]) == 2
    # seed 0 rebuilds the initial network: the 5 steps moved the parameters far more than the two runs differ
    seed_everything(0)
    initial = build("tiny32", bits=16, img_size=32, drop_path_rate=0.0).state_dict()
    moved = max((a["model"][key] - initial[key]).abs().max().item() for key in initial)
    differ = max((a["model"][key] - b["model"][key]).abs().max().item() for key in initial)
    print(f"largest parameter change {moved:.3g}, largest single-vs-DDP difference {differ:.3g}")
    assert moved > 1e-3 and differ < 1e-6
    assert abs(a["history"][0]["loss"] - b["history"][0]["loss"]) < 1e-6
    # the WML memory bank saw every training image, identically
    assert bool(b["loss"]["memory_written"].all())
    torch.testing.assert_close(b["loss"]["memory_codes"], a["loss"]["memory_codes"], rtol=0, atol=1e-6)
    assert artifacts.load_codes(ddp_dir / "codes.npz")["query_codes"].shape == (20, 16)


def test_cli_reads_yaml_and_overrides(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_values(tmp_path)))
    monkeypatch.setattr(sys, "argv", ["train.py", str(path), "bits=32", "run_name=cli"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "train.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert '"bits": 32' in capsys.readouterr().out
    assert len(list((tmp_path / "fashion_mnist" / "checkpoints").glob("cli-*/result.json"))) == 1  # <run_name>-<config hash>
    monkeypatch.setattr(sys, "argv", ["train.py", str(path), "learning_rate=1"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "train.py"), run_name="__main__")
    assert exit_info.value.code == 2 and "unknown TrainConfig key" in capsys.readouterr().err
