"""The parameter files of the executable paper: loading and validating params/<set>/{shared,<NN_stage>}.yaml.

``make reproduce DATASET=x`` runs each notebook of notebooks/ with papermill and
``-f params/x/shared.yaml -f params/x/<stage>.yaml``: shared.yaml holds once the keys the image stages
must agree on (``SHARED_KEYS``), and goes to every stage whose notebook declares all of them
(:func:`shared_stages`: 01-05; 06 sets its few shared keys itself); a stage file holds only its own keys
(05 may set its own ``database_limit``). Papermill injects any key it is given, so a typo or a wrong type
would only surface minutes or hours later (or never: "Passed unknown parameter"). This module
checks every file before any work starts:

- every key is a parameter of that notebook's ``parameters`` cell (read with
  ``papermill.inspect_notebook``, no kernel started);
- every value has the type of the cell's default (an int where the default is an int, a float or
  int where it is a float, a list where it is a list...). ``None`` is accepted where the default is
  None or the parameter's comment says what None means (``# ... (None: all)``; comments hold no
  ``=``, since papermill's inspector skips a line with two);
- values are valid for hhlib: dataset, preset, losses, variants, backbones and token layouts are
  registry names, code lengths are positive ints, sizes/epochs positive;
- shared.yaml holds only shared keys, and no stage file repeats one of them;
- the stages of one set agree: same dataset, data_dir, out_dir, split_seed, image size and split sizes,
  and the code lengths evaluated were trained.

:func:`check_dataset_ready` adds the data check (``hhlib.data.check_data``) and the pretrained
weights' presence, so that a missing dataset stops the run with a message saying where the
files must be and how to get them. Command line (no argparse): ``python -m hhlib.params check <set>``.
Paper: HybridHash (ICMR 2024, arXiv 2405.07524); the paper's values live in params/, not here.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "NOTEBOOKS_DIR",
    "PARAMS_DIR",
    "STAGES",
    "check_overlay",
    "ParamsError",
    "ablation_plan",
    "check_dataset_ready",
    "check_params",
    "list_param_sets",
    "load_params",
    "load_shared",
    "main",
    "notebook_parameters",
    "resolve_path",
    "shared_stages",
    "stage_files",
    "stage_values",
    "validate_params",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = REPO_ROOT / "params"  # params/<set>/<stage>.yaml
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"  # notebooks/<stage>.ipynb; also papermill's --cwd
STAGES = ("01_prepare_data", "02_train", "03_evaluate", "04_tsne", "05_ablations", "06_text_hashing")
# keys that, when two stages of one set both have them, must hold the same value; params/<set>/shared.yaml
# holds them once for every stage whose notebook declares all of them (:func:`shared_stages`)
SHARED_KEYS = ("dataset", "data_dir", "out_dir", "split_seed", "img_size", "query_per_class", "train_per_class", "database_limit")
SHARED_FILE = "shared.yaml"
# 05_ablations trains and evaluates its own runs, so it may rank against a smaller database than 01-04:
# its stage file may set these keys over shared.yaml's value
STAGE_OWN_KEYS = {"05_ablations": ("database_limit",)}


class ParamsError(ValueError):
    """One or more problems in the parameter files; the message lists each as ``file: key: problem: fix``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the parameter files:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def notebook_parameters(stage: str, notebooks_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Read a notebook's ``parameters`` cell without running it.

    Args:
        stage: notebook stem, e.g. ``"02_train"``.
        notebooks_dir: folder of the notebooks (None = the repository's notebooks/).

    Returns:
        name -> ``{"default": python value, "source": default as written, "help": the comment,
        "nullable": None accepted (default None, or "(None: ...)" in the comment)}``, in cell order.

    Raises:
        FileNotFoundError: no such notebook.
        ParamsError: no parameters cell, or a default that is not a literal.
    """
    import papermill  # imported here: papermill pulls in nbclient/jupyter, slow and only needed to inspect

    path = Path(notebooks_dir or NOTEBOOKS_DIR) / f"{stage}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"notebook {_relative(path)} not found: stages are {', '.join(STAGES)}")
    found = papermill.inspect_notebook(str(path))
    if not found:
        raise ParamsError([f"{_relative(path)}: no cell tagged 'parameters': tag the first code cell 'parameters'"])
    result = {}
    problems = []
    for name, info in found.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            problems.append(f"{_relative(path)}: {name}: default {info['default']!r} is not a literal: "
                            "the parameters cell holds literals only (style.md); derive values in the resolve cell")
            continue
        help_text = info.get("help") or ""
        result[name] = {
            "default": default,
            "source": info["default"],
            "help": help_text,
            "nullable": default is None or "(None:" in help_text,
        }
    if problems:
        raise ParamsError(problems)
    return result


def _type_problem(value: Any, default: Any, nullable: bool) -> str | None:
    """Why ``value`` may not replace ``default`` (None = it may)."""
    if value is None:
        return None if nullable else "is null but the notebook's parameter takes no None: give a value"
    if default is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if ok:
        return None
    return f"is {type(value).__name__} {value!r} but the notebook's default is {type(default).__name__} {default!r}: write a {type(default).__name__}"


def _positive_int(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return None
    return f"must be a positive int, got {value!r}"


def _non_negative_int(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return None
    return f"must be an int >= 0, got {value!r}"


def _positive_number(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return None
    return f"must be a positive number, got {value!r}"


def _non_negative_number(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return None
    return f"must be a number >= 0, got {value!r}"


def _list_of(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def checker(values: Any) -> str | None:
        if not isinstance(values, (list, tuple)) or not values:
            return f"must be a non-empty list, got {values!r}"
        for item in values:
            problem = check(item)
            if problem:
                return f"item {item!r}: {problem}"
        return None

    return checker


def _registry(names_of: Callable[[], Mapping], what: str) -> Callable[[Any], str | None]:
    def checker(value: Any) -> str | None:
        names = names_of()
        if value in names:
            return None
        return f"unknown {what} {value!r}: valid names are {', '.join(map(str, names))}"

    return checker


def _existing_file(fix: str) -> Callable[[Any], str | None]:
    """A check that a path (relative to notebooks/) names an existing file; ``fix`` says how to get it."""
    return lambda value: None if resolve_path(value).is_file() else f"{value!r} does not exist: {fix}"


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else check(value)


def _datasets() -> Mapping:
    from hhlib.data import DATASETS

    return DATASETS


def _presets() -> Mapping:
    from hhlib.model import PRESETS

    return PRESETS


def _losses() -> Mapping:
    from hhlib.losses import LOSSES

    return LOSSES


def _variants() -> Mapping:
    from hhlib.model import VARIANTS

    return VARIANTS


def _backbones() -> Mapping:
    from hhlib.model import BACKBONES

    return BACKBONES


def _token_layouts() -> Mapping:
    from hhlib.model import TOKEN_LAYOUTS

    return TOKEN_LAYOUTS


def _device(value: Any) -> str | None:
    if isinstance(value, str) and (value in ("auto", "cpu", "mps") or value.startswith("cuda")):
        return None
    return f"must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}"


def _paper_map(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"must be a mapping of code length (quoted, e.g. \"64\") to mAP, got {value!r}"
    for key, number in value.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) > 0):
            return f"key {key!r} must be a code length written as a quoted string, e.g. \"64\" (papermill passes dict keys as strings)"
        if number is not None and not (isinstance(number, (int, float)) and 0 <= number <= 1):
            return f"value {number!r} for {key} bits must be an mAP in [0, 1] or null"
    return None


# value checks by parameter name (a name absent here gets only the type check)
KEY_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "dataset": _registry(_datasets, "dataset"),
    "preset": _registry(_presets, "preset"),
    "loss": _registry(_losses, "loss"),
    "losses": _list_of(_registry(_losses, "loss")),
    "variants": _list_of(_registry(_variants, "variant")),
    "backbones": _list_of(_registry(_backbones, "backbone")),
    "token_layouts": _list_of(_registry(_token_layouts, "token layout")),
    "bits": _positive_int,
    "bits_list": _list_of(_positive_int),
    "ablation_bits_list": _list_of(_positive_int),
    "alphas": _list_of(_positive_number),
    "alpha": _positive_number,
    "block_token_kernels": _list_of(_optional(_positive_int)),
    "patch_sizes": lambda values: None if values == [] else _list_of(_positive_int)(values),  # []: no patch-size study
    "parallel_runs": _positive_int,
    "img_size": _optional(_positive_int),
    "query_per_class": _optional(_positive_int),
    "train_per_class": _optional(_positive_int),
    "database_limit": _optional(_positive_int),
    "topk": _optional(_positive_int),
    "epochs": _positive_int,
    "ablation_epochs": _positive_int,
    "batch_size": _positive_int,
    "eval_every": _optional(_non_negative_int),  # 0 = evaluate after the last epoch only (TrainConfig)
    "lr": _positive_number,
    "weight_decay": _non_negative_number,
    "warmup_epochs": _non_negative_number,
    "num_workers": _non_negative_int,
    "samples_per_class": _positive_int,
    "gallery_queries": _positive_int,
    "gallery_k": _positive_int,
    "radius": _non_negative_int,
    "precision_at": _list_of(_positive_int),
    "tsne_points": _positive_int,
    "perplexity": _positive_number,
    "split_seed": _non_negative_int,
    "seed": _non_negative_int,
    "seeds": lambda values: _list_of(_non_negative_int)(values) or (
        None if len(set(values)) == len(values) else f"repeats a seed ({values}): list each training seed once"),
    "num_threads": _optional(_positive_int),
    "device": _device,
    "paper_map": _paper_map,
    "shorter_study": _existing_file("render the study first (make reproduce DATASET=<set>), or set shorter_study: null"),
    "search_results": _existing_file("run `make search DATASET=<set>` to write it, or set search_results: null"),
    "num_sections": _positive_int,
    "text_query_per_class": _positive_int,
    "text_train_per_class": _positive_int,
    "text_database_per_class": _optional(_positive_int),
    "num_neighbors": _positive_int,
}


def validate_params(values: Mapping[str, Any], parameters: Mapping[str, Mapping[str, Any]], source: str) -> list[str]:
    """List the problems of one parameter file against its notebook's parameters cell.

    Args:
        values: the YAML's mapping.
        parameters: :func:`notebook_parameters` of the notebook it feeds.
        source: the file's name, put in front of every problem.

    Returns:
        Problems as ``"<source>: <key>: <problem>: <fix>"`` (empty = valid).
    """
    problems = []
    known = ", ".join(parameters)
    for key, value in values.items():
        if key not in parameters:
            problems.append(f"{source}: {key}: not a parameter of the notebook (papermill would warn 'Passed unknown "
                            f"parameter'): remove it or use one of {known}")
            continue
        spec = parameters[key]
        problem = _type_problem(value, spec["default"], spec["nullable"])
        if problem is None and value is not None and key in KEY_CHECKS:
            problem = KEY_CHECKS[key](value)
        if problem:
            problems.append(f"{source}: {key}: {problem}")
    return problems


def list_param_sets(params_dir: str | Path | None = None) -> list[str]:
    """Names of the parameter sets (sub-folders of params/), sorted.

    Args:
        params_dir: the params folder (None = the repository's params/).

    Returns:
        Folder names, e.g. ``["cifar10", "fashion_mnist", "smoke", ...]``.
    """
    folder = Path(params_dir or PARAMS_DIR)
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _read_yaml(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError([f"{_relative(path)}: not valid YAML ({error}): fix the syntax"]) from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ParamsError([f"{_relative(path)}: holds a {type(content).__name__}, not a mapping: write `key: value` lines"])
    return content


def shared_stages(notebooks_dir: str | Path | None = None) -> tuple[str, ...]:
    """The stages that receive params/<set>/shared.yaml: those whose notebook declares every ``SHARED_KEYS`` key.

    Papermill injects every key of every ``-f`` file and warns "Passed unknown parameter" for a key
    the notebook lacks, so shared.yaml goes only to notebooks that have all of its possible keys
    (01-05; 06, the text study, declares only dataset, out_dir and split_seed and sets them itself).

    Args:
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        Stage names, in ``STAGES`` order.
    """
    return tuple(stage for stage in STAGES if set(SHARED_KEYS) <= set(notebook_parameters(stage, notebooks_dir)))


def _stage_path(param_set: str, stage: str, params_dir: str | Path | None) -> Path:
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}: valid stages are {', '.join(STAGES)}")
    path = Path(params_dir or PARAMS_DIR) / param_set / f"{stage}.yaml"
    if not path.is_file():
        sets = list_param_sets(params_dir)
        raise FileNotFoundError(
            f"{_relative(path)} not found: parameter sets are {', '.join(sets) or '(none)'}; "
            f"create params/{param_set}/{stage}.yaml (start from params/smoke/{stage}.yaml)"
        )
    return path


def stage_files(
    param_set: str, stage: str, params_dir: str | Path | None = None, notebooks_dir: str | Path | None = None
) -> list[Path]:
    """The files papermill reads for one stage, in merge order (a later file's key wins).

    Args:
        param_set: folder under params/.
        stage: notebook stem (one of ``STAGES``).
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        ``[params/<set>/shared.yaml, params/<set>/<stage>.yaml]`` for a stage of :func:`shared_stages`
        when the set has a shared.yaml; otherwise ``[params/<set>/<stage>.yaml]``.

    Raises:
        KeyError: unknown stage.
        FileNotFoundError: the stage file does not exist.
    """
    path = _stage_path(param_set, stage, params_dir)
    shared = path.parent / SHARED_FILE
    return [shared, path] if shared.is_file() and stage in shared_stages(notebooks_dir) else [path]


def load_shared(
    param_set: str, params_dir: str | Path | None = None, notebooks_dir: str | Path | None = None
) -> dict[str, Any]:
    """Read and validate params/<set>/shared.yaml ({} when the set has none).

    Every key must be one of ``SHARED_KEYS``, with a value valid for the notebooks that receive it.

    Args:
        param_set: folder under params/.
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        The file's mapping.

    Raises:
        ParamsError: a key that is not shared, or an invalid value (every problem listed).
    """
    path = Path(params_dir or PARAMS_DIR) / param_set / SHARED_FILE
    if not path.is_file():
        return {}
    values = _read_yaml(path)
    source = _relative(path)
    problems = [f"{source}: {key}: not a shared key: move it to the stage files that use it; shared keys are "
                f"{', '.join(SHARED_KEYS)}" for key in values if key not in SHARED_KEYS]
    for stage in shared_stages(notebooks_dir):
        problems += [p for p in validate_params({k: v for k, v in values.items() if k in SHARED_KEYS},
                                                notebook_parameters(stage, notebooks_dir), source) if p not in problems]
    if problems:
        raise ParamsError(problems)
    return values


def _repeated_shared_keys(stage: str, values: Mapping[str, Any], shared: Mapping[str, Any], source: str) -> list[str]:
    """A stage file may not repeat a key of shared.yaml (but a ``STAGE_OWN_KEYS`` key of its stage)."""
    allowed = STAGE_OWN_KEYS.get(stage, ())
    return [f"{source}: {key}: repeats a key of {SHARED_FILE}, which gives it to every stage: remove it here "
            f"(or change it in {SHARED_FILE})" for key in values if key in shared and key not in allowed]


def stage_values(path: str | Path, values: Mapping[str, Any]) -> dict[str, Any]:
    """A stage file's values with its folder's shared.yaml merged in, as papermill gets them (``hhlib train``).

    Args:
        path: a YAML file; only ``<folder>/<stage>.yaml`` of a stage of :func:`shared_stages` next to a
            shared.yaml gets shared values, any other file is returned as read.
        values: the file's mapping.

    Returns:
        shared.yaml's values overridden by ``values`` (a new dict).

    Raises:
        ParamsError: shared.yaml is invalid, or the stage file repeats one of its keys.
    """
    path = Path(path)
    shared_path = path.parent / SHARED_FILE
    if path.stem not in STAGES or not shared_path.is_file() or path.stem not in shared_stages():
        return dict(values)
    shared = load_shared(path.parent.name, path.parent.parent)
    problems = _repeated_shared_keys(path.stem, values, shared, _relative(path))
    if problems:
        raise ParamsError(problems)
    return {**shared, **values}


def load_params(
    param_set: str, stage: str, params_dir: str | Path | None = None, notebooks_dir: str | Path | None = None
) -> dict[str, Any]:
    """Read and validate one stage's parameters: shared.yaml's values (if the stage receives them) and its own file.

    Args:
        param_set: folder under params/ (a dataset name, or ``smoke``).
        stage: notebook stem (one of ``STAGES``).
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        The merged mapping papermill injects (only the keys the files set; the notebook's defaults
        fill the rest): shared.yaml's keys, then the stage file's (05 may set its own database_limit).

    Raises:
        KeyError: unknown stage.
        FileNotFoundError: the file does not exist (names the sets that do).
        ParamsError: invalid content, or a stage file repeating a shared key (every problem listed).
    """
    files = stage_files(param_set, stage, params_dir, notebooks_dir)
    path = files[-1]
    values = _read_yaml(path)
    problems = validate_params(values, notebook_parameters(stage, notebooks_dir), _relative(path))
    shared: dict[str, Any] = {}
    if len(files) == 2:
        try:
            shared = load_shared(param_set, params_dir, notebooks_dir)
        except ParamsError as error:
            problems += error.problems
        problems += _repeated_shared_keys(stage, values, shared, _relative(path))
    if problems:
        raise ParamsError(problems)
    return {**shared, **values}


def _effective(values: Mapping[str, Any], parameters: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The values a papermill run sees: the cell's defaults overridden by the file."""
    return {**{k: v["default"] for k, v in parameters.items()}, **values}


def check_params(
    param_set: str, params_dir: str | Path | None = None, notebooks_dir: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """Validate shared.yaml and every stage file of a parameter set, and that the stages agree with each other.

    Args:
        param_set: folder under params/ (a dataset name, or ``smoke``).
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        stage -> the effective parameters of that run (notebook defaults overridden by shared.yaml, then
        by the stage file).

    Raises:
        FileNotFoundError: a stage file is missing.
        ParamsError: every problem of every file, and disagreements between stages.
    """
    problems: list[str] = []
    effective: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        try:
            values = load_params(param_set, stage, params_dir, notebooks_dir)
        except ParamsError as error:
            problems += [p for p in error.problems if p not in problems]  # shared.yaml's once, not once per stage
            continue
        effective[stage] = _effective(values, notebook_parameters(stage, notebooks_dir))
    for key in SHARED_KEYS:
        seen = {stage: p[key] for stage, p in effective.items() if key in p and key not in STAGE_OWN_KEYS.get(stage, ())}
        if len({repr(v) for v in seen.values()}) > 1:
            problems.append(
                f"params/{param_set}: {key}: stages disagree ({', '.join(f'{s}={v!r}' for s, v in seen.items())}): "
                f"set it once in params/{param_set}/{SHARED_FILE}, and the same value in the stage files outside "
                f"{', '.join(shared_stages(notebooks_dir))} that declare it"
            )
    trained = set(effective.get("02_train", {}).get("bits_list", []) or [])
    for stage in ("03_evaluate", "04_tsne"):
        if trained and stage in effective:
            untrained = sorted(set(effective[stage].get("bits_list", []) or []) - trained)
            if untrained:
                problems.append(
                    f"params/{param_set}/{stage}.yaml: bits_list: {untrained} not trained by 02_train "
                    f"(bits_list {sorted(trained)}): evaluate only trained code lengths"
                )
    if problems:
        raise ParamsError(problems)
    return effective


def resolve_path(path: str | Path | None, notebooks_dir: str | Path | None = None) -> Path | None:
    """Resolve a path written in a parameter file the way the notebooks see it (cwd = notebooks/).

    Args:
        path: the value (absolute, ``~``, or relative to notebooks/); None stays None.
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        An absolute path, or None.
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (Path(notebooks_dir or NOTEBOOKS_DIR) / path).resolve()


def check_dataset_ready(
    param_set: str, params_dir: str | Path | None = None, notebooks_dir: str | Path | None = None,
    *, decode: bool = False,
) -> dict[str, dict[str, Any]]:
    """Validate a parameter set, every training run it describes, its dataset's files and weights before any work.

    Args:
        param_set: folder under params/ (a dataset name, or ``smoke``).
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).
        decode: decode every image of a list-file dataset (otherwise a sample per list).

    Returns:
        stage -> effective parameters (as :func:`check_params`).

    Raises:
        ParamsError: invalid parameter files, or runs that would fail (every one listed, with a data
            problem found at the same time).
        FileNotFoundError: the dataset's files are missing; the message says where they must be
            and how to get them.
        hhlib.datasets.DataError: the dataset's files are there but malformed.
        ValueError: a split cannot be drawn (a per-class count larger than a class).
    """
    from hhlib.data import check_data

    effective = check_params(param_set, params_dir, notebooks_dir)
    problems = check_training_runs(param_set, effective, notebooks_dir)
    first = effective["01_prepare_data"]
    try:
        check_data(first["dataset"], resolve_path(first.get("data_dir"), notebooks_dir), decode=decode,
                   split_options=_split_options(effective))
    except (FileNotFoundError, ValueError) as error:
        if not problems:
            raise
        problems.append(f"data: {error}")
    packages = effective.get("06_text_hashing", {}).get("packages_path")
    if packages:  # the text study reads apt's Packages lists (hhlib.text_data.CorpusError says how to get them)
        from hhlib.text_data import CorpusError, find_package_lists

        try:
            find_package_lists(packages)
        except CorpusError as error:
            problems.append(f"text corpus: {error}")
    if problems:
        raise ParamsError(problems)
    return effective


# Stages whose notebook trains, and how it turns its parameters into TrainConfigs (notebooks 02 and 05).
TRAINING_STAGES = ("02_train", "05_ablations")
# A stand-in training-set size for building losses in the check (their memory banks are sized by it;
# no loss validates it against the data), ours.
CHECK_N_TRAIN = 100


def train_recipe(values: Mapping[str, Any], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The TrainConfig fields among a stage's parameters (the notebooks' ``recipe``), less ``exclude``.

    Args:
        values: a stage's effective parameters; its lists (bits_list, seeds, losses...) are not config fields.
        exclude: field names the caller sets itself (e.g. a run's ``train`` dict of :func:`ablation_plan`).
    """
    from hhlib.train import TrainConfig

    fields = set(TrainConfig.field_names()) - set(exclude)
    return {k: v for k, v in values.items() if k in fields}


def training_runs(stage: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The TrainConfig dicts a training notebook builds from its effective parameters.

    Notebook 02 trains one model per ``bits_list`` entry with its loss, loss_params and
    model_overrides; notebook 05 expands its lists with :func:`ablation_plan`. Both pass every
    other parameter named like a TrainConfig field unchanged (the notebooks' ``recipe``).

    Args:
        stage: ``"02_train"`` or ``"05_ablations"``.
        values: the stage's effective parameters (:func:`check_params`).

    Returns:
        One dict of TrainConfig fields per run (not validated: :func:`check_training_runs` does that).

    Raises:
        KeyError: a stage that does not train, or an unknown name in 05's lists.
    """
    if stage == "02_train":
        recipe = train_recipe(values, exclude=("bits",))
        return [{**recipe, "bits": bits} for bits in values.get("bits_list") or []]
    if stage == "05_ablations":
        plan = ablation_plan(
            values.get("bits_list") or [], variants=values.get("variants", ("hybrid",)),
            block_token_kernels=values.get("block_token_kernels", (None,)), alphas=values.get("alphas", ()),
            token_layouts=values.get("token_layouts", ("paper",)), losses=values.get("losses", ("wml",)),
            backbones=values.get("backbones", ("hybridhash",)), model_overrides=values.get("model_overrides"),
            loss_params=values.get("loss_params"), systems=values.get("systems"), recipes=_recipes_if_present(values),
            patch_sizes=values.get("patch_sizes", ()),
        )
        return [{**train_recipe(values, exclude=run["train"]), **run["train"]} for run in plan]
    raise KeyError(f"stage {stage!r} trains nothing: training stages are {', '.join(TRAINING_STAGES)}")


def _recipes_if_present(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Notebook 05's searched recipes; none when the file is missing (KEY_CHECKS reports that on its own)."""
    from hhlib import tuning

    path = values.get("search_results")
    return tuning.load_recipes(path) if path is not None and resolve_path(path).is_file() else {}


# The TrainConfig fields each part of a run is built from: each part is checked on its own, so that
# one bad value does not hide the others.
RUN_PARTS = {
    "loss": ("dataset", "loss", "bits", "loss_params"),
    "transform": ("dataset", "preset", "img_size", "model_overrides", "transform_params"),
    "network": ("dataset", "preset", "bits", "loss", "img_size", "model_overrides", "pretrained"),
    "device": ("device",),
}


def _build_part(part: str, config: Any, notebooks_dir: str | Path | None) -> str | None:
    """Build one part of a run from ``config``; a problem the part itself finds, as text (None = fine)."""
    import torch

    from hhlib import losses
    from hhlib.data import get_spec
    from hhlib.pretrained import backbone_problem, plan_nest_weights
    from hhlib.runtime import resolve_device
    from hhlib.train import _build_network, _image_size
    from hhlib.transforms import build_transform

    spec = get_spec(config.dataset)
    if part == "loss":
        losses.build(config.loss, config.bits, spec.n_classes, CHECK_N_TRAIN, **config.loss_params)
    elif part == "transform":
        try:
            build_transform(spec.transform, True, _image_size(config), **config.transform_params)
        except TypeError as error:
            return f"transform_params {config.transform_params}: {error}"
    elif part == "device":
        device = resolve_device(config.device)
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            return f"device {config.device!r}: this machine has {torch.cuda.device_count()} CUDA device(s): use 'cuda:0' or 'auto'"
    elif part == "network":
        with torch.device("meta"):  # shapes only: no memory, no time
            network = _build_network(config)
        if config.pretrained is not None:
            weights = resolve_path(config.pretrained, notebooks_dir)
            if not weights.is_file():
                return (f"pretrained weights {weights} not found: put timm's nest_base_jx ImageNet-1k checkpoint "
                        "there (on a machine with internet: timm.create_model('nest_base_jx', pretrained=True) then "
                        "torch.save(model.state_dict(), path)), or set pretrained: null to train from scratch")
            return backbone_problem(plan_nest_weights(network, weights), weights)
    return None


def _run_problems(values: Mapping[str, Any], notebooks_dir: str | Path | None) -> list[str]:
    """Build one run's TrainConfig, loss, train transform, network (meta device), device and weights plan."""
    from hhlib.train import TrainConfig

    problems = []
    failures = (KeyError, TypeError, ValueError, ZeroDivisionError, RuntimeError)
    try:
        TrainConfig.from_dict(dict(values))
    except failures as error:
        problems.append(str(error))
    for part, keys in RUN_PARTS.items():
        try:
            config = TrainConfig.from_dict({k: values[k] for k in keys if k in values})
        except failures:
            continue  # a bad field of the part: the full TrainConfig above already named it
        try:
            problem = _build_part(part, config, notebooks_dir)
        except failures as error:
            problem = f"{part}: {type(error).__name__}: {error}"
        if problem:
            problems.append(problem.replace("\n", " "))
    return problems


def check_training_runs(
    param_set: str, effective: Mapping[str, Mapping[str, Any]], notebooks_dir: str | Path | None = None
) -> list[str]:
    """Build every training run of a parameter set as its notebook will, and list what fails.

    For each run of notebooks 02 and 05: the TrainConfig (optimizer, schedule, ranges), the loss
    with its loss_params, the train transform with its transform_params, the network with its
    model_overrides (on the ``meta`` device: no memory, no time), the device, and the pretrained
    weights (that the backbone would load from them).

    Args:
        param_set: folder under params/ (for messages).
        effective: stage -> effective parameters (:func:`check_params`).
        notebooks_dir: the notebooks folder (relative weight paths are resolved against it).

    Returns:
        Problems, each ``"params/<set>/<stage>.yaml: run <bits/run name>: <what failed>"``; one
        line per distinct problem of a stage (empty = every run builds).
    """
    from hhlib.parallel import threads_problem

    problems: list[str] = []
    for stage in TRAINING_STAGES:
        if stage not in effective:
            continue
        try:
            runs = training_runs(stage, effective[stage])
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"params/{param_set}/{stage}.yaml: {error}")
            continue
        threads = threads_problem(effective[stage].get("parallel_runs", 1), [run.get("num_threads") for run in runs])
        if threads:
            problems.append(f"params/{param_set}/{stage}.yaml: {threads}")
        seen: dict[str, list[str]] = {}
        for run in runs:
            for problem in _run_problems(run, notebooks_dir):
                seen.setdefault(problem, []).append(run.get("run_name") or f"{run.get('loss')}_{run.get('bits')}")
        problems += [f"params/{param_set}/{stage}.yaml: {_runs_label(names, len(runs))}: {problem}"
                     for problem, names in seen.items()]
    return problems


def _runs_label(names: Sequence[str], total: int) -> str:
    if len(names) == total and total > 1:
        return f"all {total} runs"
    if len(names) > 4:
        return f"{len(names)} runs ({', '.join(names[:3])}, ...)"
    return f"run {', '.join(names)}" if len(names) == 1 else f"runs {', '.join(names)}"


def _split_options(effective: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct split draws of a set's stages (05 may use its own database_limit)."""
    options = []
    for values in effective.values():
        if "query_per_class" not in values and "train_per_class" not in values:
            continue  # a stage that draws no split
        option = {"seed": values.get("split_seed", 0), "query_per_class": values.get("query_per_class"),
                  "train_per_class": values.get("train_per_class"), "database_limit": values.get("database_limit")}
        if option not in options:
            options.append(option)
    return options


def ablation_plan(
    bits_list: Sequence[int],
    variants: Sequence[str] = ("hybrid",),
    block_token_kernels: Sequence[int | None] = (None,),
    alphas: Sequence[float] = (),
    token_layouts: Sequence[str] = ("paper",),
    losses: Sequence[str] = ("wml",),
    backbones: Sequence[str] = ("hybridhash",),
    model_overrides: Mapping[str, Any] | None = None,
    loss_params: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    recipes: Mapping[str, Mapping[str, Any]] | None = None,
    systems: Mapping[str, Mapping[str, Any]] | None = None,
    patch_sizes: Sequence[int] = (),
) -> list[dict[str, dict[str, Any]]]:
    """Expand notebook 05's lists into the training runs of the ablation study, the baseline once.

    The baseline is the paper's method: backbone ``hybridhash``, variant ``hybrid``, loss ``wml``,
    default block-token kernel, ``alpha`` and token layout (docs/method.md §1 "Ablation variants").
    Each study changes one thing from it: ``variant`` (no interaction, local only, global only),
    ``block_token_kernel`` (block-token granularity), ``alpha`` (of the WML loss),
    ``token_layout`` (paper vs reference code), ``loss`` (the method comparison, on the HybridHash
    backbone), ``backbone`` (CNN, NesT, HybridHash with the WML loss) and ``patch_size`` (the
    stem's patch edge, i.e. the token grid of the paper's network). A value equal to the
    baseline's adds no run (for ``patch_sizes``: leave the preset's own out).

    Args:
        bits_list: code lengths; every configuration is trained once per code length.
        variants: hhlib.model.VARIANTS names.
        block_token_kernels: block-token pooling kernels (None = the block edge, the default).
        alphas: WML alpha values (the paper's is the loss's default, 0.5); a value equal to the baseline's
            (``loss_params``, else the searched recipe's, else the default) adds no run.
        token_layouts: hhlib.model.TOKEN_LAYOUTS names.
        losses: hhlib.losses.LOSSES names.
        backbones: hhlib.model.BACKBONES names.
        model_overrides: model fields applied to every run (the recipe's, e.g. drop_path_rate).
        loss_params: hyperparameters of the baseline's WML loss (applied to the WML runs).
        seeds: training seeds; every configuration is trained once per seed (run folders
            ``hhlib.spread.seed_run_name``), and notebook 05 reports the mean ± spread over them.
        recipes: run name -> training fields and ``loss_params`` chosen by the study's search
            (``hhlib.tuning.load_recipes``); each method and backbone trains with its own, the ablations of the
            paper's network with the baseline's (``"hybridhash (paper)"``). A loss weight the run sets itself
            wins over the searched one. None or empty: every run uses the notebook's recipe.
        systems: complete methods that bring their own network, name -> ``{"loss": LOSSES name,
            "model_overrides": {...}, "loss_params": {...}}`` (e.g. ITDH: a pretrained EfficientNet-Lite0
            trunk with DLBHC's loss; Kang et al.: the multiple-representation network); study ``system``.
        patch_sizes: HybridHash stem patch sizes to compare with the preset's (study ``patch_size``).

    Returns:
        One dict per run: ``{"train": TrainConfig fields (bits, loss, loss_params, model_overrides,
        run_name), "labels": metrics.json ablation fields (study, name, backbone, variant, loss)}``.

    Raises:
        KeyError: an unknown variant, loss, backbone or token layout (lists the valid names).
    """
    from hhlib.losses import LOSSES, resolved_loss_params
    from hhlib.model import BACKBONES, TOKEN_LAYOUTS, VARIANTS, HybridHashConfig

    for values, registry, what in ((variants, VARIANTS, "variant"), (losses, LOSSES, "loss"),
                                   (backbones, BACKBONES, "backbone"), (token_layouts, TOKEN_LAYOUTS, "token layout")):
        for value in values:
            if value not in registry:
                raise KeyError(f"unknown {what} {value!r}: valid names are {', '.join(registry)}")
    base_overrides = dict(model_overrides or {})
    wml_params = dict(loss_params or {})
    searched_wml = (recipes or {}).get(BASELINE_NAME, {}).get("loss_params", {})
    # the baseline's alpha (notebook, else searched, else the loss's default): an equal ablation value adds no run
    default_alpha = resolved_loss_params("wml", {**searched_wml, **wml_params})["alpha"]
    default_layout = HybridHashConfig.token_layout
    studies: list[tuple[str, str, dict, str, dict]] = [("baseline", "hybridhash", {}, "wml", {})]
    studies += [("variant", v, {"variant": v}, "wml", {}) for v in variants if v != "hybrid"]
    studies += [("block_token_kernel", str(k), {"block_token_kernel": k}, "wml", {})
                for k in block_token_kernels if k is not None]
    studies += [("alpha", f"{a:g}", {}, "wml", {"alpha": a}) for a in alphas if a != default_alpha]
    studies += [("token_layout", t, {"token_layout": t}, "wml", {}) for t in token_layouts if t != default_layout]
    studies += [("loss", name, {}, name, {}) for name in losses if name != "wml"]
    studies += [("backbone", b, {"backbone": b}, "wml", {}) for b in backbones if b != "hybridhash"]
    studies += [("patch_size", str(p), {"patch_size": int(p)}, "wml", {}) for p in patch_sizes]
    studies += [("system", name, dict(spec.get("model_overrides", {})), spec["loss"], dict(spec.get("loss_params", {})))
                for name, spec in _checked_systems(systems or {}).items()]
    plan = []
    for bits in bits_list:
        for study, value, overrides, loss, params in studies:
            for seed in seeds:
                plan.append(_ablation_run(study, value, overrides, loss, params, int(bits), int(seed),
                                          base_overrides, wml_params))
    if recipes:
        _apply_recipes(plan, recipes)
    return plan


SYSTEM_KEYS = ("loss", "model_overrides", "loss_params")


def _checked_systems(systems: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    """Notebook 05's ``systems``, checked: each a mapping with a known ``loss`` and only ``SYSTEM_KEYS``."""
    from hhlib.losses import LOSSES

    for name, spec in systems.items():
        if not isinstance(spec, Mapping) or "loss" not in spec:
            raise KeyError(f"system {name!r} must be a mapping with a 'loss' (and optional model_overrides, loss_params)")
        unknown = sorted(set(spec) - set(SYSTEM_KEYS))
        if unknown:
            raise KeyError(f"system {name!r} has unknown keys {unknown}: valid keys are {list(SYSTEM_KEYS)}")
        if spec["loss"] not in LOSSES:
            raise KeyError(f"system {name!r}: unknown loss {spec['loss']!r}: valid names are {', '.join(LOSSES)}")
    return systems


BASELINE_NAME = "hybridhash (paper)"
SEARCHED_STUDIES = ("baseline", "loss", "backbone", "system")  # each has its own searched recipe; the other studies share the baseline's


def _apply_recipes(plan: list[dict[str, dict[str, Any]]], recipes: Mapping[str, Mapping[str, Any]]) -> None:
    """Add each run's searched training fields and loss weights to its ``train`` dict, in place.

    A loss weight the run sets itself (notebook 05's ``loss_params``, an ``alpha`` ablation's value) keeps its value.
    """
    missing = sorted({run["labels"]["name"] for run in plan
                      if run["labels"]["study"] in SEARCHED_STUDIES and run["labels"]["name"] not in recipes})
    if missing:
        raise KeyError(f"the search results have no recipe for {missing}: search them too (params/<set>/search.yaml "
                       "losses/backbones, then make search), or set search_results to null")
    for run in plan:
        labels = run["labels"]
        name = labels["name"] if labels["study"] in SEARCHED_STUDIES else BASELINE_NAME
        recipe = dict(recipes.get(name, {}))
        searched_weights = recipe.pop("loss_params", {})
        run["train"].update(recipe)
        # the run's own loss_params (the notebook's, and the one weight an alpha ablation changes) win over the search's
        run["train"]["loss_params"] = {**searched_weights, **run["train"]["loss_params"]}
        labels["recipe"] = "searched" if name in recipes else "notebook"
        if searched_weights:  # metrics.json and results.md show the searched weights each run trained with
            labels["loss_weights"] = {k: run["train"]["loss_params"][k] for k in searched_weights}


def _ablation_run(study: str, value: str, overrides: dict, loss: str, params: dict, bits: int, seed: int,
                  base_overrides: dict, wml_params: dict) -> dict[str, dict[str, Any]]:
    """One run of :func:`ablation_plan`: its TrainConfig fields and its metrics.json labels."""
    from hhlib.losses import LOSSES
    from hhlib.spread import seed_run_name

    return {
        "train": {
            "bits": bits,
            "seed": seed,
            "loss": loss,
            "loss_params": {**wml_params, **params} if loss == "wml" else dict(params),
            "model_overrides": {**base_overrides, **overrides},
            "run_name": seed_run_name(f"ablation_{study}_{value}_{bits}".replace(" ", ""), seed),
        },
        "labels": {
            "study": study,
            "name": BASELINE_NAME if study == "baseline" else f"{study}={value}",
            "backbone": overrides.get("backbone", "hybridhash"),
            "variant": overrides.get("variant", "hybrid"),
            "loss": loss,
            "family": getattr(LOSSES[loss], "family", "symmetric"),
        },
    }


def check_overlay(
    param_set: str, stage: str, path: str | Path, params_dir: str | Path | None = None,
    notebooks_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Validate a file applied over a stage's own (papermill ``-f``, last) and build the runs it gives.

    ``make converged`` runs notebook 05 with params/<set>/05_converged.yaml applied last: the same
    study with a few keys changed (epochs, the lists, out_dir). This checks, before any work, that
    the file's keys are the notebook's parameters with valid values, and that every run of the
    merged parameters builds (:func:`check_training_runs`).

    Args:
        param_set: folder under params/; its own files are checked first (:func:`check_params`).
        stage: the notebook the file is applied to (one of ``STAGES``).
        path: the overlay file.
        params_dir: the params folder (None = the repository's params/).
        notebooks_dir: the notebooks folder (None = the repository's notebooks/).

    Returns:
        The effective parameters of the run: the set's, overridden by the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ParamsError: every problem of the set, of the file, and of the runs it builds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: start from params/fashion_mnist/05_converged.yaml")
    effective = check_params(param_set, params_dir, notebooks_dir)[stage]
    values = _read_yaml(path)
    problems = validate_params(values, notebook_parameters(stage, notebooks_dir), str(path))
    if problems:
        raise ParamsError(problems)
    merged = {**effective, **values}
    problems = check_training_runs(param_set, {stage: merged}, notebooks_dir)
    if problems:
        raise ParamsError([f"{problem} (with {path} applied)" for problem in problems])
    return merged


def main(argv: Sequence[str]) -> int:
    """Command line: ``python -m hhlib.params check [--decode] <set> [<set> ...]`` (exit 0 = ready).

    Args:
        argv: the arguments after the module name; ``--decode`` decodes every image of a
            list-file dataset (otherwise a sample per list is decoded).

    Returns:
        The exit status: 0 ready, 1 a problem (printed to stderr), 2 usage error.
    """
    if argv[:1] == ["check-overlay"]:
        return _main_overlay(argv[1:])
    decode = "--decode" in argv
    argv = [arg for arg in argv if arg != "--decode"]
    if len(argv) < 2 or argv[0] != "check":
        print("usage: python -m hhlib.params check [--decode] <set> [<set> ...]   (sets: folders of params/)\n"
              "       python -m hhlib.params check-overlay <set> <stage> <file>", file=sys.stderr)
        return 2
    for param_set in argv[1:]:
        try:
            check_dataset_ready(param_set, decode=decode)
        except (ParamsError, FileNotFoundError, KeyError, ValueError) as error:
            print(f"hhlib.params: {param_set}: not ready, nothing was run.\n{error}", file=sys.stderr)
            return 1
        print(f"hhlib.params: {param_set}: parameter files valid, every training run builds, data present")
    return 0


def _main_overlay(argv: Sequence[str]) -> int:
    """``check-overlay <set> <stage> <file>``: exit 0 when :func:`check_overlay` passes, 1 with the problems."""
    if len(argv) != 3:
        print("usage: python -m hhlib.params check-overlay <set> <stage> <file>", file=sys.stderr)
        return 2
    param_set, stage, path = argv
    try:
        check_overlay(param_set, stage, path)
    except (ParamsError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"hhlib.params: {path}: not ready, nothing was run.\n{error}", file=sys.stderr)
        return 1
    print(f"hhlib.params: {path} over params/{param_set}/{stage}.yaml: valid, every training run builds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
