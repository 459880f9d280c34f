"""How long a parameter set's training takes on one device, estimated from one short timing per kind of run.

A study (notebooks 02 and 05 of a params set) trains hundreds of runs but few *kinds* of run: runs that
differ only in seed, code length, learning rate, loss weights, epochs or evaluation schedule cost the same
per training image and per encoded image. :func:`study_runs` lists every run, :func:`run_kind` names
what sets a run's cost (:data:`COST_FIELDS`), :func:`time_kind` trains one run of a kind for two epochs
on a smaller split and times its second epoch and its evaluation, and :func:`estimate` scales those
timings to each run's own sizes and sums them.

What the estimate assumes (hhlib's, stated with every result): training time is linear in the training
images and an evaluation's time is linear in the images it encodes (queries + database; the Hamming
ranking, linear in the database too, is part of it); runs train one after another on one device; a kind
is timed at the code length of its first run (the code length changes only the hash layer and the loss's
matrices). What it leaves out: notebooks 01, 03, 04 and 06 (no training on the device; minutes on a CPU)
and ``make search``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hhlib import artifacts, params

# the TrainConfig fields that set what one training image or one encoded image costs
COST_FIELDS = ("dataset", "img_size", "preset", "model_overrides", "pretrained", "loss", "batch_size", "amp",
               "eval_batch_size", "device", "num_threads", "num_workers", "transform_params")
SPLIT_FIELDS = ("dataset", "data_dir", "split_seed", "img_size", "query_per_class", "train_per_class", "database_limit")
TIMED_EPOCHS = 2  # the first epoch carries the warm-up (allocations, cuDNN autotuning); the second is timed


def study_runs(param_set: str, params_dir: str | Path | None = None,
               notebooks_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every training run of notebooks 02 and 05 of a parameter set, as TrainConfig fields plus ``stage``.

    Both notebooks train each of their configurations once per seed (``seeds``). Paths (``data_dir``, ``pretrained``) are resolved as the notebooks resolve them.

    Raises:
        ParamsError: the parameter set does not validate (every problem, with the fix).
    """
    effective = params.check_params(param_set, params_dir, notebooks_dir)
    runs = []
    for stage in params.TRAINING_STAGES:
        if stage not in effective:
            continue
        values = effective[stage]
        seeds = values.get("seeds") or [0]
        stage_runs = [{**run, "seed": seed} for run in params.training_runs(stage, values) for seed in seeds]
        runs += [{**_resolved_paths(run, notebooks_dir), "stage": stage} for run in stage_runs]
    return runs


def _resolved_paths(run: Mapping[str, Any], notebooks_dir: str | Path | None) -> dict[str, Any]:
    resolved = dict(run)
    for key in ("data_dir", "pretrained"):
        if resolved.get(key) is not None:
            resolved[key] = str(params.resolve_path(resolved[key], notebooks_dir))
    return resolved


def run_kind(run: Mapping[str, Any]) -> str:
    """The key of the runs that cost the same per image: their :data:`COST_FIELDS`, as sorted JSON."""
    return json.dumps({name: run.get(name) for name in COST_FIELDS}, sort_keys=True, default=str)


def evaluation_count(epochs: int, eval_every: int | None) -> int:
    """How many evaluations a run of ``epochs`` makes (hhlib.train: every ``eval_every`` epochs and after the last)."""
    if not eval_every:
        return 1
    return epochs // eval_every + (1 if epochs % eval_every else 0)


def split_sizes(run: Mapping[str, Any], cache: dict[str, dict[str, int]] | None = None) -> dict[str, int]:
    """The run's query, training and database image counts (its split is loaded once per distinct split)."""
    from hhlib.data import load_splits

    key = json.dumps({name: run.get(name) for name in SPLIT_FIELDS}, sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    splits = load_splits(run["dataset"], run.get("data_dir"), seed=run.get("split_seed", 0), img_size=run.get("img_size"),
                         query_per_class=run.get("query_per_class"), train_per_class=run.get("train_per_class"),
                         database_limit=run.get("database_limit"))
    sizes = {"query": len(splits.query), "train": len(splits.train), "database": len(splits.database)}
    if cache is not None:
        cache[key] = sizes
    return sizes


def run_fields(run: Mapping[str, Any], out_dir: str | Path, run_name: str) -> dict[str, Any]:
    """A :func:`study_runs` entry as TrainConfig fields for a fresh, quiet run of its own in ``out_dir``."""
    return {**{k: v for k, v in run.items() if k != "stage"}, "out_dir": str(out_dir), "run_name": run_name,
            "resume": False, "progress": False}


def timing_run(run: Mapping[str, Any], out_dir: str | Path, run_name: str, train_per_class: int,
               database_limit: int) -> dict[str, Any]:
    """The run, shrunk for timing: two epochs, one evaluation after the second, a smaller training set and database."""
    return {**run_fields(run, out_dir, run_name), "epochs": TIMED_EPOCHS, "eval_every": TIMED_EPOCHS,
            "train_per_class": _smaller(run.get("train_per_class"), train_per_class),
            "database_limit": _smaller(run.get("database_limit"), database_limit)}


def _smaller(value: int | None, limit: int) -> int:
    return limit if value is None else min(value, limit)


def time_kind(run: Mapping[str, Any], sizes_cache: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Train a timing run (:func:`timing_run`) and return seconds per training image and per encoded image.

    The training rate is the second epoch's (the first carries the warm-up); the evaluation is the one after it.
    """
    from hhlib.train import TrainConfig, fit

    config = TrainConfig.from_dict(dict(run))
    with warnings.catch_warnings():  # two epochs may end in collapsed codes: irrelevant to a timing
        warnings.simplefilter("ignore", RuntimeWarning)
        fit(config)
    history = artifacts.read_jsonl(config.run_dir / artifacts.METRICS_LOG_FILE)
    timed = history[-1]
    sizes = split_sizes(run, sizes_cache)
    encoded = sizes["query"] + sizes["database"]
    return {"seconds_per_train_image": timed["seconds"] / sizes["train"],
            "seconds_per_encoded_image": timed["eval_seconds"] / encoded,
            "timed_train_images": sizes["train"], "timed_encoded_images": encoded,
            "epoch_seconds": round(timed["seconds"], 3), "eval_seconds": round(timed["eval_seconds"], 3)}


def run_seconds(run: Mapping[str, Any], sizes: Mapping[str, int], timing: Mapping[str, float]) -> dict[str, float]:
    """One run's estimated training and evaluation seconds at its own sizes, epochs and evaluation schedule."""
    evaluations = evaluation_count(run["epochs"], run.get("eval_every"))
    return {"train": run["epochs"] * sizes["train"] * timing["seconds_per_train_image"],
            "eval": evaluations * (sizes["query"] + sizes["database"]) * timing["seconds_per_encoded_image"]}


def estimate(runs: Sequence[Mapping[str, Any]], timings: Mapping[str, Mapping[str, float]],
             sizes_of: Callable[[Mapping[str, Any]], Mapping[str, int]]) -> dict[str, Any]:
    """Sum :func:`run_seconds` over the runs, per stage and in all; runs of an untimed kind are counted apart."""
    stages: dict[str, dict[str, Any]] = {}
    untimed: dict[str, int] = {}
    for run in runs:
        stage = stages.setdefault(run["stage"], {"runs": 0, "train_seconds": 0.0, "eval_seconds": 0.0})
        timing = timings.get(run_kind(run))
        if timing is None or "error" in timing:
            untimed[run["stage"]] = untimed.get(run["stage"], 0) + 1
            continue
        seconds = run_seconds(run, sizes_of(run), timing)
        stage["runs"] += 1
        stage["train_seconds"] += seconds["train"]
        stage["eval_seconds"] += seconds["eval"]
    for stage in stages.values():
        stage["hours"] = round((stage["train_seconds"] + stage["eval_seconds"]) / 3600, 2)
        stage["train_seconds"], stage["eval_seconds"] = round(stage["train_seconds"], 1), round(stage["eval_seconds"], 1)
    total = sum(stage["train_seconds"] + stage["eval_seconds"] for stage in stages.values())
    return {"stages": stages, "total_hours": round(total / 3600, 2), "untimed_runs": untimed}


def measure_study_time(param_set: str, out_dir: str | Path, *, device: str | None = None, data_dir: str | None = None,
                       train_per_class: int = 200, database_limit: int = 16_000, max_kinds: int | None = None,
                       runs: Sequence[Mapping[str, Any]] | None = None, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Time one run of each kind of a parameter set's study and estimate the whole study's training time.

    Args:
        param_set: folder under params/.
        out_dir: where the timing runs write (a scratch folder).
        device: overrides the runs' ``device`` (e.g. ``"cpu"`` for a dry run); None keeps theirs.
        data_dir: overrides the runs' ``data_dir``; None keeps theirs.
        train_per_class, database_limit: the timing runs' smaller training set and database (hhlib's choice:
            enough steps and images to time, a fraction of the full sizes).
        max_kinds: time at most this many kinds (None: all); the runs of the others count as untimed.
        runs: the set's :func:`study_runs`, listed beforehand (on a machine without papermill, which reading the
            notebooks' parameters needs); None lists them here.
        report: called with one progress line per timed kind.

    Returns:
        ``{"param_set", "kinds": [{"kind", "runs", "example", timings or "error"}], "estimate": estimate(),
        "timing_sizes", "assumptions"}``. A kind whose timing run fails keeps its error; its runs are
        counted in ``estimate["untimed_runs"]``.
    """
    overrides = {k: v for k, v in (("device", device), ("data_dir", data_dir)) if v is not None}
    runs = [{**run, **overrides} for run in (study_runs(param_set) if runs is None else runs)]
    kinds: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        kinds.setdefault(run_kind(run), []).append(run)
    sizes_cache: dict[str, dict[str, int]] = {}
    timings, rows = {}, []
    for index, (kind, members) in enumerate(list(kinds.items())[:max_kinds]):
        label = _label(members[0])
        timed = timing_run(members[0], out_dir, f"kind{index:02d}", train_per_class, database_limit)
        if index == 0:
            _guarded(lambda: time_kind({**timed, "run_name": "warmup"}, sizes_cache))  # JIT and autotuning, discarded
        timings[kind] = _guarded(lambda: time_kind(timed, sizes_cache))
        rows.append({"kind": json.loads(kind), "runs": len(members), "example": label, **timings[kind]})
        report(f"kind {index + 1}/{len(kinds)} ({len(members)} runs, e.g. {label}): "
               f"{timings[kind].get('epoch_seconds', timings[kind].get('error'))} s per timed epoch")
    result = estimate(runs, timings, lambda run: split_sizes(run, sizes_cache))
    return {"param_set": param_set, "kinds": rows, "estimate": result,
            "timing_sizes": {"train_per_class": train_per_class, "database_limit": database_limit,
                             "epochs": TIMED_EPOCHS},
            "assumptions": "training time linear in training images, evaluation time linear in encoded images "
                           "(queries + database); runs one after another on one device; each kind timed once, "
                           "at its first run's code length; notebooks 01/03/04/06 and make search left out"}


def _label(run: Mapping[str, Any]) -> str:
    """A run's name for the progress lines and the report (notebook 02's runs have none of their own)."""
    return run.get("run_name") or f"{run['stage']}_{run['loss']}_{run['bits']}_seed{run['seed']}"


def _guarded(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A timing, or {"error": ...} so that one kind that fails leaves the others' timings."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001 (a lent machine's run must report what it has)
        return {"error": f"{type(error).__name__}: {error}"}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hhlib.study_time SET FILE``: write the set's :func:`study_runs` as JSON (for a machine without papermill)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m hhlib.study_time SET FILE  (writes params/SET's training runs as JSON)", file=sys.stderr)
        return 2
    runs = study_runs(args[0])
    Path(args[1]).write_text(json.dumps(runs, indent=1, default=str) + "\n")
    print(f"wrote {len(runs)} runs of {args[0]} to {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
