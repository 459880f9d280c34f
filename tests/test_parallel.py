"""Tests for hhlib.parallel: runs in separate processes give exactly the codes of fit() run one by one."""

import numpy as np
import pytest
import torch

from hhlib.artifacts import load_codes
from hhlib.parallel import fit_many, fit_runs
from hhlib.train import ConfigError, TrainConfig, fit


def _config(fashion_dir, out_dir, seed, **fields):
    return TrainConfig.from_dict(dict(
        dataset="fashion_mnist", data_dir=str(fashion_dir), preset="tiny32", bits=16, img_size=32,
        query_per_class=1, train_per_class=3, database_limit=20, batch_size=8, epochs=1, eval_every=1,
        optimizer="adamw", lr=1e-3, out_dir=str(out_dir), run_name=f"seed_{seed}", seed=seed,
        progress=False, device="cpu", **fields,
    ))


def test_fit_many_equals_fit_one_by_one(fashion_dir, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fit_many's default: one thread per run
    try:
        alone = [fit(_config(fashion_dir, tmp_path / "alone", seed)) for seed in (0, 1)]
    finally:
        torch.set_num_threads(threads)
    together = fit_many([_config(fashion_dir, tmp_path / "together", seed) for seed in (0, 1)], processes=2)
    assert [r.config["seed"] for r in together] == [0, 1]  # results come back in the order given
    for one, other in zip(alone, together, strict=True):
        expected, got = load_codes(one.codes_path), load_codes(other.codes_path)
        np.testing.assert_array_equal(got["database_codes"], expected["database_codes"])
        assert other.final_map == one.final_map
    seeds_differ = load_codes(together[0].codes_path)["database_codes"] != load_codes(together[1].codes_path)["database_codes"]
    assert seeds_differ.any()


def test_fit_many_refuses_shared_run_folders(fashion_dir, tmp_path):
    config = _config(fashion_dir, tmp_path, 0)
    with pytest.raises(ConfigError, match="share run folders"):
        fit_many([config, config])
    with pytest.raises(ConfigError, match="must be >= 1"):
        fit_many([config], threads_per_run=0)


def test_fit_runs_in_parallel_equals_one_after_another(fashion_dir, tmp_path):
    in_turn = fit_runs([_config(fashion_dir, tmp_path / "in_turn", seed, num_threads=1) for seed in (0, 1)])
    parallel = fit_runs([_config(fashion_dir, tmp_path / "parallel", seed, num_threads=1) for seed in (0, 1)], parallel_runs=2)
    for one, other in zip(in_turn, parallel, strict=True):
        assert other.config["seed"] == one.config["seed"]
        np.testing.assert_array_equal(load_codes(other.codes_path)["query_codes"], load_codes(one.codes_path)["query_codes"])
        assert other.final_map == one.final_map


def test_fit_runs_refuses_parallel_runs_without_a_thread_count(fashion_dir, tmp_path):
    configs = [_config(fashion_dir, tmp_path / "out", seed) for seed in (0, 1)]  # num_threads None: one per core
    with pytest.raises(ConfigError, match="needs one num_threads"):
        fit_runs(configs, parallel_runs=2)
    with pytest.raises(ConfigError, match="must be an int >= 1"):
        fit_runs(configs, parallel_runs=0)
    assert not (tmp_path / "out").exists()  # refused before any run started
