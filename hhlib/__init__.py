"""hhlib: HybridHash (Hybrid Convolutional and Self-Attention Deep Hashing, ICMR 2024, arXiv 2405.07524).

The package re-exports its public API here and holds nothing else. The submodules are the
documented entry points (``hhlib.model.build``, ``hhlib.losses.build``, ``hhlib.data.load_splits``,
``hhlib.train.fit``, ``hhlib.evaluate.evaluate``); the names below are shortcuts to them.
(The function ``evaluate`` is not re-exported: the name would hide the ``hhlib.evaluate`` module.)
"""

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

__all__ = [
    "DATASETS",
    "LOSSES",
    "PRESETS",
    "HammingIndex",
    "HashLoss",
    "HybridHash",
    "HybridHashConfig",
    "RunResult",
    "Splits",
    "TrainConfig",
    "__version__",
    "build_loss",
    "build_model",
    "check_data",
    "encode",
    "fit",
    "from_pretrained_nest",
    "load_checkpoint",
    "load_splits",
    "mean_average_precision",
    "resolve_device",
    "seed_everything",
    "tie_aware_map",
]
