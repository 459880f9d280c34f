"""Train one hhlib model from a YAML file of TrainConfig fields (the command-line face of hhlib.train.fit).

    python scripts/train.py params/fashion_mnist/train.yaml [key=value ...]
    torchrun --nproc_per_node 4 scripts/train.py run.yaml batch_size=256

Each ``key=value`` overrides one field; the value is parsed as YAML (``bits=32``, ``pretrained=null``,
``model_overrides={depths: [1, 1, 2]}``). The config is validated before any work; rank 0 prints the
run's summary as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import yaml

from hhlib.train import ConfigError, TrainConfig, fit

USAGE = "usage: scripts/train.py CONFIG.yaml [key=value ...]   (keys: TrainConfig fields)"


def read_config(argv: list[str]) -> TrainConfig:
    """Build a TrainConfig from a YAML path followed by ``key=value`` overrides.

    Raises:
        SystemExit: no YAML path, a missing file, or an override without ``=``.
        ConfigError: unknown keys or bad values.
    """
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(USAGE)
    path = Path(argv[0])
    if not path.is_file():
        raise SystemExit(f"{path}: no such config file\n{USAGE}")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in argv[1:]:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"override {item!r} is not key=value\n{USAGE}")
        values[key] = yaml.safe_load(text)
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    try:
        config = read_config(sys.argv[1:] if argv is None else argv)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = fit(config)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if result is not None:
        print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
