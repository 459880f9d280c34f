"""Tests of hhlib.validation (held-out training images rank the rest) and hhlib.search (same grid for every method)."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hhlib import search
from hhlib.data import load_splits
from hhlib.train import ConfigError, RunResult, TrainConfig, fit
from hhlib.validation import validation_splits

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
needs_data = pytest.mark.skipif(not Path(FASHION_MNIST).is_dir(), reason="Fashion-MNIST files absent (make setup)")


@pytest.fixture
def fashion_splits(fashion_dir):
    return load_splits("fashion_mnist", fashion_dir, seed=0, img_size=32, query_per_class=1, train_per_class=3)


def test_validation_holds_out_training_images_and_never_touches_the_query_set(fashion_splits):
    valid = validation_splits(fashion_splits, per_class=1, seed=0)
    train_positions = set(fashion_splits.train.indices.tolist())
    held_out = set(valid.query.indices.tolist())
    kept = set(valid.train.indices.tolist())
    assert held_out | kept == train_positions and not held_out & kept
    assert valid.query.labels.sum(axis=0).tolist() == [1.0] * 10  # one per class
    assert valid.database.indices.tolist() == valid.train.indices.tolist() == valid.train_eval.indices.tolist()
    assert not held_out & set(fashion_splits.query.indices.tolist())
    assert valid.topk is None and valid.params["validation_per_class"] == 1
    assert valid.query.transform is fashion_splits.query.transform  # eval transform for the queries
    again = validation_splits(fashion_splits, per_class=1, seed=0)
    assert again.query.indices.tolist() == valid.query.indices.tolist()


def test_validation_rejects_holding_out_a_whole_class(fashion_splits):
    with pytest.raises(ValueError, match="at most 3 training images: hold out fewer"):
        validation_splits(fashion_splits, per_class=3)
    with pytest.raises(ValueError, match="positive int"):
        validation_splits(fashion_splits, per_class=0)


def test_expand_grid_order_and_errors():
    assert search.expand_grid({"lr": [1e-3, 2e-3], "epochs": [2, 4]}) == [
        {"lr": 1e-3, "epochs": 2}, {"lr": 1e-3, "epochs": 4}, {"lr": 2e-3, "epochs": 2}, {"lr": 2e-3, "epochs": 4}]
    with pytest.raises(ConfigError, match="'bits' cannot be searched"):
        search.expand_grid({"bits": [16]})
    with pytest.raises(ConfigError, match="non-empty list"):
        search.expand_grid({"lr": []})


def test_trial_configs_validate_and_name_every_run(tmp_path):
    base = TrainConfig(out_dir=str(tmp_path), loss="dpsh", bits=16)
    runs = search.trial_configs(base, {"lr": [1e-3, 2e-3]}, validation_per_class=50, seeds=[0, 1])
    assert [(i, c.lr, c.seed, c.run_name) for i, _, c in runs] == [
        (0, 1e-3, 0, "search_dpsh_16_t0"), (0, 1e-3, 1, "search_dpsh_16_t0_seed1"),
        (1, 2e-3, 0, "search_dpsh_16_t1"), (1, 2e-3, 1, "search_dpsh_16_t1_seed1")]
    assert all(c.validation_per_class == 50 and c.eval_every == 0 for _, _, c in runs)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        search.trial_configs(base, {"lr": [-1.0]}, validation_per_class=50)


def test_loss_grid_and_its_default_point(tmp_path):
    assert search.expand_loss_grid("dch", {"quantization_weight": [0.01, 0.1], "gamma": [10.0, 20.0]}) == [
        {"quantization_weight": 0.01, "gamma": 10.0}, {"quantization_weight": 0.01, "gamma": 20.0},
        {"quantization_weight": 0.1, "gamma": 10.0}, {"quantization_weight": 0.1, "gamma": 20.0}]
    assert search.expand_loss_grid("cnnh", {}) == []  # a loss with no weight to search adds no trial
    with pytest.raises(ConfigError, match="'lambda' is not a hyperparameter of the loss: choose from"):
        search.expand_loss_grid("dch", {"lambda": [0.1]})
    with pytest.raises(ConfigError, match="non-empty list"):
        search.expand_loss_grid("dch", {"gamma": []})
    base = TrainConfig(out_dir=str(tmp_path), loss="dch", bits=16, loss_params={"gamma": 10.0})
    # the run's own value, else the loss's default (DCH: lambda 0.1)
    assert search.default_loss_point(base, {"gamma": [5.0], "quantization_weight": [1.0]}) == {
        "gamma": 10.0, "quantization_weight": 0.1}


def test_weight_trials_train_the_other_points_at_the_first_stages_choice(tmp_path):
    base = TrainConfig(out_dir=str(tmp_path), loss="dch", bits=16, lr=1e-3, loss_params={"gamma": 10.0})
    chosen = {"trial": 1, "lr": 2e-3, "quantization_weight": 0.1, "val_map": 0.7}
    runs = search.weight_trial_configs(base, chosen, {"quantization_weight": [0.01, 0.1, 1.0]}, 50, seeds=[0, 1],
                                       first_index=3)
    assert [(i, values, c.seed, c.run_name) for i, values, c in runs] == [
        (3, {"lr": 2e-3, "quantization_weight": 0.01}, 0, "search_dch_16_t3"),
        (3, {"lr": 2e-3, "quantization_weight": 0.01}, 1, "search_dch_16_t3_seed1"),
        (4, {"lr": 2e-3, "quantization_weight": 1.0}, 0, "search_dch_16_t4"),
        (4, {"lr": 2e-3, "quantization_weight": 1.0}, 1, "search_dch_16_t4_seed1")]
    assert [c.loss_params for _, _, c in runs[::2]] == [{"gamma": 10.0, "quantization_weight": 0.01},
                                                       {"gamma": 10.0, "quantization_weight": 1.0}]
    assert all(c.lr == 2e-3 and c.validation_per_class == 50 and c.eval_every == 0 for _, _, c in runs)
    assert search.weight_trial_configs(base, chosen, {}, 50) == []
    # the first stage's trials carry the default weight: the same run identity as without it
    first = search.trial_configs(base, {"lr": [2e-3]}, 50, loss_point={"quantization_weight": 0.1})
    assert first[0][1] == {"lr": 2e-3, "quantization_weight": 0.1}
    assert first[0][2].config_hash == dataclasses.replace(base, lr=2e-3, seed=0, validation_per_class=50, eval_every=0,
                                                          run_name="search_dch_16_t0").config_hash


def test_the_search_chooses_over_both_stages():
    scores = {(1e-3, 0.1): 0.60, (2e-3, 0.1): 0.65, (4e-3, 0.1): 0.62, (2e-3, 0.01): 0.64, (2e-3, 1.0): 0.70}
    trained = []

    def train(config: TrainConfig) -> SimpleNamespace:
        weight = config.loss_params.get("quantization_weight", 0.1)
        trained.append((config.lr, weight))
        return SimpleNamespace(final_map=scores[(config.lr, weight)], health={"collapsed": False}, train_seconds=1.0)

    base = TrainConfig(out_dir="unused", loss="dch", bits=16)
    space, loss_space = {"lr": [1e-3, 2e-3, 4e-3]}, {"quantization_weight": [0.01, 0.1, 1.0]}
    rows = search.run_search(base, space, 50, train=train, loss_space=loss_space)
    assert trained == [(1e-3, 0.1), (2e-3, 0.1), (4e-3, 0.1), (2e-3, 0.01), (2e-3, 1.0)]  # 3 + 2 trials
    record = search.search_record(base, space, 50, rows, loss_space)
    assert record["chosen"] == {"lr": 2e-3, "loss_params": {"quantization_weight": 1.0}}
    assert record["loss_space"] == {"quantization_weight": [0.01, 0.1, 1.0]} and len(record["trials"]) == 5
    assert search.search_record(base, space, 50, rows[:3])["chosen"] == {"lr": 2e-3}  # no weight grid: no loss_params


def test_choose_takes_the_best_mean_over_seeds_and_the_earlier_trial_on_ties():
    rows = [{"trial": 0, "lr": 1e-3, "seed": 0, "val_map": 0.60}, {"trial": 0, "lr": 1e-3, "seed": 1, "val_map": 0.70},
            {"trial": 1, "lr": 2e-3, "seed": 0, "val_map": 0.64}, {"trial": 1, "lr": 2e-3, "seed": 1, "val_map": 0.64},
            {"trial": 2, "lr": 4e-3, "seed": 0, "val_map": 0.66}, {"trial": 2, "lr": 4e-3, "seed": 1, "val_map": 0.64}]
    chosen = search.choose(rows)
    assert chosen["trial"] == 0 and chosen["lr"] == 1e-3 and chosen["val_map"] == pytest.approx(0.65)
    assert chosen["n_seeds"] == 2
    with pytest.raises(ValueError, match="at least one trial"):
        search.choose([])


def lr_rows(val_maps, collapsed=(), seed=0):
    return [{"trial": i, "lr": lr, "seed": seed, "val_map": m, "collapsed": i in collapsed}
            for i, (lr, m) in enumerate(zip([1e-3, 2e-3, 4e-3], val_maps))]


def test_choose_skips_a_collapsed_point_and_the_lr_just_below_it():
    # SDH's 16-epoch search: 0.002 is best on seed 0, but 0.004 collapsed, so 0.002 sits on the edge
    rows = lr_rows([0.596, 0.623, 0.102], collapsed={2})
    assert search.excluded_trials(search.summarise_trials(rows)) == {1: "next to a collapse at trial 2", 2: "collapsed"}
    assert search.choose(rows)["lr"] == 1e-3
    assert search.choose(lr_rows([0.596, 0.623, 0.70]))["lr"] == 4e-3  # no collapse: the best mean
    # a collapse in one seed marks the whole grid point
    two_seeds = lr_rows([0.60, 0.62, 0.66]) + lr_rows([0.61, 0.63, 0.10], collapsed={2}, seed=1)
    chosen = search.choose(two_seeds)
    assert chosen["lr"] == 1e-3 and chosen["n_seeds"] == 2 and not chosen["collapsed"]


def test_choose_falls_back_when_the_margin_leaves_nothing():
    assert search.choose(lr_rows([0.50, 0.60, 0.10], collapsed={1, 2}))["lr"] == 1e-3
    # only 0.001 survives and it is next to the collapse at 0.002: the points that did not collapse compete
    rows = [r for r in lr_rows([0.50, 0.10, 0.10], collapsed={1, 2})]
    assert search.excluded_trials(search.summarise_trials(rows)) == {0: "next to a collapse at trial 1", 1: "collapsed",
                                                                     2: "collapsed"}
    assert search.choose(rows)["lr"] == 1e-3
    assert search.choose(lr_rows([0.10, 0.11, 0.10], collapsed={0, 1, 2}))["lr"] == 2e-3  # all collapsed: the best
    # rows from records written before the collapse flag existed count as not collapsed
    old = [{k: v for k, v in r.items() if k != "collapsed"} for r in lr_rows([0.5, 0.6, 0.1])]
    assert search.choose(old)["lr"] == 2e-3


def test_the_margin_compares_only_points_with_equal_other_values():
    rows = [{"trial": 0, "lr": 1e-3, "epochs": 8, "seed": 0, "val_map": 0.5, "collapsed": False},
            {"trial": 1, "lr": 1e-3, "epochs": 16, "seed": 0, "val_map": 0.6, "collapsed": False},
            {"trial": 2, "lr": 2e-3, "epochs": 8, "seed": 0, "val_map": 0.7, "collapsed": False},
            {"trial": 3, "lr": 2e-3, "epochs": 16, "seed": 0, "val_map": 0.1, "collapsed": True}]
    assert search.excluded_trials(search.summarise_trials(rows)) == {1: "next to a collapse at trial 3", 3: "collapsed"}
    assert search.choose(rows)["trial"] == 2


@needs_data
def test_search_trains_on_the_validation_protocol_and_records_the_choice(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = TrainConfig.from_dict(dict(
            dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
            query_per_class=2, train_per_class=8, database_limit=40, batch_size=16, epochs=1, optimizer="adamw",
            out_dir=str(tmp_path), progress=False, device="cpu", num_threads=1))
        seen = []

        def train(config: TrainConfig) -> RunResult:
            seen.append(config)
            return fit(config)

        rows = search.run_search(base, {"lr": [1e-5, 3e-3]}, validation_per_class=3, train=train)
        record = search.search_record(base, {"lr": [1e-5, 3e-3]}, 3, rows)
    finally:
        torch.set_num_threads(threads)
    assert [c.lr for c in seen] == [1e-5, 3e-3]
    codes = np.load(seen[0].run_dir / "codes.npz")
    assert codes["query_codes"].shape[0] == 30 and codes["database_codes"].shape[0] == 50  # 3 and 5 per class
    assert record["chosen"]["lr"] in (1e-5, 3e-3) and len(record["trials"]) == 2
    health = [json.loads((c.run_dir / "result.json").read_text())["health"]["collapsed"] for c in seen]
    assert [r["collapsed"] for r in rows] == health  # each trial row carries its run's code health
    assert record["excluded"] == search.excluded_trials(search.summarise_trials(rows))
    assert record["chosen_val_map"] == search.choose(rows)["val_map"]
