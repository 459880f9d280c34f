"""The ``hhlib`` console command: train, evaluate, check a parameter set, build and search an index.

    hhlib train params/fashion_mnist/02_train.yaml [key=value ...]
    hhlib evaluate outputs/fashion_mnist/checkpoints/wml_32
    hhlib check fashion_mnist
    hhlib index build <image folder | dataset name> --model <run> --out <index folder>
    hhlib search <index folder> <image> -k 10
    torchrun --nproc_per_node 4 -m hhlib train params/cifar10/02_train.yaml bits=64 seeds=[0]

This is the only module of hhlib that parses a command line (the library itself takes arguments);
every command is a thin call into hhlib. ``hhlib train`` reads either a notebook-02 parameter file
(``params/<set>/02_train.yaml``: ``bits_list`` and ``seeds`` give one run per code length and
seed, and relative paths are relative to notebooks/, as under papermill) or a plain file of
TrainConfig fields (one run, paths relative to the current folder). ``key=value`` overrides are
parsed as YAML: ``bits=32`` or ``seed=1`` picks one run, ``bits_list=[16,64]`` several.
Exit status: 0 done, 1 a problem with the data or files, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = ["main", "train_configs"]

PATH_KEYS = ("out_dir", "data_dir", "pretrained")


class UsageError(ValueError):
    """A command line or parameter file that cannot run (exit status 2)."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["bits=32", "model_overrides={depths: [1, 1, 2]}"]`` -> a dict of YAML-parsed values.

    Raises:
        UsageError: an item without ``=``.
    """
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"override {item!r} is not key=value: write e.g. bits=32 or seeds=[0,1]")
        values[key.strip()] = yaml.safe_load(text)
    return values


def _chosen(values: dict[str, Any], one: str, many: str) -> list[dict[str, Any]]:
    """Pop a looped key: ``one`` (e.g. bits=32) picks a single value, else each value of the list ``many``.

    Returns:
        ``[{one: value}, ...]``, or ``[{}]`` when neither key is given (TrainConfig's default).

    Raises:
        UsageError: ``many`` is not a non-empty list.
    """
    listed = values.pop(many, None)
    if one in values:
        return [{one: values.pop(one)}]
    if listed is None:
        return [{}]
    if not isinstance(listed, list) or not listed:
        raise UsageError(f"{many} must be a non-empty list, e.g. {many}=[16, 32]; got {listed!r}")
    return [{one: value} for value in listed]


def train_configs(path: str | Path, overrides: dict[str, Any]) -> list:
    """The TrainConfigs a parameter file and overrides describe, one per code length x seed.

    Args:
        path: a notebook-02 parameter file (has ``bits_list``; with its folder's shared.yaml merged in,
            as papermill gets them) or a file of TrainConfig fields.
        overrides: values that replace the file's (``bits``/``seed`` pick one run).

    Returns:
        A list of validated :class:`hhlib.train.TrainConfig`.

    Raises:
        UsageError: the file is missing or is not a mapping, or a looped key is not a list.
        hhlib.train.ConfigError: unknown keys or bad values (names the key and the fix).
    """
    from hhlib.params import resolve_path, stage_values
    from hhlib.train import TrainConfig

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such parameter file: pass e.g. params/fashion_mnist/02_train.yaml")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise UsageError(f"{path}: expected a mapping of parameter: value, got {type(values).__name__}")
    values = stage_values(path, values)
    notebook_file = "bits_list" in values
    values.update(overrides)
    if notebook_file:
        for key in PATH_KEYS:  # written for papermill's --cwd notebooks; overrides are relative to here
            if key not in overrides and values.get(key) not in (None, "timm"):
                values[key] = str(resolve_path(values[key]))
    values.pop("parallel_runs", None)  # the notebooks' run scheduling: `hhlib train` trains its runs one after another
    code_lengths, seeds = _chosen(values, "bits", "bits_list"), _chosen(values, "seed", "seeds")
    return [TrainConfig.from_dict({**values, **bits, **seed}) for bits in code_lengths for seed in seeds]


def _train(args: argparse.Namespace) -> int:
    import torch

    from hhlib.train import fit

    overrides = parse_overrides(args.overrides)
    configs = train_configs(args.params, overrides)
    if "progress" not in overrides and not sys.stderr.isatty():
        # bars are for a person at a terminal; logs and CI get the per-epoch log lines only
        configs = [dataclasses.replace(config, progress=False) for config in configs]
    try:
        for config in configs:
            result = fit(config)
            if result is not None:  # rank 0 under torchrun
                print(json.dumps(result.summary(), indent=2))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hhlib import artifacts
    from hhlib.evaluate import evaluate

    run = Path(args.run)
    codes = artifacts.load_codes(run / artifacts.CODES_FILE)
    result_path = run / artifacts.RESULT_FILE
    topk = args.topk or (artifacts.read_json(result_path)["topk"] if result_path.is_file() else None)
    report = evaluate(codes["query_codes"], codes["database_codes"], codes["query_labels"],
                      codes["database_labels"], topk=topk)
    keys = ("map", "map_tie_aware", "topk", "precision_within_radius", "mean_returned_within_radius", "radius",
            "n_query", "n_database", "bits", "tie_rule")
    print(json.dumps({key: report[key] for key in keys}, indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from hhlib import params

    return params.main(["check", *args.sets])


def _index_build(args: argparse.Namespace) -> int:
    from hhlib import retrieval
    from hhlib.data import DATASETS

    source = Path(args.source)
    if source.is_dir():
        index = retrieval.build_folder_index(source, args.model, args.device)
    elif args.source in DATASETS:
        index = retrieval.build_dataset_index(args.source, args.model)
    else:
        raise UsageError(f"{args.source} is neither a folder of images nor a dataset name ({', '.join(DATASETS)})")
    folder = retrieval.save_index(index, args.out, args.model)
    print(f"{folder}: {len(index)} images, {index.bits}-bit codes")
    return 0


def _search(args: argparse.Namespace) -> int:
    from hhlib import retrieval

    result = retrieval.search_image(args.index, args.image, args.k, args.device)
    print(json.dumps(result.to_dict(), indent=2) if args.json else "\n".join(result.describe()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hhlib`` command."""
    parser = argparse.ArgumentParser(prog="hhlib", description="HybridHash deep hashing: train, evaluate, retrieve.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train every code length x seed of a parameter file, or the chosen ones")
    train.add_argument("params", help="params/<set>/02_train.yaml, or a YAML file of TrainConfig fields")
    train.add_argument("overrides", nargs="*", help="key=value (YAML values), e.g. bits=32 seeds=[0] epochs=2")
    train.set_defaults(handler=_train)
    evaluate = commands.add_parser("evaluate", help="mAP of a finished run from its saved codes")
    evaluate.add_argument("run", help="a run folder: <out_dir>/<dataset>/checkpoints/<run name>")
    evaluate.add_argument("--topk", type=int, default=None, help="mAP cut-off (default: the run's)")
    evaluate.set_defaults(handler=_evaluate)
    check = commands.add_parser("check", help="validate parameter sets and their data before any work")
    check.add_argument("sets", nargs="+", help="folders of params/, e.g. fashion_mnist")
    check.set_defaults(handler=_check)
    index = commands.add_parser("index", help="retrieval indexes").add_subparsers(dest="action", required=True)
    build = index.add_parser("build", help="encode images with a run's network into an exact Hamming index")
    build.add_argument("source", help="a folder of images, or the run's dataset name (its database split)")
    build.add_argument("--model", required=True, help="the run folder whose network encodes the images")
    build.add_argument("--out", required=True, help="the index folder to write")
    build.add_argument("--device", default="auto")
    build.set_defaults(handler=_index_build)
    search = commands.add_parser("search", help="top-k of an image in an index, with distances and ties")
    search.add_argument("index", help="an index folder written by `hhlib index build`")
    search.add_argument("image", help="the query image file")
    search.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    search.add_argument("--device", default="auto")
    search.set_defaults(handler=_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``hhlib`` command; return the exit status (0 done, 1 files/data problem, 2 usage)."""
    from hhlib.train import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ConfigError) as error:
        print(f"hhlib {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"hhlib {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
