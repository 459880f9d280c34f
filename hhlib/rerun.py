"""Does a rerun reproduce the study? Compare two metrics.json files, digit for digit.

``python -m hhlib.rerun <committed metrics.json> <rerun metrics.json>`` prints every value that
differs (its path in the file, both values) and exits 1, or says how many values agree and exits 0.
Two kinds of field may differ between identical runs and are left out: wall-clock measurements
(names ending in ``seconds`` or ``images_per_second``) and the run folders (``run_dir``,
``run_dirs``, whose names carry the config hash). Everything else, every mAP, every per-seed
value, the split and the environment, must be equal; floats are compared exactly.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["differences", "is_volatile", "main", "stable_values"]

RUN_FOLDER_KEYS = ("run_dir", "run_dirs")


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
    """Every place where two JSON values differ, as ``"<path>: <old> -> <new>"`` lines (volatile fields ignored)."""
    return _differences(stable_values(old), stable_values(new), "")


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
    if lines:
        print(f"hhlib.rerun: {len(lines)} values differ:")
        print("\n".join(lines))
        return 1
    print(f"hhlib.rerun: all {count_values(old)} values agree digit for digit "
          f"(wall-clock times and run folder names not compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
