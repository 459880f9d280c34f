"""The study's recorded search: one equal-budget search per compared method and backbone.

``make search DATASET=<set>`` (``python -m hhlib.tuning <set>``) reads ``params/<set>/search.yaml``
(the grid, the validation protocol, the search seeds, the code length and which runs of notebook 05
to search), starts every search from notebook 05's training recipe (``params/<set>/05_ablations.yaml``),
trains each grid point on the validation protocol (hhlib.validation: never the query set) and
writes ``params/<set>/search_results.yaml``: every trial and the chosen recipe per run. The search
has two stages (hhlib.search): the grid of training fields (``space``), then, at each run's choice,
its loss's weight grid (``loss_space``: the same number of points for every loss that has weights). Notebook 05
reads that file (its ``search_results`` parameter): each method and backbone then trains with its own
chosen recipe, and the ablations of the paper's network (variant, block-token kernel, alpha, token
layout) with the paper's method's. Every method gets the same grid; the paper's loss gets no more.
A finished trial is read back from its run folder, so an interrupted search resumes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hhlib import artifacts, parallel, params, search
from hhlib.train import TrainConfig

__all__ = ["RESULTS_FILE", "SEARCH_FILE", "load_recipes", "load_search_params", "main", "run_study_search", "search_bases",
           "search_summary"]

SEARCH_FILE = "search.yaml"
RESULTS_FILE = "search_results.yaml"
SEARCH_KEYS = ("validation_per_class", "seeds", "bits", "space", "loss_space", "losses", "backbones")


def load_search_params(param_set: str, params_dir: str | Path | None = None) -> dict[str, Any]:
    """Read and check ``params/<set>/search.yaml``.

    Raises:
        FileNotFoundError: no search file for the set (says what it holds).
        params.ParamsError: unknown or missing keys, or an invalid grid.
    """
    path = Path(params_dir or params.PARAMS_DIR) / param_set / SEARCH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write it with the keys {list(SEARCH_KEYS)} "
                                f"(see params/fashion_mnist/{SEARCH_FILE})")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems = [f"{path}: {key}: missing" for key in SEARCH_KEYS if key not in values]
    problems += [f"{path}: {key}: unknown key (valid: {list(SEARCH_KEYS)})" for key in values if key not in SEARCH_KEYS]
    if not problems:
        try:
            search.expand_grid(values["space"])
        except ValueError as error:
            problems.append(f"{path}: space: {error}")
        problems += [f"{path}: loss_space: {problem}" for problem in _loss_space_problems(values)]
    if problems:
        raise params.ParamsError(problems)
    return values


def _loss_space_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with ``loss_space``: a searched loss missing, a bad grid, or grids of unequal size."""
    loss_space = values["loss_space"]
    if not isinstance(loss_space, dict):
        return [f"must map each searched loss to its weight grid, e.g. {{\"dch\": {{\"quantization_weight\": [0.01, 0.1, 1]}}}}"]
    problems = [f"{loss}: missing (write {{}} for a loss with no weight to search)"
                for loss in ["wml", *values["losses"]] if loss not in loss_space]
    sizes = {}
    for loss, grid in loss_space.items():
        if not isinstance(grid, dict):
            problems.append(f"{loss}: must map each loss weight to its list of values, got {grid!r}")
            continue
        try:
            points = search.expand_loss_grid(loss, grid)
        except (KeyError, ValueError) as error:
            problems.append(str(error).strip('"'))
            continue
        if points:
            sizes[loss] = len(points)
    if len(set(sizes.values())) > 1:
        problems.append(f"every loss needs the same number of weight points (the same budget), got {sizes}")
    return problems


def _checked_loss_spaces(bases: list[tuple[str, TrainConfig]], loss_space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run name -> its loss's weight grid, each holding the weights the run trains with by default.

    Raises:
        params.ParamsError: a run's loss has no grid (e.g. a system's), or a grid misses the default.
    """
    problems, spaces = [], {}
    for name, base in bases:
        if base.loss not in loss_space:
            problems.append(f"loss_space: {base.loss}: missing, needed by {name} (write {{}} for no weight to search)")
            continue
        spaces[name] = loss_space[base.loss]
        for weight, value in search.default_loss_point(base, spaces[name]).items():
            if value not in spaces[name][weight]:
                problems.append(f"loss_space: {base.loss}: {weight}: {spaces[name][weight]} must include the value "
                                f"{name} trains with, {value!r} (the first stage trains it)")
    if problems:
        raise params.ParamsError(problems)
    return spaces


def search_bases(param_set: str, params_dir: str | Path | None = None) -> list[tuple[str, TrainConfig]]:
    """The runs to search: ``(notebook 05 run name, its config at the search's code length)``.

    The paper's method, the losses and backbones of ``search.yaml``, and every system of notebook 05
    (each brings its own network, so each needs its own recipe: notebook 05 refuses searched results
    that miss one).
    """
    settings = load_search_params(param_set, params_dir)
    stage = params.check_params(param_set, params_dir)["05_ablations"]
    plan = params.ablation_plan([settings["bits"]], losses=["wml", *settings["losses"]],
                                backbones=["hybridhash", *settings["backbones"]],
                                model_overrides=stage["model_overrides"], loss_params=stage["loss_params"],
                                systems=stage.get("systems"))
    out_dir = str(params.resolve_path(stage["out_dir"]))
    return [(run["labels"]["name"],
             TrainConfig(**{**params.train_recipe(stage, exclude=run["train"]), **run["train"], "out_dir": out_dir,
                            "run_name": None}))
            for run in plan]


def run_study_search(param_set: str, params_dir: str | Path | None = None) -> Path:
    """Search every run of ``search.yaml`` and write ``search_results.yaml``.

    Both stages train through :func:`hhlib.parallel.fit_runs` with notebook 05's ``parallel_runs``: first
    every run's ``space`` grid, then every run's loss-weight points at its first choice. Each trial keeps
    its run folder, so an interrupted search resumes.

    Returns:
        The written results file.
    """
    settings = load_search_params(param_set, params_dir)
    results_path = Path(params_dir or params.PARAMS_DIR) / param_set / RESULTS_FILE
    bases = search_bases(param_set, params_dir)
    loss_spaces = _checked_loss_spaces(bases, settings["loss_space"])
    parallel_runs = params.check_params(param_set, params_dir)["05_ablations"].get("parallel_runs", 1)
    rows = search.search_stages({name: (base, loss_spaces[name]) for name, base in bases}, settings["space"],
                                settings["validation_per_class"], settings["seeds"],
                                lambda stage, trials: _train_stage(param_set, stage, trials, parallel_runs))
    records = {name: search.search_record(base, settings["space"], settings["validation_per_class"], rows[name],
                                          loss_spaces[name])
               for name, base in bases}
    text = yaml.safe_dump(artifacts.json_ready(records), sort_keys=False)
    artifacts.atomic_write(results_path, lambda handle: handle.write(text.encode("utf-8")))
    return results_path


def _train_stage(param_set: str, stage: str, trials: dict[str, list], parallel_runs: int) -> dict[str, list[dict[str, Any]]]:
    """Train one stage's trials of every run, ``parallel_runs`` at a time; run name -> its trial rows."""
    configs = [config for runs in trials.values() for _, _, config in runs]
    print(f"hhlib.tuning: {param_set}: {stage}: {len(configs)} trials of {len(trials)} runs, {parallel_runs} at a time "
          "(finished trials are read back)", flush=True)
    results = iter(parallel.fit_runs(configs, parallel_runs))
    return {name: search.trial_rows(runs, [next(results) for _ in runs]) for name, runs in trials.items()}


def _search_records(path: str | Path) -> dict[str, dict[str, Any]]:
    """The records of a ``search_results.yaml``, by notebook 05 run name.

    Raises:
        FileNotFoundError: the file does not exist (says how to make it).
    """
    path = params.resolve_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `make search DATASET=<set>` first, or set search_results: null")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_recipes(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Notebook 05 run name -> the chosen training fields, from a ``search_results.yaml`` (None: no recipes).

    Raises:
        FileNotFoundError: the file does not exist (says how to make it).
    """
    if path is None:
        return {}
    return {name: dict(record["chosen"]) for name, record in _search_records(path).items()}


def search_summary(path: str | Path | None, names: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Notebook 05 run name -> its search's grid points, for ``metrics.json`` (None: no search, ``{}``).

    Each point: ``{"trial", **training-field values, "loss_params" (its loss weights, with a weight grid),
    "val_map" (mean over search seeds), "collapsed", "excluded" (hhlib.search's reason, or None), "chosen"}``;
    hhlib.readings.search_readings explains every choice that is not the best validation trial and every
    loss weight the search moved from its default.

    Args:
        path: a ``search_results.yaml`` (None: no search).
        names: the run names the rendering trained (None: every searched run); the searches of runs
            it did not train (e.g. ``make converged CONVERGED=doubled`` trains five) are left out.

    Raises:
        FileNotFoundError: the file does not exist (says how to make it).
    """
    if path is None:
        return {}
    summary = {}
    for name, record in _search_records(path).items():
        if names is not None and name not in names:
            continue
        weights = record.get("loss_space", {})  # records written before the weight stage have none
        summary[name] = [{"trial": p["trial"], **{k: p[k] for k in record["space"]},
                          **({"loss_params": {k: p[k] for k in weights}} if weights else {}), "val_map": p["val_map"],
                          "collapsed": p["collapsed"], "excluded": p["excluded"], "chosen": p["chosen"]}
                         for p in search.grid_points(record["trials"])]
    return summary


def main(argv: Sequence[str]) -> int:
    """Command line: ``python -m hhlib.tuning <set>`` (exit 0 = searched and written)."""
    if len(argv) != 1:
        print("usage: python -m hhlib.tuning <set>   (reads params/<set>/search.yaml)", file=sys.stderr)
        return 2
    try:
        path = run_study_search(argv[0])
    except (params.ParamsError, FileNotFoundError, ValueError) as error:
        print(f"hhlib.tuning: {argv[0]}: {error}", file=sys.stderr)
        return 1
    print(f"hhlib.tuning: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
