"""A small hyperparameter search on the validation protocol, with the same budget for every method.

Each method of a comparison gets the same grid over training fields (e.g. learning rate x epochs),
trained on the validation protocol of :mod:`hhlib.validation` (held-out training images rank the
rest of the training images), never on the query set. A second stage then tries the method's loss
weights: at the training fields the first stage chose, every point of the loss's own grid (the same
number of points for every loss, the loss's default among them, so the first stage already trained
that one). The chosen configuration is the point with the best mean validation mAP over the search
seeds among both stages; ties go to the earlier trial. The record (every trial and the choice) is a
plain dict for a YAML file under params/.

A grid point is not eligible when one of its runs ended with collapsed codes (hhlib.health), nor when
it is the next lower learning rate below such a point, all other values equal: the collapse margin.
That margin is hhlib's rule, chosen from measurements on Fashion-MNIST (docs/training.md): SDH, DRSDH
and DH each collapsed at lr 0.004 in their 16-epoch searches, and at the lr just below (0.002), the
best on the search's one seed, they collapsed again in another seed (SDH) or when trained 3x longer
(all three), while at 0.001 they trained normally. A rate one grid step from a collapse sits on the
edge of the method's stable range; the rule costs no extra runs, and it is the same for every method.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hhlib.spread import mean_std, seed_run_name
from hhlib.train import ConfigError, RunResult, TrainConfig, fit

__all__ = ["SEARCHABLE", "best_trial", "choose", "default_loss_point", "excluded_trials", "expand_grid", "expand_loss_grid",
           "grid_points", "run_search", "search_record", "search_stages", "summarise_trials", "trial_configs", "weight_trial_configs"]

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
    return _combinations(space)


def _combinations(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a checked grid's values, the last field varying fastest (``{}``: one empty point)."""
    names = list(space)
    return [dict(zip(names, combination)) for combination in itertools.product(*(space[n] for n in names))]


def expand_loss_grid(loss: str, space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a loss's weight grid (``{}``: no point), in :func:`expand_grid`'s order.

    Raises:
        ConfigError: a name that is not one of the loss's hyperparameters, or an empty list of values.
    """
    from hhlib.losses import loss_params

    known = loss_params(loss)
    for name, values in space.items():
        if name not in known:
            raise ConfigError(f"{loss}: {name!r} is not a hyperparameter of the loss: choose from {known}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{loss}: loss weight {name!r} needs a non-empty list of values, got {values!r}")
    return _combinations(space) if space else []  # no weight: no second-stage point


def default_loss_point(base: TrainConfig, space: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The values ``base`` trains the loss weights of ``space`` with (its loss_params, else the loss's defaults)."""
    from hhlib.losses import resolved_loss_params

    resolved = resolved_loss_params(base.loss, base.loss_params)
    return {name: resolved[name] for name in space}


def trial_configs(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
                  seeds: Sequence[int] = (0,), loss_point: Mapping[str, Any] | None = None,
                  first_index: int = 0) -> list[tuple[int, dict[str, Any], TrainConfig]]:
    """The search's runs: ``(trial index, grid values, config)`` per grid point and seed.

    Each config is ``base`` with the grid values, ``loss_point`` merged into its loss_params, the seed,
    ``validation_per_class`` and a run name ``search_<loss>_<bits>_t<index>[_seed<N>]``, evaluated only
    after its last epoch. The grid values of a trial include ``loss_point`` (the loss weights it trains with).
    """
    point = dict(loss_point or {})
    runs = []
    for offset, values in enumerate(expand_grid(space)):
        index = first_index + offset
        for seed in seeds:
            name = seed_run_name(f"search_{base.loss}_{base.bits}_t{index}", seed)
            # dataclasses.replace builds through __init__, so the grid values are validated like any config
            config = dataclasses.replace(base, **values, loss_params={**base.loss_params, **point}, seed=seed,
                                         validation_per_class=validation_per_class, eval_every=0, run_name=name)
            runs.append((index, {**values, **point}, config))
    return runs


def weight_trial_configs(base: TrainConfig, chosen: Mapping[str, Any], loss_space: Mapping[str, Sequence[Any]],
                         validation_per_class: int, seeds: Sequence[int] = (0,),
                         first_index: int = 0) -> list[tuple[int, dict[str, Any], TrainConfig]]:
    """The second stage's runs: each point of the loss's weight grid but the default, at the chosen training fields.

    Args:
        chosen: the first stage's choice (training fields; :func:`choose`'s other keys are ignored).
        first_index: the first trial index (the number of first-stage grid points), so indices stay unique.
    """
    fields = {k: v for k, v in chosen.items() if k in SEARCHABLE}
    default = default_loss_point(base, loss_space)
    others = [point for point in expand_loss_grid(base.loss, loss_space) if point != default]
    runs = []
    for offset, point in enumerate(others):
        runs += trial_configs(base, {k: [v] for k, v in fields.items()}, validation_per_class, seeds, point,
                              first_index + offset)
    return runs


def run_search(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
               seeds: Sequence[int] = (0,), train: Callable[[TrainConfig], RunResult] = fit,
               loss_space: Mapping[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """Train both stages of the search (finished trials are read back) and return one row per run.

    The first stage trains every point of ``space`` with the loss's default weights; the second, at the
    first stage's choice, every other point of ``loss_space`` (none without one).

    Returns:
        Rows ``{"trial", **grid values, **loss weights, "seed", "val_map", "collapsed", "train_seconds"}`` in trial order.
    """
    def train_stage(_stage: str, trials: Mapping[str, Sequence[tuple[int, dict[str, Any], TrainConfig]]]) -> dict[str, list]:
        return {name: trial_rows(runs, [train(config) for _, _, config in runs]) for name, runs in trials.items()}

    return search_stages({"run": (base, loss_space or {})}, space, validation_per_class, seeds, train_stage)["run"]


StageTrainer = Callable[[str, Mapping[str, Sequence[tuple[int, dict[str, Any], TrainConfig]]]], Mapping[str, list]]


def search_stages(bases: Mapping[str, tuple[TrainConfig, Mapping[str, Sequence[Any]]]], space: Mapping[str, Sequence[Any]],
                  validation_per_class: int, seeds: Sequence[int], train_stage: StageTrainer) -> dict[str, list[dict[str, Any]]]:
    """Both stages of the search for several runs at once: run name -> its trial rows, in trial order.

    Args:
        bases: run name -> (its config, its loss's weight grid, ``{}`` for none).
        train_stage: ``(stage name, run name -> trials of :func:`trial_configs`) -> run name -> trial_rows``;
            it trains one stage of every run (one after another, or in parallel as ``hhlib.tuning`` does).
    """
    first = {name: trial_configs(base, space, validation_per_class, seeds, default_loss_point(base, loss_space))
             for name, (base, loss_space) in bases.items()}
    rows = train_stage("training fields", first)
    n_points = len(expand_grid(space))
    second = {name: weight_trial_configs(base, choose(rows[name]), loss_space, validation_per_class, seeds, n_points)
              for name, (base, loss_space) in bases.items()}
    weight_rows = train_stage("loss weights", second)
    return {name: list(rows[name]) + list(weight_rows[name]) for name in bases}


def trial_rows(trials: Sequence[tuple[int, dict[str, Any], TrainConfig]], results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per trained trial of :func:`trial_configs`, ``results`` in the same order.

    Returns:
        Rows ``{"trial", **grid values, "seed", "val_map", "collapsed", "train_seconds"}``.
    """
    return [{"trial": index, **values, "seed": config.seed, "val_map": result.final_map,
             "collapsed": bool(result.health.get("collapsed", False)), "train_seconds": round(result.train_seconds, 1)}
            for (index, values, config), result in zip(trials, results, strict=True)]


ROW_FIELDS = ("trial", "seed", "val_map", "collapsed", "train_seconds")  # a trial row's fields besides the grid values
SUMMARY_FIELDS = ("trial", "val_map", "val_map_std", "n_seeds", "collapsed")  # a grid point summary's, likewise


def summarise_trials(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One summary per grid point: its values, mean and std of val mAP over seeds, whether a seed collapsed.

    Returns:
        ``[{"trial", **grid values, "val_map", "val_map_std", "n_seeds", "collapsed"}]`` in trial order
        (rows without ``collapsed``, from records written before it existed, count as not collapsed).
    """
    trials: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        trials.setdefault(int(row["trial"]), []).append(row)
    summaries = []
    for index in sorted(trials):
        group = trials[index]
        mean, std = mean_std([r["val_map"] for r in group])
        values = {k: v for k, v in group[0].items() if k not in ROW_FIELDS}
        summaries.append({"trial": index, **values, "val_map": mean, "val_map_std": std, "n_seeds": len(group),
                          "collapsed": any(bool(r.get("collapsed", False)) for r in group)})
    return summaries


def _next_lower_lr(summary: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> int | None:
    """The trial with the largest lr below ``summary``'s and every other grid value equal (None: none)."""
    others = {k: v for k, v in summary.items() if k not in SUMMARY_FIELDS and k != "lr"}
    lower = [s for s in summaries if s["lr"] < summary["lr"] and all(s[k] == v for k, v in others.items())]
    return max(lower, key=lambda s: s["lr"])["trial"] if lower else None


def excluded_trials(summaries: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Grid points the choice skips, with the reason: collapsed codes, or the collapse margin (module doc).

    Returns:
        ``{trial: "collapsed" | "next to a collapse at trial N"}``.
    """
    excluded = {s["trial"]: "collapsed" for s in summaries if s["collapsed"]}
    for summary in summaries:
        if summary["collapsed"] and "lr" in summary:
            neighbour = _next_lower_lr(summary, summaries)
            if neighbour is not None and neighbour not in excluded:
                excluded[neighbour] = f"next to a collapse at trial {summary['trial']}"
    return dict(sorted(excluded.items()))


def choose(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The eligible grid point with the best mean validation mAP over seeds (ties: the earlier trial).

    Eligible: not excluded by :func:`excluded_trials`. When every point is excluded, the points that did
    not collapse compete; when all collapsed, all of them (the record's ``excluded`` says so).

    Returns:
        ``{"trial", **grid values, "val_map", "val_map_std", "n_seeds", "collapsed"}``.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("choose needs the rows of at least one trial: run the search first")
    summaries = summarise_trials(rows)
    return _best_eligible(summaries, excluded_trials(summaries))


def best_trial(points: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The point with the best mean validation mAP; equal up to float noise is a tie, won by the earlier trial."""
    return max(points, key=lambda s: (round(s["val_map"], 12), -s["trial"]))


def _best_eligible(summaries: Sequence[Mapping[str, Any]], excluded: Mapping[int, str]) -> Mapping[str, Any]:
    candidates = ([s for s in summaries if s["trial"] not in excluded]
                  or [s for s in summaries if not s["collapsed"]] or summaries)
    return best_trial(candidates)


def grid_points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`summarise_trials` with the choice spelled out on every point.

    Returns:
        Each summary plus ``"excluded"`` (the reason of :func:`excluded_trials`, or None) and ``"chosen"``
        (True for the point :func:`choose` picks).
    """
    summaries = summarise_trials(rows)
    excluded = excluded_trials(summaries)
    chosen = _best_eligible(summaries, excluded)["trial"]
    return [{**s, "excluded": excluded.get(s["trial"]), "chosen": s["trial"] == chosen} for s in summaries]


def search_record(base: TrainConfig, space: Mapping[str, Sequence[Any]], validation_per_class: int,
                  rows: Sequence[Mapping[str, Any]], loss_space: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """A YAML-ready record of one method's search: where it ran, the grids, every trial and the choice.

    ``chosen`` holds TrainConfig fields: the training fields of ``space`` and, with a ``loss_space``,
    ``loss_params`` with the chosen loss weights.
    """
    points = grid_points(rows)
    chosen = next(p for p in points if p["chosen"])
    recipe = {k: chosen[k] for k in space}
    if loss_space:
        recipe["loss_params"] = {k: chosen[k] for k in loss_space}
    return {
        "loss": base.loss,
        "bits": base.bits,
        "validation_per_class": validation_per_class,
        "space": {k: list(v) for k, v in space.items()},
        "loss_space": {k: list(v) for k, v in (loss_space or {}).items()},
        "trials": [dict(r) for r in rows],
        "chosen": recipe,
        "chosen_val_map": chosen["val_map"],
        "chosen_val_map_std": chosen["val_map_std"],
        "excluded": {p["trial"]: p["excluded"] for p in points if p["excluded"]},
    }
