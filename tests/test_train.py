"""Tests of hhlib.train: config validation, the LR schedule, every loss through fit(), determinism, resume, encode."""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hhlib import artifacts
from hhlib.losses import LOSSES
from hhlib.train import ConfigError, TrainConfig, encode, fit, learning_rate

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models are slower with several threads on a shared CPU (OpenMP barriers dominate)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(tmp_path, **overrides):
    """A config that trains in well under a second: 40 train images, 20 queries, 50 database images."""
    values = dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
        query_per_class=2, train_per_class=4, database_limit=50, batch_size=8, epochs=1, eval_every=1,
        optimizer="adamw", lr=1e-3, model_overrides={"drop_path_rate": 0.0}, out_dir=str(tmp_path),
        progress=False, device="cpu", eval_batch_size=64,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


# ---- configuration ----

def test_defaults_are_the_papers_protocol():
    config = TrainConfig()
    assert (config.optimizer, config.lr, config.weight_decay, config.batch_size) == ("rmsprop", 2.5e-5, 1e-5, 64)
    assert (config.eval_every, config.bits, config.amp, config.schedule, config.loss) == (3, 64, True, "constant", "wml")
    assert 12 <= config.epochs <= 15


def test_from_dict_round_trip_and_int_to_float():
    config = TrainConfig.from_dict({"lr": 1, "bits": 32, "model_overrides": {"depths": [1, 1, 1]}})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.run_dir.parts[-3:] == ("fashion_mnist", "checkpoints", f"wml_32-{config.config_hash}")


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown TrainConfig key\(s\) \['learning_rate'\]: valid keys are .*'lr'"):
        TrainConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize("key, value, expected", [
    ("batch_size", "64", "int"), ("batch_size", True, "int"), ("lr", "1e-3", "float"), ("amp", 1, "bool"),
    ("img_size", 3.5, "int or None"), ("loss_params", [1], "dict"), ("pretrained", 3, "str or None"),
])
def test_ill_typed_value_names_field_type_and_value(key, value, expected):
    with pytest.raises(ConfigError, match=re.escape(f"TrainConfig.{key} must be {expected}, got {value!r}")):
        TrainConfig.from_dict({key: value})


@pytest.mark.parametrize("key, value, match", [
    ("batch_size", 0, "must be > 0"), ("lr", -1.0, "must be > 0"), ("weight_decay", -1e-5, ">= 0"),
    ("database_limit", 0, "> 0 or None"), ("loss", "nope", "valid names are .*'wml'"),
    ("optimizer", "lamb", "valid names are .*'rmsprop'"), ("schedule", "step", "valid names are .*'cosine'"),
    ("preset", "huge", "valid names are .*'small32'"), ("dataset", "mnist", "valid names are .*'fashion_mnist'"),
    ("min_lr_ratio", 2.0, r"\[0, 1\]"), ("run_name", "a/b", "plain folder name"),
])
def test_out_of_range_values(key, value, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict({key: value})


def test_fit_rejects_non_config():
    with pytest.raises(ConfigError, match="TrainConfig.from_dict"):
        fit({"epochs": 1})


def test_learning_rate_schedules():
    constant = TrainConfig(lr=0.1, warmup_epochs=1.0)
    assert [learning_rate(constant, s, 40, 4) for s in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    cosine = TrainConfig(lr=0.1, schedule="cosine", min_lr_ratio=0.1)
    lrs = [learning_rate(cosine, s, 5, 5) for s in range(5)]
    expected = [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(5)]
    assert lrs == pytest.approx(expected) and lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)


# ---- training ----

@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_trains_one_epoch(tmp_path, name):
    result = fit(tiny(tmp_path, loss=name))
    assert 0.0 <= result.final_map <= 1.0 and result.topk == 50 and result.bits == 16
    assert result.best_map >= result.final_map and result.best_epoch == 1
    [record] = artifacts.read_jsonl(result.metrics_path)
    assert record["epoch"] == 1 and math.isfinite(record["loss"]) and record["map"] == result.final_map
    assert set(record) >= {"epoch", "loss", "lr", "images_per_second", "seconds", "map", "map_tie_aware"}
    codes = artifacts.load_codes(result.codes_path)
    assert codes["query_codes"].shape == (20, 16) and codes["database_codes"].shape == (50, 16)
    assert set(np.unique(codes["database_codes"])) <= {-1, 1}
    assert artifacts.read_json(Path(result.run_dir) / "result.json")["final_map"] == result.final_map
    assert Path(result.run_dir).name.startswith(f"{name}_16-")


def test_summary_row_for_metrics_json(tmp_path):
    result = fit(tiny(tmp_path))
    row = result.summary(method="hybridhash")
    assert row["method"] == "hybridhash" and row["map"] == result.final_map
    assert row["map_best_over_evals"] == result.best_map and row["topk"] == 50 and row["bits"] == 16
    report = artifacts.update_metrics(tmp_path / "metrics.json", dataset="fashion_mnist", runs=[row])
    assert report["runs"][0]["map_tie_aware"] == result.map_tie_aware


def test_same_config_gives_same_codes(tmp_path):
    first = fit(tiny(tmp_path / "a", model_overrides={"drop_path_rate": 0.1}, transform_params={"pad": 2, "flip": True}))
    second = fit(tiny(tmp_path / "b", model_overrides={"drop_path_rate": 0.1}, transform_params={"pad": 2, "flip": True}))
    a, b = artifacts.load_codes(first.codes_path), artifacts.load_codes(second.codes_path)
    np.testing.assert_array_equal(a["database_codes"], b["database_codes"])
    np.testing.assert_array_equal(a["query_codes"], b["query_codes"])
    assert first.final_map == second.final_map


def _state(result):
    return artifacts.load_checkpoint(result.checkpoint_path if hasattr(result, "checkpoint_path") else result)


def test_resume_gives_the_uninterrupted_result(tmp_path):
    overrides = dict(epochs=2, eval_every=0, model_overrides={"drop_path_rate": 0.1}, transform_params={"pad": 2, "flip": True},
                     schedule="cosine", warmup_epochs=0.5)
    straight = fit(tiny(tmp_path / "straight", **overrides))
    config = tiny(tmp_path / "resumed", **overrides)
    assert fit(config, max_epochs=1) is None
    assert len(artifacts.read_jsonl(config.run_dir / "metrics.jsonl")) == 1
    resumed = fit(config)
    a, b = _state(straight), _state(resumed)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["loss"]:
        assert torch.equal(a["loss"][key], b["loss"][key]), key
    np.testing.assert_array_equal(artifacts.load_codes(straight.codes_path)["database_codes"],
                                  artifacts.load_codes(resumed.codes_path)["database_codes"])
    assert resumed.final_map == straight.final_map
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert len(artifacts.read_jsonl(resumed.metrics_path)) == 2
    # a finished run is returned from disk, not trained again
    again = fit(config)
    assert again.final_map == resumed.final_map and again.train_seconds == resumed.train_seconds


def test_changed_parameters_train_a_new_run_and_a_foreign_checkpoint_is_refused(tmp_path):
    first = tiny(tmp_path, epochs=2)
    fit(first, max_epochs=1)
    changed = fit(tiny(tmp_path, epochs=2, lr=2e-3))  # its own folder: trains from scratch, no refusal
    assert Path(changed.run_dir) != first.run_dir and len(changed.history) == 2
    assert artifacts.load_checkpoint(first.run_dir / "checkpoint.pt")["epoch"] == 1  # the first run is untouched
    moved = tiny(tmp_path, epochs=2, lr=3e-3)
    moved.run_dir.mkdir(parents=True)
    shutil.copy(first.run_dir / "checkpoint.pt", moved.run_dir / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"different config \(lr: 0.001 -> 0.003\).*resume=False"):
        fit(moved)
    restarted = fit(tiny(tmp_path, epochs=2, lr=3e-3, resume=False, progress=False))
    assert restarted.epochs == 2 and len(restarted.history) == 2


def test_a_run_folder_moved_to_another_out_dir_resumes_and_reports_where_it_lives(tmp_path):
    # where a run lives is not what it computes (LOCATION_FIELDS): two studies may share a run by copying its folder
    stopped, finished = tiny(tmp_path / "a", epochs=2), tiny(tmp_path / "a", epochs=1)
    fit(stopped, max_epochs=1)
    done = fit(finished)
    for config in (stopped, finished):
        shutil.copytree(config.run_dir, tiny(tmp_path / "b", epochs=config.epochs).run_dir)
    resumed = fit(tiny(tmp_path / "b", epochs=2))
    assert resumed.epochs == 2 and len(resumed.history) == 2 and resumed.run_dir.startswith(str(tmp_path / "b"))
    straight = fit(tiny(tmp_path / "c", epochs=2))
    assert resumed.final_map == straight.final_map, "the moved run continues the same training"
    returned = fit(tiny(tmp_path / "b", epochs=1))
    assert returned.final_map == done.final_map and returned.train_seconds == done.train_seconds, "not trained again"
    for path in (returned.run_dir, returned.codes_path, returned.metrics_path, returned.checkpoint_path):
        assert path.startswith(str(tmp_path / "b")) and Path(path).exists(), path
    assert returned.config["out_dir"] == str(tmp_path / "b")


def test_a_loss_default_written_out_resumes_the_same_run(tmp_path):
    # the search records a loss's default weight explicitly: {} and {"alpha": 0.5} are one run (config_hash and resume)
    implicit = tiny(tmp_path, epochs=2)
    fit(implicit, max_epochs=1)
    explicit = tiny(tmp_path, epochs=2, loss_params={"alpha": 0.5})
    assert explicit.run_dir == implicit.run_dir
    resumed = fit(explicit)
    assert resumed.epochs == 2 and len(resumed.history) == 2
    other = tiny(tmp_path, epochs=2, loss_params={"alpha": 1.0})
    other.run_dir.mkdir(parents=True)
    shutil.copy(implicit.run_dir / "checkpoint.pt", other.run_dir / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"different config \(loss_params: .*'alpha': 0.5.* -> .*'alpha': 1.0"):
        fit(other)


def test_crash_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    config = tiny(tmp_path, epochs=2, eval_every=0)
    real_save = torch.save
    calls = []

    def failing_save(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"half a checkpoint")
            raise OSError("disk full")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        fit(config)
    assert sorted(p.name for p in config.run_dir.iterdir()) == ["checkpoint.pt", "codes.npz", "metrics.jsonl"]
    assert artifacts.load_checkpoint(config.run_dir / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert fit(config).epochs == 2


def test_model_overrides_and_transform_params_errors(tmp_path):
    with pytest.raises(ConfigError, match="model_overrides .*valid HybridHashConfig fields"):
        fit(tiny(tmp_path, model_overrides={"widht": 3}))
    with pytest.raises(ConfigError, match="transform_params"):
        fit(tiny(tmp_path, transform_params={"rotate": 10}))


def test_encode_codes_labels_features():
    from hhlib.data import load_splits
    from hhlib.model import build

    splits = load_splits("fashion_mnist", FASHION_MNIST, img_size=32, query_per_class=1, train_per_class=2, database_limit=10)
    model = build("tiny32", bits=16)
    codes, labels, features = encode(model, splits.query, "cpu", batch_size=4, features=True)
    assert codes.dtype == np.int8 and codes.shape == (10, 16) and set(np.unique(codes)) <= {-1, 1}
    np.testing.assert_array_equal(labels, splits.labels("query"))
    assert features.shape == (10, model.config.feature_dim)
    images = torch.stack([splits.query[i][0] for i in range(10)])
    np.testing.assert_array_equal(codes, model.eval().encode(images).numpy().astype(np.int8))
    loader = torch.utils.data.DataLoader(splits.query, batch_size=3)
    np.testing.assert_array_equal(encode(model, loader, "cpu")[0], codes)


def test_encode_continuous_outputs_and_limit():
    from hhlib.data import load_splits
    from hhlib.model import build

    splits = load_splits("fashion_mnist", FASHION_MNIST, img_size=32, query_per_class=1, train_per_class=2, database_limit=10)
    model = build("tiny32", bits=16).eval()
    outputs, labels = encode(model, splits.query, "cpu", batch_size=4, continuous=True, limit=6)
    images = torch.stack([splits.query[i][0] for i in range(6)])
    assert outputs.dtype == np.float32 and outputs.shape == (6, 16)
    np.testing.assert_allclose(outputs, model(images).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, splits.labels("query")[:6])
    codes, _ = encode(model, splits.query, "cpu", batch_size=4)
    np.testing.assert_array_equal(np.where(outputs >= 0, 1, -1), codes[:6])


def test_load_trained_model_reproduces_the_runs_codes(tmp_path):
    from hhlib.train import load_trained_model

    result = fit(tiny(tmp_path, loss="ninh"))  # NINH's divide-and-encode head must be rebuilt too
    network = load_trained_model(result.checkpoint_path, "cpu")
    assert not network.training and network.config.head == "divide_encode"
    from hhlib.data import load_splits

    splits = load_splits("fashion_mnist", FASHION_MNIST, img_size=32, query_per_class=2, train_per_class=4, database_limit=50)
    codes, _ = encode(network, splits.query, "cpu")
    np.testing.assert_array_equal(codes, artifacts.load_codes(result.codes_path)["query_codes"])
    with pytest.raises(FileNotFoundError):
        load_trained_model(tmp_path / "missing.pt")
