"""Tests of hhlib.artifacts: the outputs/ layout and atomic checkpoint, codes and metrics I/O."""

import json
import os

import numpy as np
import pytest
import torch

from hhlib import artifacts


def test_layout(tmp_path):
    assert artifacts.dataset_dir(tmp_path, "fashion_mnist") == tmp_path / "fashion_mnist"
    assert artifacts.run_dir(tmp_path, "cifar10", "wml_64") == tmp_path / "cifar10" / "checkpoints" / "wml_64"
    assert artifacts.figures_dir(tmp_path, "cifar10").is_dir()
    with pytest.raises(ValueError, match="plain folder name"):
        artifacts.run_dir(tmp_path, "cifar10", "a/b")


def test_checkpoint_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "history": [{"loss": 0.5}],
             "rng": [{"python": (3, (1, 2, 3), None)}], "config": {"bits": 16, "pretrained": None}}
    path = artifacts.save_checkpoint(tmp_path / "run" / "checkpoint.pt", state)
    loaded = artifacts.load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 0.5}] and loaded["config"] == state["config"]
    assert loaded["rng"][0]["python"] == (3, (1, 2, 3), None)
    assert os.listdir(tmp_path / "run") == ["checkpoint.pt"]  # no temporary file left behind


def test_failed_write_leaves_previous_file_and_no_temporary(tmp_path):
    path = artifacts.save_checkpoint(tmp_path / "checkpoint.pt", {"model": {}, "config": {}, "epoch": 1})

    def explode(handle):
        handle.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        artifacts.atomic_write(path, explode)
    assert artifacts.load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
    with pytest.raises(RuntimeError, match="disk full"):
        artifacts.atomic_write(tmp_path / "new.pt", explode)
    assert not (tmp_path / "new.pt").exists() and os.listdir(tmp_path) == ["checkpoint.pt"]


def test_missing_checkpoint_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*train first"):
        artifacts.load_checkpoint(tmp_path / "nothing.pt")


def test_codes_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    query = np.where(rng.random((3, 16)) > 0.5, 1, -1)
    database = torch.from_numpy(np.where(rng.random((5, 16)) > 0.5, 1.0, -1.0))
    query_labels, database_labels = np.eye(4)[[0, 1, 2]], np.eye(4)[[0, 1, 2, 3, 3]]
    path = artifacts.save_codes(tmp_path / "codes.npz", query, database, query_labels, database_labels,
                                query_outputs=rng.random((3, 16)).astype(np.float32))
    codes = artifacts.load_codes(path)
    assert codes["query_codes"].dtype == np.int8 and codes["database_labels"].dtype == np.float32
    np.testing.assert_array_equal(codes["query_codes"], query)
    np.testing.assert_array_equal(codes["database_codes"], database.numpy())
    np.testing.assert_array_equal(codes["database_labels"], database_labels)
    assert codes["query_outputs"].shape == (3, 16)


def test_codes_shape_errors(tmp_path):
    with pytest.raises(ValueError, match="different code lengths"):
        artifacts.save_codes(tmp_path / "c.npz", np.ones((2, 16)), np.ones((3, 32)), np.ones((2, 1)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="one label row per code"):
        artifacts.save_codes(tmp_path / "c.npz", np.ones((2, 16)), np.ones((3, 16)), np.ones((1, 1)), np.ones((3, 1)))
    assert not (tmp_path / "c.npz").exists()


def test_json_and_jsonl_round_trip(tmp_path):
    data = {"a": (1, 2), "b": np.float32(0.5), "c": torch.tensor(3), "d": float("nan"), "e": tmp_path}
    artifacts.write_json(tmp_path / "x.json", data)
    assert artifacts.read_json(tmp_path / "x.json") == {"a": [1, 2], "b": 0.5, "c": 3, "d": None, "e": str(tmp_path)}
    records = [{"epoch": 1, "loss": 0.7}, {"epoch": 2, "loss": 0.6, "map": 0.5}]
    artifacts.write_jsonl(tmp_path / "metrics.jsonl", records)
    assert artifacts.read_jsonl(tmp_path / "metrics.jsonl") == records
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_metrics_merge_replaces_same_key(tmp_path):
    path = tmp_path / "fashion_mnist" / "metrics.json"
    assert artifacts.read_metrics(path, "fashion_mnist") == {"dataset": "fashion_mnist", "runs": [], "ablations": []}
    artifacts.update_metrics(path, dataset="fashion_mnist", runs=[
        {"method": "hybridhash", "bits": 16, "map": 0.7}, {"method": "hybridhash", "bits": 64, "map": 0.8},
    ])
    report = artifacts.update_metrics(
        path, dataset="fashion_mnist", runs=[{"method": "hybridhash", "bits": 16, "map": 0.75, "topk": 64000}],
        ablations=[{"backbone": "hybridhash", "variant": "local_only", "loss": "wml", "bits": 16, "map": 0.6}],
    )
    on_disk = json.loads(path.read_text())
    assert on_disk == report
    assert [(r["bits"], r["map"]) for r in on_disk["runs"]] == [(64, 0.8), (16, 0.75)]
    assert on_disk["ablations"][0]["variant"] == "local_only"
    report = artifacts.update_metrics(path, dataset="fashion_mnist", ablations=[
        {"backbone": "hybridhash", "variant": "local_only", "loss": "wml", "bits": 16, "map": 0.65}])
    assert [a["map"] for a in report["ablations"]] == [0.65]


def test_metrics_replace_drops_rows_a_notebook_no_longer_trains(tmp_path):
    path = tmp_path / "fashion_mnist" / "metrics.json"
    old = [{"method": "hybridhash", "bits": bits, "map": 0.7} for bits in (16, 32, 48, 64)]
    ablation = {"backbone": "cnn", "variant": "hybrid", "loss": "wml", "bits": 16, "map": 0.4}
    artifacts.update_metrics(path, dataset="fashion_mnist", runs=old, ablations=[ablation])
    report = artifacts.update_metrics(path, dataset="fashion_mnist", replace=["runs"],
                                      runs=[{"method": "hybridhash", "bits": bits, "map": 0.8} for bits in (16, 64)])
    assert [(r["bits"], r["map"]) for r in report["runs"]] == [(16, 0.8), (64, 0.8)]
    assert report["ablations"] == [ablation]  # a list not named in replace is merged as before
    assert json.loads(path.read_text()) == report
    with pytest.raises(ValueError, match="only 'runs' and 'ablations' can be replaced"):
        artifacts.update_metrics(path, dataset="fashion_mnist", replace=["tsne"])


def test_metrics_errors(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match=r"lacks \['map'\]"):
        artifacts.update_metrics(path, dataset="cifar10", runs=[{"method": "dpsh", "bits": 16}])
    artifacts.update_metrics(path, dataset="cifar10", runs=[{"method": "dpsh", "bits": 16, "map": 0.5}])
    with pytest.raises(ValueError, match="holds metrics of 'cifar10'"):
        artifacts.update_metrics(path, dataset="coco", runs=[])
