"""Several training seeds per configuration: one row per seed in, one row with mean ± spread out.

A single training run of a hashing network varies with its seed by about as much as many of the
differences a study wants to show (on Fashion-MNIST, 0.01-0.06 mAP between two seeds of the same
configuration). So every number of the study is the mean over ``seeds`` training runs on the same
split, reported with its sample standard deviation and every per-seed value. The spread is the
standard deviation over seeds (ddof = 1); with one seed it is None: there is nothing to judge by.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["SPREAD_FIELDS", "aggregate_seeds", "mean_std", "seed_run_name"]

# numeric fields averaged over seeds; each gets <field>_std and <field>_per_seed beside its mean
SPREAD_FIELDS = ("map", "map_tie_aware", "map_best_over_evals", "precision_within_radius")
# numeric fields only averaged (costs and sizes)
MEAN_FIELDS = ("train_seconds", "images_per_second", "mean_returned_within_radius", "best_epoch")
# fields that differ between the seeds of one configuration and are kept as lists
PER_SEED_FIELDS = ("seed", "run_dir")
# flags that hold for the configuration when they hold for any of its seeds (e.g. collapsed codes)
ANY_FIELDS = ("collapsed",)
# counts whose worst seed speaks for the configuration: the largest value, with <field>_per_seed beside it
WORST_FIELDS = ("constant_bits",)


def seed_run_name(base: str, seed: int) -> str:
    """A run folder name per seed: ``base`` for seed 0 (the single-seed name), ``base_seed<N>`` otherwise."""
    return base if seed == 0 else f"{base}_seed{seed}"


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1) of per-seed values; the std is None for one value.

    Raises:
        ValueError: no values.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value: train at least one seed")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _identity(row: Mapping[str, Any], key: Sequence[str]) -> tuple:
    return tuple(row.get(k) for k in key)


def aggregate_seeds(rows: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """Collapse per-seed rows into one row per configuration.

    Args:
        rows: one dict per trained run (``RunResult.summary(...)`` rows), each with a ``seed``.
        key: the fields that identify a configuration (e.g. ``("method", "bits")``).

    Returns:
        One row per configuration, in first-seen order: the first seed's other fields; for each of
        ``SPREAD_FIELDS`` present, the mean (under its own name), ``<field>_std`` (None for one seed)
        and ``<field>_per_seed``; the means of ``MEAN_FIELDS``; the largest of ``WORST_FIELDS`` with its
        ``<field>_per_seed``; ``seeds`` and ``run_dirs`` (lists in
        seed order), ``n_seeds``; and ``map_last_evals_per_seed`` when the rows carry ``map_last_evals``.

    Raises:
        ValueError: a row without ``seed``, or the same seed twice in one configuration.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        if "seed" not in row:
            raise ValueError(f"a run row lacks 'seed': {dict(row)}; pass RunResult.summary(seed=config.seed) rows")
        groups.setdefault(_identity(row, key), []).append(row)
    return [_aggregate_group(sorted(group, key=lambda r: r["seed"]), key) for group in groups.values()]


def _aggregate_group(group: list[Mapping[str, Any]], key: Sequence[str]) -> dict[str, Any]:
    seeds = [row["seed"] for row in group]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"configuration {_identity(group[0], key)} has seeds {seeds}: each seed once")
    out = {k: v for k, v in group[0].items() if k not in PER_SEED_FIELDS}
    for name in SPREAD_FIELDS:
        values = [row.get(name) for row in group]
        if all(v is not None for v in values):
            out[name], out[f"{name}_std"] = mean_std(values)
            out[f"{name}_per_seed"] = [float(v) for v in values]
    for name in MEAN_FIELDS:
        values = [row.get(name) for row in group]
        if all(v is not None for v in values):
            out[name] = mean_std(values)[0]
    for name in ANY_FIELDS:
        if any(name in row for row in group):
            out[name] = any(bool(row.get(name)) for row in group)
    for name in WORST_FIELDS:
        values = [row.get(name) for row in group]
        if all(v is not None for v in values):
            out[name], out[f"{name}_per_seed"] = max(values), list(values)
    if all("map_last_evals" in row for row in group):
        out["map_last_evals_per_seed"] = [row["map_last_evals"] for row in group]
        out.pop("map_last_evals", None)
    out["seeds"] = seeds
    out["n_seeds"] = len(seeds)
    out["run_dirs"] = [row.get("run_dir") for row in group]
    out["run_dir"] = group[0].get("run_dir")
    return out
