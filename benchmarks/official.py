"""The official HybridHash code (github.com/shuaichaochao/HybridHash), imported for the benchmarks only.

It is not vendored: point ``HYBRIDHASH_OFFICIAL_DIR`` at a checkout (the folder holding its
``model/HybridHash.py`` and ``utils/Hash_Loss.py``; it needs ``timm``). Without it the official
columns are skipped and say why. Two adaptations, both needed to run it at all and neither changing
its arithmetic:

- Its block-token average pool and upsampling hard-code 14 (the block edge at 224 px); they are
  set to the network's block edge (2 for small32 at 32 px). At 224 px nothing changes.
- Its ``utils/fx_features.py`` imports timm internals that timm 1.x no longer has; the model
  only takes an identity decorator from it (``register_notrace_function``, for FX tracing), so a
  stand-in module provides that one name, and ``timm.models.layers.helpers`` (moved to
  ``timm.layers.helpers`` in timm 1.x) is aliased.
- Its loss memory ``U`` is float16, which a float32 matmul refuses on a CPU; it is kept in float32
  (the commented-out line of its own ``Hash_Loss.py``).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch
from torch import nn

from hhlib.model import HybridHashConfig

ENV_VARIABLE = "HYBRIDHASH_OFFICIAL_DIR"
OFFICIAL_ALPHA = 0.5  # the official config's "alpha" (HybridHash Sec. 3.3)


def official_dir() -> tuple[Path | None, str]:
    """The checkout named by ``HYBRIDHASH_OFFICIAL_DIR``, or None with the reason the column is skipped."""
    value = os.environ.get(ENV_VARIABLE)
    if not value:
        return None, f"{ENV_VARIABLE} is not set: point it at a checkout of github.com/shuaichaochao/HybridHash"
    folder = Path(value)
    if not (folder / "model" / "HybridHash.py").is_file():
        return None, f"{ENV_VARIABLE}={folder} has no model/HybridHash.py: point it at the repository's root"
    return folder, ""


def _modules(folder: Path):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    if "utils.fx_features" not in sys.modules:
        stand_in = types.ModuleType("utils.fx_features")
        stand_in.register_notrace_function = lambda function: function
        sys.modules["utils.fx_features"] = stand_in
    import timm.layers.helpers  # noqa: PLC0415
    import timm.models.layers  # noqa: PLC0415

    timm.models.layers.helpers = timm.layers.helpers
    from model import HybridHash as network_module  # noqa: PLC0415 (the official package layout)
    from utils import Hash_Loss as loss_module  # noqa: PLC0415

    return network_module, loss_module


def build_network(folder: Path, config: HybridHashConfig) -> nn.Module:
    """The official network with ``config``'s sizes (its interaction heads are fixed at 8)."""
    network_module, _ = _modules(folder)
    settings = {"n_class": 10, "patch_size": config.patch_size, "img_size": config.img_size,
                "in_chans": config.in_chans, "bit": config.bits}
    network = network_module.HybridHash(
        settings, num_levels=config.num_levels, embed_dims=config.embed_dims, num_heads=config.num_heads,
        depths=config.depths, mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias,
        drop_path_rate=config.drop_path_rate,
    )
    edge = config.block_size
    for module in network.modules():
        if hasattr(module, "pool_glo"):
            module.pool_glo = nn.AvgPool2d(edge, stride=edge)
            module.upsample = nn.Upsample(scale_factor=edge, mode="bilinear", align_corners=False)
    return network


def build_loss(folder: Path, bits: int, n_classes: int, n_train: int) -> tuple[nn.Module, dict]:
    """The official weighted-likelihood loss and the config dict its forward takes."""
    _, loss_module = _modules(folder)
    settings = {"num_train": n_train, "n_class": n_classes, "device": torch.device("cpu"), "alpha": OFFICIAL_ALPHA}
    loss = loss_module.HashNetLoss(settings, bits)
    loss.U = loss.U.float()
    return loss, settings
