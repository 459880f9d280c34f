"""`hhlib.params check` builds every run before any work (issue 15, item 4): all problems at once."""

from __future__ import annotations

import re

import pytest
import torch

from hhlib import params
from hhlib.model import build

from test_params import _write_set, tree  # noqa: F401  (the fixture: tiny notebooks and an empty params/)

TRAIN_CELL = (
    'dataset = "fashion_mnist"  # a dataset\nsplit_seed = 0  # seed\nbits_list = [16]  # code lengths\n'
    'preset = "tiny32"  # preset\nimg_size = 32  # side (None: the preset\'s)\noptimizer = "adamw"  # optimizer\n'
    'schedule = "constant"  # schedule\nloss = "wml"  # loss\nloss_params = {}  # loss options\n'
    'model_overrides = {}  # model options\ntransform_params = {}  # augmentation\ndevice = "cpu"  # device\n'
    'pretrained = None  # weights\nquery_per_class = 1  # queries (None: the protocol\'s)\n'
    'train_per_class = 2  # train (None: the protocol\'s)'
)


@pytest.fixture
def train_tree(tree):  # noqa: F811
    from test_params import _notebook

    notebooks, params_dir = tree
    _notebook(notebooks, "02_train", TRAIN_CELL)
    return notebooks, params_dir


def _check(train_tree, fashion_dir, train_yaml: str, **stages: str) -> params.ParamsError:
    notebooks, params_dir = train_tree
    _write_set(params_dir, "s", {"01_prepare_data": f"data_dir: {fashion_dir}\n", "02_train": train_yaml, **stages})
    with pytest.raises(params.ParamsError) as info:
        params.check_dataset_ready("s", params_dir, notebooks)
    return info.value


def test_every_bad_run_setting_is_reported_at_once(train_tree, fashion_dir):
    error = _check(train_tree, fashion_dir, "\n".join([
        "optimizer: lion", "loss_params: {alpah: 0.5}", "model_overrides: {depth: 3}", "transform_params: {flipp: true}",
    ]) + "\n")
    text = "\n".join(error.problems)
    assert len(error.problems) == 4, text
    for says in ("optimizer='lion' is unknown", "does not take ['alpah']", "depth", "flipp"):
        assert says in text


@pytest.mark.parametrize("line, says", [
    ("optimizer: lion", r"TrainConfig.optimizer='lion' is unknown: valid names are \['adam', 'adamw'"),
    ("schedule: steps", "TrainConfig.schedule='steps' is unknown"),
    ("loss_params: {alpah: 0.5}", r"loss 'wml' does not take \['alpah'\]"),
    ("loss_params: {alpha: -1}", "alpha"),
    ("model_overrides: {depth: 3}", "model_overrides"),
    ("transform_params: {flipp: true}", "flipp"),
    ("img_size: 33", "33"),
    ("device: 'cuda:7'", "cuda"),
])
def test_each_run_setting_fails_in_the_check(train_tree, fashion_dir, line, says):
    error = _check(train_tree, fashion_dir, line + "\n")
    assert "02_train.yaml: run wml_16:" in error.problems[0]
    assert any(re.search(says, problem) for problem in error.problems), error.problems


def test_split_larger_than_a_class_and_run_problems_come_together(train_tree, fashion_dir):
    error = _check(train_tree, fashion_dir, "optimizer: lion\nquery_per_class: 50\n",
                   **{"01_prepare_data": f"data_dir: {fashion_dir}\nquery_per_class: 50\n"})
    assert len(error.problems) == 2
    assert "optimizer='lion'" in error.problems[0]
    assert error.problems[1].startswith("data: fashion_mnist in") and "50 asked" in error.problems[1]


def test_pretrained_file_that_would_not_load_fails_the_check(train_tree, fashion_dir, tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 7, 7)}, other)
    error = _check(train_tree, fashion_dir, f"pretrained: {other}\n")
    assert "resnet.pth did not load the backbone (loaded 0 tensors" in error.problems[0]
    good = tmp_path / "nest.pth"
    torch.save(build("tiny32", bits=16).state_dict(), good)
    notebooks, params_dir = train_tree
    (params_dir / "s" / "02_train.yaml").write_text(f"pretrained: {good}\n")
    assert params.check_dataset_ready("s", params_dir, notebooks)["02_train"]["pretrained"] == str(good)


def test_training_runs_match_the_notebooks(train_tree):
    runs = params.training_runs("02_train", {"bits_list": [16, 32], "lr": 0.1, "samples_per_class": 3})
    assert [run["bits"] for run in runs] == [16, 32] and runs[0]["lr"] == 0.1 and "samples_per_class" not in runs[0]
    ablations = params.training_runs("05_ablations", {"bits_list": [16], "losses": ["wml", "dpsh"], "lr": 0.1})
    assert [run["loss"] for run in ablations] == ["wml", "dpsh"] and all(run["lr"] == 0.1 for run in ablations)
    with pytest.raises(KeyError, match="trains nothing"):
        params.training_runs("03_evaluate", {})


def test_check_decode_flag_reaches_the_data_check(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(params, "check_dataset_ready", lambda name, decode=False: seen.update(name=name, decode=decode))
    assert params.main(["check", "--decode", "smoke"]) == 0
    assert seen == {"name": "smoke", "decode": True}
    assert "every training run builds" in capsys.readouterr().out


def test_parallel_runs_without_one_thread_count_fails_the_check():
    values = {"dataset": "fashion_mnist", "bits_list": [16, 64], "preset": "tiny32", "img_size": 32, "parallel_runs": 2}
    problems = params.check_training_runs("s", {"02_train": {**values, "num_threads": None}})
    assert problems == ["params/s/02_train.yaml: parallel_runs=2 needs one num_threads for every run, got [None]: "
                        "set num_threads (e.g. 1 with parallel_runs = the CPU cores), or parallel_runs: 1"]
    assert params.check_training_runs("s", {"02_train": {**values, "num_threads": 1}}) == []
