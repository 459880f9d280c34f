"""Hashing losses by name: HybridHash's weighted likelihood and the classic deep-hashing methods.

``build(name, bits, n_classes, n_train, **params)`` returns a :class:`HashLoss`; calling it as
``loss(outputs, labels, indices)`` returns a scalar. HybridHash (ICMR 2024) Sec. 3.3 defines
``wml``; the others are the classic methods it is compared with, grouped by ``family``
(symmetric, asymmetric, central-similarity, unsupervised; see docs/losses.md).
"""

from __future__ import annotations

import inspect

from hhlib.losses.adsh import ADSHLoss
from hhlib.losses.base import FAMILIES, HashLoss
from hhlib.losses.cnnh import CNNHLoss
from hhlib.losses.csq import CSQLoss, MDSHCLoss
from hhlib.losses.dch import DCHLoss
from hhlib.losses.dh import DHLoss, SDHLoss
from hhlib.losses.dlbhc import DLBHCLoss
from hhlib.losses.dpsh import DPSHLoss
from hhlib.losses.drsdh import DRSDHLoss
from hhlib.losses.dsh import DSHLoss
from hhlib.losses.dsrh import DSRHLoss
from hhlib.losses.hashnet import HashNetLoss
from hhlib.losses.ninh import NINHLoss
from hhlib.losses.wml import WeightedMaximumLikelihoodLoss

LOSSES: dict[str, type[HashLoss]] = {
    "wml": WeightedMaximumLikelihoodLoss,
    "dpsh": DPSHLoss,
    "hashnet": HashNetLoss,
    "dsh": DSHLoss,
    "cnnh": CNNHLoss,
    "ninh": NINHLoss,
    "drsdh": DRSDHLoss,
    "dsrh": DSRHLoss,
    "dh": DHLoss,
    "sdh": SDHLoss,
    "dlbhc": DLBHCLoss,
    "dch": DCHLoss,
    "csq": CSQLoss,
    "mdshc": MDSHCLoss,
    "adsh": ADSHLoss,
}


def _hyperparameters(name: str) -> list[inspect.Parameter]:
    """The loss's constructor parameters beyond (bits, n_classes, n_train), in signature order.

    Raises:
        KeyError: unknown name (the message lists the valid names).
    """
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}: choose one of {sorted(LOSSES)}")
    signature = inspect.signature(LOSSES[name].__init__)
    return [p for p in signature.parameters.values() if p.name not in ("self", "bits", "n_classes", "n_train")]


def loss_params(name: str) -> list[str]:
    """Names of the hyperparameters a loss accepts beyond (bits, n_classes, n_train).

    Args:
        name: a key of LOSSES.

    Returns:
        Parameter names in signature order.

    Raises:
        KeyError: unknown name (the message lists the valid names).
    """
    return [p.name for p in _hyperparameters(name)]


def resolved_loss_params(name: str, params: dict) -> dict:
    """Every hyperparameter the loss will run with: its defaults, overridden by ``params``.

    A run's identity (``TrainConfig.config_hash``) uses this, so a changed default trains a new run
    instead of reading back a run made with the old value.

    Raises:
        KeyError: unknown name (the message lists the valid names).
    """
    defaults = {p.name: p.default for p in _hyperparameters(name) if p.default is not inspect.Parameter.empty}
    return {**defaults, **params}


def build(name: str, bits: int, n_classes: int, n_train: int, **params) -> HashLoss:
    """Build a hashing loss by name with its paper's defaults, overridden by ``params``.

    Args:
        name: one of LOSSES ("wml", "dpsh", "hashnet", "dsh", "cnnh", "ninh", "drsdh", "dsrh", "dh", "sdh", "dlbhc",
            "dch", "csq", "mdshc", "adsh").
        bits: code length K.
        n_classes: label width C of the dataset.
        n_train: number of training images (memory rows, index range).
        **params: the loss's hyperparameters (see ``loss_params(name)``).

    Returns:
        The loss module (call ``.to(device)`` with the model; hooks: prepare, set_epoch; attributes:
        takes_logits, model_overrides).

    Raises:
        KeyError: unknown name, listing the valid names.
        TypeError: a parameter the loss does not take, listing the ones it takes.
        ValueError: a parameter value out of range.
    """
    valid = loss_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(f"loss {name!r} does not take {unknown}: its parameters are {valid}")
    return LOSSES[name](bits=bits, n_classes=n_classes, n_train=n_train, **params)


__all__ = [
    "FAMILIES",
    "LOSSES",
    "build",
    "loss_params",
    "resolved_loss_params",
    "HashLoss",
    "WeightedMaximumLikelihoodLoss",
    "DPSHLoss",
    "HashNetLoss",
    "DSHLoss",
    "CNNHLoss",
    "NINHLoss",
    "DRSDHLoss",
    "DSRHLoss",
    "DHLoss",
    "SDHLoss",
    "DLBHCLoss",
    "DCHLoss",
    "CSQLoss",
    "MDSHCLoss",
    "ADSHLoss",
]
