"""Does a rerun reproduce the study? Compare two metrics.json files, digit for digit.

``python -m hhlib.rerun <committed metrics.json> <rerun metrics.json>`` prints every value that
differs (its path in the file, both values) and exits 1, or says how many values agree and exits 0.
Two kinds of field may differ between identical runs and are left out: wall-clock measurements
(names ending in ``seconds`` or ``images_per_second``) and the run folders (``run_dir``,
``run_dirs``, whose names carry the config hash). Everything else, every mAP, every per-seed
value and the split, must be equal; floats are compared exactly.

The recorded ``environment`` (library versions, threads, device, CPU model) is not a result: it is
compared on its own, to say whether a difference is expected. Training on the CPU repeats digit for
digit on one kind of CPU, but another CPU model may run other kernels and round differently, and the
rounding grows over training into differences of the order of the seed spread. So where values
differ the command also says whether the two files record the same CPU, and how many result rows
agree by the study's spread rule (``hhlib.readings.SPREAD_RULE``), the test that still applies
across machines. A recorded data fingerprint that differs (the text study's apt package lists,
``text_hashing.protocol.fingerprint``) is named too: values computed from other data are not
expected to agree on any machine.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["data_notes", "differences", "environment_note", "is_volatile", "main", "spread_check", "stable_values"]

RUN_FOLDER_KEYS = ("run_dir", "run_dirs")
ENVIRONMENT_KEY = "environment"  # compared apart: it explains a difference, it is not a result
ROW_LISTS = ("runs", "ablations")  # the result rows with a mean and spread over seeds
DATA_FINGERPRINTS = {  # where metrics.json records what input a section read, and what that section is
    ("text_hashing", "protocol", "fingerprint"):
        "the text study (notebook 06) read other apt package lists (docs/text_hashing.md says which it reads)",
}
MACHINE_KEYS = ("cpu", "cpu_capability", "device", "device_name", "threads", "python", "torch", "numpy", "numba")


def is_volatile(key: str) -> bool:
    """True for a field that identical runs may still differ in: wall-clock time or a run folder's name."""
    return key in RUN_FOLDER_KEYS or key.endswith("seconds") or key.endswith("images_per_second")


def stable_values(value: Any) -> Any:
    """``value`` without its volatile fields, at any depth."""
    if isinstance(value, dict):
        return {key: stable_values(item) for key, item in value.items() if not is_volatile(key)}
    if isinstance(value, list):
        return [stable_values(item) for item in value]
    return value


def differences(old: Any, new: Any) -> list[str]:
    """Every place where two JSON values differ, as ``"<path>: <old> -> <new>"`` lines.

    Volatile fields and the top-level ``environment`` are left out (:func:`environment_note` reads it).
    """
    return _differences(stable_values(_results(old)), stable_values(_results(new)), "")


def _results(study: Any) -> Any:
    """``study`` without its recorded environment."""
    return {k: v for k, v in study.items() if k != ENVIRONMENT_KEY} if isinstance(study, dict) else study


def environment_note(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Whether the two files record the same machine, and so whether their values must agree digit for digit."""
    before, after = old.get(ENVIRONMENT_KEY) or {}, new.get(ENVIRONMENT_KEY) or {}
    unrecorded = [which for which, env in (("first", before), ("second", after)) if "cpu" not in env]
    if unrecorded:
        return (f"environment: the {' and the '.join(unrecorded)} file{'s do' if len(unrecorded) == 2 else ' does'} "
                "not record the CPU model (written before hhlib recorded it), so whether both ran on one kind of "
                "CPU is unknown; another CPU model may round differently, so judge such a rerun by the spread.")
    changed = [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in MACHINE_KEYS
               if before.get(key) != after.get(key)]
    if changed:
        return ("environment: the files record different machines or libraries (" + "; ".join(changed) + "): "
                "other kernels round differently, so values are not expected to agree digit for digit; "
                "judge the rerun by the spread.")
    return (f"environment: both files record the same machine ({after.get('cpu')}, {after.get('cpu_capability')}, "
            f"{after.get('threads')} threads, torch {after.get('torch')}), where a rerun must agree digit for digit.")


def data_notes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per recorded data fingerprint that differs: that section's values come from other data."""
    notes = []
    for path, meaning in DATA_FINGERPRINTS.items():
        before, after = _lookup(old, path), _lookup(new, path)
        if before is not None and after is not None and before != after:
            notes.append(f"data: {meaning}: {'.'.join(path)} differs, so its values are not expected to agree.")
    return notes


def _lookup(study: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested dicts, or None where a key is missing."""
    for key in path:
        study = study.get(key) if isinstance(study, dict) else None
    return study


def spread_check(old: dict[str, Any], new: dict[str, Any]) -> tuple[int, list[str]]:
    """How many result rows of ``new`` agree with ``old`` by the spread rule, and a line for each that does not.

    Rows of ``runs`` and ``ablations`` are matched by configuration (name, method, loss, code length); a row
    agrees when its two means are no further apart than the sum of their standard deviations over seeds.
    Rows without a spread (one seed) are not judged.
    """
    from hhlib.readings import difference, format_value

    agree, beyond = 0, []
    for key in ROW_LISTS:
        before = {_row_id(row): row for row in old.get(key) or []}
        for row in new.get(key) or []:
            match = before.get(_row_id(row))
            if match is None or match.get("map_std") is None or row.get("map_std") is None:
                continue
            d = difference(row, match)
            if d["beyond"]:
                beyond.append(f"{key}: {_row_label(row)}: {format_value(match)} -> {format_value(row)} ({d['delta']:+.3f}, "
                              f"spread {d['spread']:.3f})")
            else:
                agree += 1
    return agree, beyond


def _row_id(row: dict[str, Any]) -> tuple:
    return tuple(row.get(field) for field in ("name", "method", "loss", "bits"))


def _row_label(row: dict[str, Any]) -> str:
    return f"{row.get('name') or row.get('method')}, {row.get('bits')} bits"


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in list(old) + [key for key in new if key not in old]:
            where = f"{path}.{key}" if path else key
            if key not in new or key not in old:
                lines.append(f"{where}: only in the {'first' if key in old else 'second'} file")
            else:
                lines += _differences(old[key], new[key], where)
        return lines
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [line for index, (a, b) in enumerate(zip(old, new)) for line in _differences(a, b, f"{path}[{index}]")]
    return [] if _same(old, new) else [f"{path}: {old!r} -> {new!r}"]


def _same(old: Any, new: Any) -> bool:
    """Equal scalars; two NaNs (an undefined mAP in both runs) count as equal."""
    both_nan = isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
    return both_nan or old == new


def count_values(value: Any) -> int:
    """Number of scalar values in ``value`` (volatile fields ignored)."""
    return _count(stable_values(value))


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count(item) for item in value.values())
    if isinstance(value, list):
        return sum(_count(item) for item in value)
    return 1


def main(argv: Sequence[str]) -> int:
    """Command line: ``python -m hhlib.rerun A B`` (exit 0 = every stable value equal)."""
    if len(argv) != 2:
        print("usage: python -m hhlib.rerun <metrics.json> <metrics.json of the rerun>", file=sys.stderr)
        return 2
    missing = [path for path in argv if not Path(path).is_file()]
    if missing:
        print(f"hhlib.rerun: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    old, new = (json.loads(Path(path).read_text(encoding="utf-8")) for path in argv)
    lines = differences(old, new)
    if not lines:
        print(f"hhlib.rerun: all {count_values(_results(old))} values agree digit for digit "
              f"(wall-clock times and run folder names not compared)")
        print(environment_note(old, new))
        return 0
    print(f"hhlib.rerun: {len(lines)} values differ:")
    print("\n".join(lines))
    print(environment_note(old, new))
    print("\n".join(data_notes(old, new)) or "data: every recorded data fingerprint agrees.")
    agree, beyond = spread_check(old, new)
    print(f"spread: {agree} of {agree + len(beyond)} result rows with seeds agree by the spread rule (the two means "
          f"no further apart than the sum of their standard deviations)" + (":" if beyond else "."))
    if beyond:
        print("\n".join(beyond))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
