"""Tests for scripts/gpu_check.py: the CPU dry run writes every section, and no CUDA means a clear skip."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # the smoke study's split needs more images than the fixture files


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_writes_every_section(gpu_check, tmp_path):
    out = tmp_path / "gpu.json"
    report = gpu_check.main(["--dry-run", "--data-dir", FASHION_MNIST, "--out", str(out)])
    assert json.loads(out.read_text()) == report
    settings = report["train_step"]["settings"]
    for name in ("fp32", "bf16", "bf16_channels_last"):
        assert settings[name]["images_per_second"] > 0, settings[name]
    assert "skipped" in settings["bf16_channels_last_compile"]
    assert "error" not in settings["official_bf16"]
    eager = report["recipe_epoch"]["eager"]["images_per_second_per_epoch"]
    assert len(eager) == 2 and min(eager) > 0, report["recipe_epoch"]
    assert 0 < report["encode"]["images"] <= 40  # database_limit 40 (the fixture's database is smaller)
    assert min(report["encode"]["images_per_second_by_batch"].values()) > 0
    study = report["study_time"]  # the smoke set, its first 2 kinds timed (DRY_RUN["study_kinds"])
    assert len(study["kinds"]) == 2 and all(kind["seconds_per_train_image"] > 0 for kind in study["kinds"])
    assert study["estimate"]["untimed_runs"], "the kinds beyond the first 2 are counted apart"
    run = report["study_run"]  # a whole run of the smoke set's notebook 02
    assert run["run"]["bits"] == 16 and run["train_seconds"] > 0 and 0 <= run["map"] <= 1


def test_sections_run_alone_and_a_wrong_name_is_refused_before_any_work(gpu_check, tmp_path):
    out = tmp_path / "gpu.json"
    report = gpu_check.main(["--dry-run", "--data-dir", FASHION_MNIST, "--out", str(out), "--sections", "encode"])
    assert set(report) == {"device", "torch", "dry_run", "encode", "seconds"}
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--out", str(out), "--sections", "encode,speed"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_without_cuda_it_skips_clearly(gpu_check, tmp_path):
    out = tmp_path / "gpu.json"
    report = gpu_check.main(["--out", str(out)])
    assert report == {"skipped": "no CUDA device: run this on a GPU machine, or pass --dry-run for the CPU toy run"}
    assert json.loads(out.read_text()) == report
