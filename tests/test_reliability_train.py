"""Training faults (issue 15, items 2, 5 and 10): weights that did not load, changed data, collapsed codes."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hhlib import artifacts
from hhlib.health import code_health
from hhlib.losses import WeightedMaximumLikelihoodLoss
from hhlib.model import build
from hhlib.pretrained import PretrainedError, backbone_problem, plan_nest_weights
from hhlib.train import ConfigError, TrainConfig, fit

pytestmark = pytest.mark.usefixtures("seed_single_thread")


def tiny(tmp_path, data_dir, **overrides):
    """A config that trains in about a second on the 60-image Fashion-MNIST fixture."""
    values = dict(
        dataset="fashion_mnist", data_dir=str(data_dir), preset="tiny32", bits=16, img_size=32,
        query_per_class=1, train_per_class=3, batch_size=10, epochs=2, eval_every=0,
        optimizer="adamw", lr=1e-3, model_overrides={"drop_path_rate": 0.0}, out_dir=str(tmp_path / "out"),
        progress=False, device="cpu", eval_batch_size=64,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


def _nest_like_file(path: Path) -> Path:
    """Another tiny32's weights: every NesT-named tensor fits (the hash layer's are dropped as NesT has none)."""
    torch.save(build("tiny32", bits=16).state_dict(), path)
    return path


def test_pretrained_file_that_is_not_nest_stops_the_run(tmp_path, fashion_dir):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 7, 7), "fc.weight": torch.zeros(10, 4)}, other)
    with pytest.raises(PretrainedError, match=r"resnet.pth did not load the backbone \(loaded 0 tensors.*set pretrained: null"):
        fit(tiny(tmp_path, fashion_dir, pretrained=str(other)))
    assert not list((tmp_path / "out").rglob("result.json"))


def test_pretrained_load_report_is_in_result_json(tmp_path, fashion_dir):
    weights = _nest_like_file(tmp_path / "nest.pth")
    result = fit(tiny(tmp_path, fashion_dir, pretrained=str(weights), epochs=1))
    saved = artifacts.read_json(Path(result.run_dir) / "result.json")["pretrained_report"]
    assert saved["source"] == str(weights) and saved["loaded"] > 0 and saved["summary"].startswith("loaded ")
    assert result.summary()["pretrained"] == saved["summary"]


def test_backbone_problem_names_what_did_not_load():
    model = build("tiny32", bits=16)
    partial = {k: v for k, v in model.state_dict().items() if k.startswith("patch_embed")}
    problem = backbone_problem(plan_nest_weights(model, partial), "w.pth")
    assert problem and "levels.0.pos_embed" in problem and "w.pth" in problem
    everything = {k: v for k, v in model.state_dict().items()}
    assert backbone_problem(plan_nest_weights(model, everything), "w.pth") is None


def test_resume_on_other_data_is_refused(tmp_path, fashion_dir, write_idx):
    config = tiny(tmp_path, fashion_dir)
    fit(config, max_epochs=1)
    labels_file = fashion_dir / "train-labels-idx1-ubyte.gz"
    with gzip.open(labels_file) as f:
        labels = np.roll(np.frombuffer(f.read()[8:], np.uint8), 1)  # same files, other labels
    write_idx(labels_file, labels)
    with pytest.raises(ConfigError, match=r"cannot resume from .*trained on other data \(split fingerprint"):
        fit(config)
    assert artifacts.load_checkpoint(config.run_dir / "checkpoint.pt")["epoch"] == 1


def test_run_folder_hash_ignores_fields_that_do_not_change_results(tmp_path, fashion_dir):
    base = tiny(tmp_path, fashion_dir)
    same = tiny(tmp_path, fashion_dir, progress=True, num_workers=1, eval_batch_size=7, out_dir="elsewhere")
    assert same.config_hash == base.config_hash
    assert tiny(tmp_path, fashion_dir, lr=2e-3).config_hash != base.config_hash
    assert tiny(tmp_path, fashion_dir, loss_params={"alpha": 0.2}).config_hash != base.config_hash
    assert re.fullmatch(r"wml_16-[0-9a-f]{8}", base.run_dir.name)


def test_run_folder_hash_follows_the_loss_defaults(tmp_path, fashion_dir, monkeypatch):
    # a loss default changed in the code is a new run, not a read-back of the run made with the old value
    base_hash = tiny(tmp_path, fashion_dir).config_hash  # the property reads the defaults when called
    assert tiny(tmp_path, fashion_dir, loss_params={"alpha": 0.5}).config_hash == base_hash  # the default, spelled out
    init = WeightedMaximumLikelihoodLoss.__init__
    assert init.__defaults__[0] == 0.5  # alpha comes first among the defaulted parameters
    monkeypatch.setattr(init, "__defaults__", (0.25, *init.__defaults__[1:]))
    assert tiny(tmp_path, fashion_dir).config_hash != base_hash


def test_code_health_by_hand():
    codes = np.array([[1, -1, 1, 1], [1, -1, -1, 1], [1, -1, 1, 1]])
    assert code_health(codes) == {"constant_bits": 3, "distinct_codes": 2, "collapsed": True}  # 3 of 4 bits stuck
    codes[1, 0] = -1
    assert code_health(codes) == {"constant_bits": 2, "distinct_codes": 2, "collapsed": False}
    assert code_health(np.ones((5, 8)))["collapsed"]
    with pytest.raises(ValueError, match="non-empty"):
        code_health(np.zeros((0, 8)))


def test_a_collapsed_run_is_flagged(tmp_path, fashion_dir, monkeypatch):
    from hhlib import train

    def constant_codes(model, data, device, batch_size, num_workers=0):  # what NaN outputs or a dead hash layer give
        labels = np.stack([data[i][1].numpy() for i in range(len(data))])
        return np.ones((len(data), 16), np.int8), labels

    monkeypatch.setattr(train, "encode", constant_codes)
    with pytest.warns(RuntimeWarning, match="codes collapsed"):
        result = fit(tiny(tmp_path, fashion_dir, epochs=1))
    assert result.health == {"constant_bits": 16, "distinct_codes": 1, "collapsed": True}
    assert artifacts.read_json(Path(result.run_dir) / "result.json")["health"]["collapsed"] is True
    assert result.summary()["collapsed"] is True


def test_a_run_whose_loss_turns_nan_stops(tmp_path, fashion_dir, monkeypatch):
    from hhlib.losses import LOSSES

    monkeypatch.setattr(LOSSES["wml"], "forward", lambda self, outputs, labels, indices: outputs.sum() * float("nan"))
    with pytest.raises(FloatingPointError, match=r"training loss is nan at epoch 1: lower lr .* or set grad_clip"):
        fit(tiny(tmp_path, fashion_dir, epochs=1))
    assert not list((tmp_path / "out").rglob("result.json"))
