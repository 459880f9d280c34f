"""A small hyperparameter search on the validation protocol, with the same budget for every method.

Each method of a comparison gets the same grid over training fields (e.g. learning rate x epochs),
trained on the validation protocol of :mod:`hhlib.validation` (held-out training images rank the
rest of the training images), never on the query set. The chosen configuration is the grid point
with the best mean validation mAP over the search seeds; ties go to the earlier grid point. The
record (every trial and the choice) is a plain dict for a YAML file under params/.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hhlib.spread import mean_std, seed_run_name
from hhlib.train import ConfigError, RunResult, TrainConfig, fit

__all__ = ["SEARCHABLE", "choose", "expand_grid", "run_search", "search_record", "trial_configs"]

# TrainConfig fields a search may vary: the optimisation recipe, never the data or the model
SEARCHABLE = ("optimizer", "lr", "weight_decay", "momentum", "batch_size", "epochs", "schedule", "warmup_epochs")


def expand_grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the space's values, in a stable order (the last field varies fastest).

    Raises:
        ConfigError: a field that may not be searched, or an empty list of values.
    """
    for name, values in space.items():
        if name not in SEARCHABLE:
            raise ConfigError(f"search field {name!r} cannot be searched: choose from {list(SEARCHABLE)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"search field {name!r} needs a non-empty list of values, got {values!r}")
    names = list(space)
    return [dict(zip(names, combination)) for combination in itertools.product(*(space[n] for n in names))]


def trial_configs(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
                  seeds: Sequence[int] = (0,)) -> list[tuple[int, dict[str, Any], TrainConfig]]:
    """The search's runs: ``(trial index, grid values, config)`` per grid point and seed.

    Each config is ``base`` with the grid values, the seed, ``validation_per_class`` and a run name
    ``search_<loss>_<bits>_t<index>[_seed<N>]``, evaluated only after its last epoch.
    """
    runs = []
    for index, values in enumerate(expand_grid(space)):
        for seed in seeds:
            name = seed_run_name(f"search_{base.loss}_{base.bits}_t{index}", seed)
            # dataclasses.replace builds through __init__, so the grid values are validated like any config
            config = dataclasses.replace(base, **values, seed=seed, validation_per_class=validation_per_class,
                                         eval_every=0, run_name=name)
            runs.append((index, values, config))
    return runs


def run_search(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
               seeds: Sequence[int] = (0,), train: Callable[[TrainConfig], RunResult] = fit) -> list[dict[str, Any]]:
    """Train every trial of the search (finished trials are read back) and return one row per run.

    Returns:
        Rows ``{"trial", **grid values, "seed", "val_map", "train_seconds"}`` in trial order.
    """
    trials = trial_configs(base, space, validation_per_class, seeds)
    return trial_rows(trials, [train(config) for _, _, config in trials])


def trial_rows(trials: Sequence[tuple[int, dict[str, Any], TrainConfig]], results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per trained trial of :func:`trial_configs`, ``results`` in the same order.

    Returns:
        Rows ``{"trial", **grid values, "seed", "val_map", "train_seconds"}``.
    """
    return [{"trial": index, **values, "seed": config.seed, "val_map": result.final_map,
             "train_seconds": round(result.train_seconds, 1)}
            for (index, values, config), result in zip(trials, results, strict=True)]


def choose(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The grid point with the best mean validation mAP over seeds (ties: the earlier trial).

    Returns:
        ``{"trial", **grid values, "val_map", "val_map_std", "n_seeds"}``.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("choose needs the rows of at least one trial: run the search first")
    trials: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        trials.setdefault(int(row["trial"]), []).append(row)
    summaries = []
    for index in sorted(trials):
        group = trials[index]
        mean, std = mean_std([r["val_map"] for r in group])
        values = {k: v for k, v in group[0].items() if k not in ("trial", "seed", "val_map", "train_seconds")}
        summaries.append({"trial": index, **values, "val_map": mean, "val_map_std": std, "n_seeds": len(group)})
    return max(summaries, key=lambda s: (round(s["val_map"], 12), -s["trial"]))  # equal up to float noise: a tie


def search_record(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
                  rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A YAML-ready record of one method's search: where it ran, the grid, every trial and the choice."""
    chosen = choose(rows)
    return {
        "loss": base.loss,
        "bits": base.bits,
        "validation_per_class": validation_per_class,
        "space": {k: list(v) for k, v in space.items()},
        "trials": [dict(r) for r in rows],
        "chosen": {k: chosen[k] for k in space},
        "chosen_val_map": chosen["val_map"],
        "chosen_val_map_std": chosen["val_map_std"],
    }
