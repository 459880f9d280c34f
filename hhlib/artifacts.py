"""The outputs/ folder: where every run's files live, and atomic reading and writing of them.

HybridHash (ICMR 2024, arXiv 2405.07524) trains one model per code length (Sec. 4.1) and the
project compares many runs (method comparison, ablations); this module fixes where each lands::

    outputs/<dataset>/
        checkpoints/<run_name>/   one training run (hhlib.train.fit names it <loss>_<bits>-<config hash>):
            checkpoint.pt         model, optimizer, scaler, loss buffers, RNG states, epoch, config
            metrics.jsonl         one JSON line per epoch (epoch, loss, map, images_per_second, seconds, lr)
            codes.npz             query/database codes and labels of the final model
            result.json           the run's summary (hhlib.train.RunResult)
        codes.npz                 codes the notebooks hand to each other
        metrics.json              {"dataset", "runs": [...], "ablations": [...]}: every reported number
        figures/*.png

Every write goes to a temporary file in the same folder and is renamed over the target with
``os.replace``, so a crash never leaves a half-written checkpoint or JSON file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_LOG_FILE = "metrics.jsonl"
CODES_FILE = "codes.npz"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.json"

# Which fields identify an entry of metrics.json: a new entry with the same key replaces the old one,
# so re-running a notebook updates its rows instead of duplicating them.
RUN_KEY = ("method", "bits")
ABLATION_KEY = ("backbone", "variant", "loss", "bits", "name")


def dataset_dir(root: str | Path, dataset: str) -> Path:
    """Folder of one dataset's outputs: ``<root>/<dataset>``."""
    return Path(root) / dataset


def run_dir(root: str | Path, dataset: str, run_name: str) -> Path:
    """Folder of one training run: ``<root>/<dataset>/checkpoints/<run_name>``.

    Raises:
        ValueError: run_name is empty or contains a path separator.
    """
    if not run_name or "/" in run_name or "\\" in run_name or run_name in (".", ".."):
        raise ValueError(f"run_name {run_name!r} must be a plain folder name, e.g. 'wml_64'")
    return dataset_dir(root, dataset) / "checkpoints" / run_name


def figures_dir(root: str | Path, dataset: str) -> Path:
    """Folder of one dataset's figures: ``<root>/<dataset>/figures`` (created)."""
    path = dataset_dir(root, dataset) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _atomic_target(path: str | Path):
    """Yield a temporary file object next to ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically: ``write(handle)`` fills a temporary file that is then renamed.

    Args:
        path: destination (parent folders are created).
        write: callable filling a binary file handle.

    Returns:
        ``path``. On any exception the destination is left untouched and no temporary file remains.
    """
    with _atomic_target(path) as handle:
        write(handle)
    return Path(path)


# Keys every checkpoint written by hhlib.train.fit holds (enough to rebuild and resume the run).
CHECKPOINT_KEYS = ("model", "config", "epoch")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says to delete it to start over."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        super().__init__(
            f"checkpoint {path} is unreadable or not an hhlib checkpoint: delete it to start over ({reason})"
        )


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Save a training state atomically with ``torch.save``.

    Args:
        path: destination, e.g. ``run_dir(...) / CHECKPOINT_FILE``.
        state: tensors, dicts, lists, numbers and strings (``torch.load(weights_only=True)`` safe).

    Returns:
        ``path``.
    """
    return atomic_write(path, lambda handle: torch.save(dict(state), handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: checkpoint file.
        map_location: where tensors are loaded.

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is empty, truncated, not a torch file, holds objects that
            ``weights_only`` loading refuses, or lacks the keys :data:`CHECKPOINT_KEYS`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train first (hhlib.train.fit) or fix the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a bad file
        raise CheckpointError(path, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error
    if not isinstance(state, Mapping) or not all(key in state for key in CHECKPOINT_KEYS):
        held = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(path, f"holds {held}, not the keys {list(CHECKPOINT_KEYS)}")
    return dict(state)


def _numpy(array: Any) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def save_codes(
    path: str | Path,
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    **extra: Any,
) -> Path:
    """Save query/database codes and labels (plus any extra arrays) to one ``.npz``, atomically.

    Args:
        path: destination ``.npz``.
        query_codes: (Q, bits) {-1, +1} codes (stored as int8).
        database_codes: (N, bits) {-1, +1} codes (stored as int8).
        query_labels: (Q, C) multi-hot labels (stored as float32).
        database_labels: (N, C) multi-hot labels (stored as float32).
        **extra: more arrays, e.g. ``query_outputs`` (Q, bits) float for t-SNE.

    Returns:
        ``path``.

    Raises:
        ValueError: code/label row counts or code widths disagree.
    """
    arrays = {
        "query_codes": _numpy(query_codes).astype(np.int8),
        "database_codes": _numpy(database_codes).astype(np.int8),
        "query_labels": _numpy(query_labels).astype(np.float32),
        "database_labels": _numpy(database_labels).astype(np.float32),
    }
    if arrays["query_codes"].shape[1:] != arrays["database_codes"].shape[1:]:
        raise ValueError(
            f"query codes {arrays['query_codes'].shape} and database codes {arrays['database_codes'].shape} "
            "have different code lengths: encode both with the same model"
        )
    for split in ("query", "database"):
        if len(arrays[f"{split}_codes"]) != len(arrays[f"{split}_labels"]):
            raise ValueError(
                f"{len(arrays[f'{split}_codes'])} {split} codes but {len(arrays[f'{split}_labels'])} labels: "
                "pass one label row per code"
            )
    arrays.update({name: _numpy(value) for name, value in extra.items()})
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_codes(path: str | Path) -> dict[str, np.ndarray]:
    """Load a ``.npz`` written by :func:`save_codes`.

    Returns:
        ``{"query_codes", "database_codes", "query_labels", "database_labels", ...extra}`` as numpy arrays.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no codes at {path}: run training/encoding first (it writes {CODES_FILE})")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def json_ready(value: Any) -> Any:
    """A JSON-serialisable copy: tuples -> lists, Paths -> str, numpy/tensor scalars -> numbers, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (tuples become lists, numpy/tensor scalars become numbers, NaN becomes null)."""
    text = json.dumps(json_ready(data), indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def read_json(path: str | Path) -> Any:
    """Read a JSON file.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no JSON file at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as JSON lines, atomically (the whole log is rewritten, so a resumed run never duplicates lines)."""
    text = "".join(json.dumps(json_ready(record)) + "\n" for record in records)
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file (e.g. a run's ``metrics.jsonl``) into a list of dicts.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics log at {path}: train first (hhlib.train.fit writes {METRICS_LOG_FILE})")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _merge(entries: list[dict], new: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[dict]:
    merged = list(entries)
    for entry in new:
        entry = json_ready(dict(entry))
        identity = tuple(entry.get(k) for k in key)
        merged = [old for old in merged if tuple(old.get(k) for k in key) != identity]
        merged.append(entry)
    return merged


def read_metrics(path: str | Path, dataset: str | None = None) -> dict[str, Any]:
    """Read a dataset's ``metrics.json``; a missing file reads as an empty report.

    Args:
        path: the ``metrics.json`` file.
        dataset: name stored in a new, empty report.

    Returns:
        ``{"dataset": ..., "runs": [...], "ablations": [...]}`` (missing lists are added empty).
    """
    path = Path(path)
    report = read_json(path) if path.is_file() else {"dataset": dataset}
    report.setdefault("dataset", dataset)
    report.setdefault("runs", [])
    report.setdefault("ablations", [])
    return report


def update_metrics(
    path: str | Path,
    *,
    dataset: str,
    runs: Sequence[Mapping[str, Any]] = (),
    ablations: Sequence[Mapping[str, Any]] = (),
    replace: Sequence[str] = (),
    **fields: Any,
) -> dict[str, Any]:
    """Merge runs and ablation rows into ``metrics.json`` and write it back atomically.

    A run replaces an existing run with the same ``RUN_KEY`` (method, bits); an ablation row
    replaces one with the same ``ABLATION_KEY`` (backbone, variant, loss, bits, name), so a
    re-executed notebook updates its rows. A list named in ``replace`` is replaced as a whole
    instead: the notebook that owns it drops the rows of configurations it no longer trains.

    Args:
        path: the dataset's ``metrics.json``.
        dataset: dataset name (checked against the file's).
        runs: dicts with at least ``method``, ``bits``, ``map`` (plus e.g. ``map_tie_aware``,
            ``map_best_over_evals``, ``topk``, ``train_seconds``).
        ablations: dicts with at least ``backbone``, ``variant``, ``loss``, ``bits``, ``map``.
        replace: ``"runs"`` and/or ``"ablations"``: lists to replace rather than merge into.
        **fields: other top-level entries to set (e.g. ``paper_reference={...}``).

    Returns:
        The merged report.

    Raises:
        ValueError: the file belongs to another dataset, or an entry lacks its key fields.
    """
    report = read_metrics(path, dataset)
    if report["dataset"] not in (None, dataset):
        raise ValueError(f"{path} holds metrics of {report['dataset']!r}, not {dataset!r}: use outputs/{dataset}/metrics.json")
    unknown = set(replace) - {"runs", "ablations"}
    if unknown:
        raise ValueError(f"replace={list(replace)}: only 'runs' and 'ablations' can be replaced, not {sorted(unknown)}")
    report["dataset"] = dataset
    for kind in replace:
        report[kind] = []
    for kind, entries, required in (("runs", runs, ("method", "bits", "map")), ("ablations", ablations, ("backbone", "variant", "loss", "bits", "map"))):
        for entry in entries:
            missing = [k for k in required if k not in entry]
            if missing:
                raise ValueError(f"a {kind} entry lacks {missing}: every {kind} entry needs {list(required)}")
    report["runs"] = _merge(report["runs"], runs, RUN_KEY)
    report["ablations"] = _merge(report["ablations"], ablations, ABLATION_KEY)
    report.update(fields)
    write_json(path, report)
    return report
