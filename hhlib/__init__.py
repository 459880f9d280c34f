"""hhlib: HybridHash (Hybrid Convolutional and Self-Attention Deep Hashing, ICMR 2024, arXiv 2405.07524).

The package re-exports its public API here and holds nothing else. The submodules are the
documented entry points (``hhlib.model.build``, ``hhlib.losses.build``, ``hhlib.data.load_splits``,
``hhlib.train.fit``, ``hhlib.evaluate.evaluate``); the names below are shortcuts to them.
(The function ``evaluate`` is not re-exported: the name would hide the ``hhlib.evaluate`` module.)

The shortcuts are resolved on first use (PEP 562), so importing one light submodule
(``python -m hhlib.logs``, ``hhlib.rerun``, ``hhlib.params``) does not first import torch,
torchvision, numba and the network: each such command started about 9 s later before, once
per rendered notebook of ``make reproduce`` (docs/performance.md, "Levers").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker and an IDE see; at run time __getattr__ below imports on demand
    from hhlib.data import DATASETS, Splits, check_data, load_splits
    from hhlib.evaluate import mean_average_precision, tie_aware_map
    from hhlib.index import HammingIndex
    from hhlib.losses import LOSSES, HashLoss
    from hhlib.losses import build as build_loss
    from hhlib.model import PRESETS, HybridHash, HybridHashConfig, from_pretrained_nest, load_checkpoint
    from hhlib.model import build as build_model
    from hhlib.runtime import resolve_device, seed_everything
    from hhlib.train import RunResult, TrainConfig, encode, fit

__version__ = "0.1.0"

# public name -> (submodule, name there)
_SHORTCUTS: dict[str, tuple[str, str]] = {
    **{name: ("hhlib.data", name) for name in ("DATASETS", "Splits", "check_data", "load_splits")},
    **{name: ("hhlib.evaluate", name) for name in ("mean_average_precision", "tie_aware_map")},
    "HammingIndex": ("hhlib.index", "HammingIndex"),
    **{name: ("hhlib.losses", name) for name in ("LOSSES", "HashLoss")},
    "build_loss": ("hhlib.losses", "build"),
    **{name: ("hhlib.model", name)
       for name in ("PRESETS", "HybridHash", "HybridHashConfig", "from_pretrained_nest", "load_checkpoint")},
    "build_model": ("hhlib.model", "build"),
    **{name: ("hhlib.runtime", name) for name in ("resolve_device", "seed_everything")},
    **{name: ("hhlib.train", name) for name in ("RunResult", "TrainConfig", "encode", "fit")},
}

__all__ = sorted([*_SHORTCUTS, "__version__"])


def __getattr__(name: str) -> Any:
    """Import a shortcut's submodule on first use and keep the name here (later lookups are plain attributes)."""
    if name not in _SHORTCUTS:
        raise AttributeError(f"module 'hhlib' has no attribute {name!r}")
    module, attribute = _SHORTCUTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SHORTCUTS})
