"""Tests of hhlib.spread: per-seed rows collapse to mean ± sample std with every per-seed value kept."""

import math

import pytest

from hhlib.spread import aggregate_seeds, mean_std, seed_run_name


def row(seed, value, bits=16, method="hybridhash", **extra):
    return {"method": method, "bits": bits, "seed": seed, "map": value, "map_tie_aware": value + 0.001,
            "train_seconds": 10.0 * (seed + 1), "run_dir": f"runs/{method}_{bits}_{seed}", **extra}


def test_mean_std_is_the_sample_standard_deviation():
    mean, std = mean_std([0.70, 0.74, 0.78])
    assert mean == pytest.approx(0.74)
    assert std == pytest.approx(math.sqrt(((0.04 ** 2) * 2) / 2))  # ddof = 1
    assert mean_std([0.5]) == (0.5, None)
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])


def test_aggregate_groups_by_key_and_keeps_per_seed_values():
    rows = [row(2, 0.78), row(0, 0.70), row(1, 0.74), row(0, 0.60, bits=32)]
    table = aggregate_seeds(rows, ("method", "bits"))
    first, second = table
    assert first["seeds"] == [0, 1, 2] and first["n_seeds"] == 3
    assert first["map"] == pytest.approx(0.74) and first["map_std"] == pytest.approx(0.04)
    assert first["map_per_seed"] == [0.70, 0.74, 0.78]
    assert first["map_tie_aware"] == pytest.approx(0.741)
    assert first["train_seconds"] == pytest.approx(20.0)
    assert first["run_dirs"] == ["runs/hybridhash_16_0", "runs/hybridhash_16_1", "runs/hybridhash_16_2"]
    assert "seed" not in first
    assert second["n_seeds"] == 1 and second["map_std"] is None


def test_aggregate_keeps_the_convergence_evidence_of_each_seed():
    rows = [row(0, 0.7, map_last_evals=[[8, 0.69], [16, 0.7]]), row(1, 0.72, map_last_evals=[[8, 0.7], [16, 0.72]])]
    (aggregated,) = aggregate_seeds(rows, ("method", "bits"))
    assert aggregated["map_last_evals_per_seed"] == [[[8, 0.69], [16, 0.7]], [[8, 0.7], [16, 0.72]]]


def test_aggregate_rejects_a_missing_or_repeated_seed():
    with pytest.raises(ValueError, match="lacks 'seed'"):
        aggregate_seeds([{"method": "m", "bits": 16, "map": 0.5}], ("method", "bits"))
    with pytest.raises(ValueError, match=r"seeds \[0, 0\]: each seed once"):
        aggregate_seeds([row(0, 0.5), row(0, 0.6)], ("method", "bits"))


def test_seed_run_name_keeps_the_single_seed_name_for_seed_zero():
    assert seed_run_name("wml_64", 0) == "wml_64"
    assert seed_run_name("wml_64", 3) == "wml_64_seed3"


def test_a_flag_holds_for_the_configuration_when_any_seed_has_it():
    (aggregated,) = aggregate_seeds([row(0, 0.7, collapsed=False), row(1, 0.1, collapsed=True)], ("method", "bits"))
    assert aggregated["collapsed"] is True


def test_a_count_keeps_its_worst_seed_and_every_seed_value():
    rows = [row(0, 0.7, constant_bits=2), row(1, 0.72, constant_bits=0), row(2, 0.71, constant_bits=1)]
    (aggregated,) = aggregate_seeds(rows, ("method", "bits"))
    assert aggregated["constant_bits"] == 2 and aggregated["constant_bits_per_seed"] == [2, 0, 1]
    (older,) = aggregate_seeds([row(0, 0.7), row(1, 0.72, constant_bits=0)], ("method", "bits"))
    assert "constant_bits_per_seed" not in older  # a seed recorded without the count: no partial list
