"""The training engine: one loop that trains HybridHash with any hashing loss, resumable and GPU-ready.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4.1 / docs/method.md §3: RMSprop, lr 2.5e-5, weight
decay 1e-5, batch 64, 12-15 epochs, mixed precision, an evaluation every 3 epochs, one model per
code length. :class:`TrainConfig` holds those values as defaults (each field cites where it comes
from); :func:`fit` runs the loop; :func:`encode` turns a split into binary codes.

What the loop guarantees:

- Determinism: Python, NumPy and torch are seeded from ``seed``; the data order is a seeded
  permutation per epoch (``DistributedSampler(seed=seed)``, also with one process), so the same
  config on the same machine gives the same codes.
- Resume: after every epoch the whole state (model, optimizer, LR schedule, AMP scaler, loss
  buffers such as WML's memory bank, every RNG state, epoch, metrics so far) is written atomically
  to ``checkpoint.pt``; ``resume=True`` continues from it and ends with exactly the result of an
  uninterrupted run. A checkpoint from a different configuration is refused.
- Reporting: the final model's mAP is the main figure (``RunResult.final_map``); the best mAP over
  the periodic evaluations, which the reference code reports, is kept apart as ``best_map``.
- Multi-GPU: under ``torchrun`` the batch is split across ranks and each step's outputs, labels and
  indices are all-gathered (outputs with autograd) so the loss sees the global batch: the loss
  memory banks stay identical on every rank and the averaged gradients equal the single-process
  ones. Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import types
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm  # text bars: they render in terminals and notebooks alike, no ipywidgets needed

from hhlib import artifacts
from hhlib.complexity import model_complexity
from hhlib.health import code_health
from hhlib.runtime import (
    DistributedContext, autocast_dtype, environment, init_distributed, resolve_device, seed_everything, set_threads,
)

__all__ = ["OPTIMIZERS", "SCHEDULES", "ConfigError", "RunResult", "TrainConfig", "encode", "fit", "last_evaluations"]

OPTIMIZERS = {
    "rmsprop": "torch.optim.RMSprop (the paper's, Sec. 4.1)",
    "adamw": "torch.optim.AdamW (decoupled weight decay; for training from scratch)",
    "adam": "torch.optim.Adam (L2 weight decay)",
    "sgd": "torch.optim.SGD (Nesterov when momentum > 0)",
}
SCHEDULES = {
    "constant": "the learning rate stays at lr after the warmup (the paper's)",
    "cosine": "linear warmup, then cosine decay to lr * min_lr_ratio at the last step",
}

log = logging.getLogger(__name__)  # one INFO line per epoch (hhlib.logs)

# Fields that may change between a stopped run and its resumption: they do not affect the result.
RESUME_FREE_FIELDS = ("resume", "progress", "num_workers", "eval_batch_size", "device", "compile")
# Left out of the run folder's hash besides RESUME_FREE_FIELDS: they name where the run lives, not what it computes.
LOCATION_FIELDS = ("out_dir", "run_name")


class ConfigError(ValueError):
    """A training configuration that cannot run: unknown key, wrong type, or value out of range."""


@dataclass
class TrainConfig:
    """Everything one training run depends on; defaults are the paper's protocol.

    Build it directly or from a YAML/JSON dict with :meth:`from_dict`; either way it is validated on
    construction (types and ranges), before any data is read.
    """

    # --- data (docs/method.md §5 protocols; None = the protocol's / paper's value) ---
    dataset: str = "fashion_mnist"  # a hhlib.data.DATASETS name; the offline embedded default
    data_dir: str | None = None  # None = the dataset's default folder
    split_seed: int = 0  # seed of the query/train/database draw (docs/method.md §5), kept apart from `seed`
    img_size: int | None = None  # None = the model preset's input size (224 for "paper", docs/method.md §3; 32 for tiny32/small32)
    query_per_class: int | None = None  # None = protocol (100 for CIFAR-10 / Fashion-MNIST)
    train_per_class: int | None = None  # None = protocol (500 for CIFAR-10 / Fashion-MNIST)
    database_limit: int | None = None  # None = the whole database (mAP@all over 54,000 / 64,000)
    validation_per_class: int | None = None  # hold out this many training images per class as validation queries ranking the rest (hhlib.validation; for searches); None = the protocol's query/database
    transform_params: dict = field(default_factory=dict)  # train-transform options (hhlib.transforms), e.g. {"pad": 2, "flip": True}; {} = paper (none for CIFAR)

    # --- model (docs/method.md §1) ---
    preset: str = "paper"  # a hhlib.model.PRESETS name (paper = NesT-B dims, depths (2, 2, 20))
    bits: int = 64  # docs/method.md §3: 16 / 32 / 48 / 64, one model per code length
    model_overrides: dict = field(default_factory=dict)  # HybridHashConfig fields, e.g. {"variant": "local_only"}
    pretrained: str | None = None  # NesT-B weights file (docs/method.md §6: needed for the paper's numbers); None = from scratch

    # --- loss (docs/method.md §2) ---
    loss: str = "wml"  # a hhlib.losses.LOSSES name; wml = the paper's weighted likelihood
    loss_params: dict = field(default_factory=dict)  # the loss's hyperparameters, e.g. {"alpha": 0.5}

    # --- optimisation (docs/method.md §3) ---
    optimizer: str = "rmsprop"  # docs/method.md §3: RMSprop
    lr: float = 2.5e-5  # docs/method.md §3: 2.5e-5 (fine-tuning a pretrained NesT-B)
    weight_decay: float = 1e-5  # docs/method.md §3: 1e-5
    momentum: float = 0.0  # RMSprop/SGD momentum (torch's RMSprop default 0, as the reference)
    batch_size: int = 64  # docs/method.md §3: batch 64 (the published log); global batch under DDP
    epochs: int = 15  # docs/method.md §3: 12-15 epochs
    schedule: str = "constant"  # docs/method.md §3: a constant learning rate
    warmup_epochs: float = 0.0  # linear warmup length in epochs (0 in the paper)
    min_lr_ratio: float = 0.0  # cosine: final lr = lr * min_lr_ratio
    grad_clip: float | None = None  # max global gradient norm; None = no clipping (the paper's)

    # --- evaluation (docs/method.md §4) ---
    eval_every: int = 3  # docs/method.md §3: evaluate every 3 epochs (and always after the last); 0 = last only
    eval_batch_size: int = 256  # encoding batch size (no effect on results)

    # --- runtime ---
    seed: int = 0  # seeds Python, NumPy, torch and the data order
    num_threads: int | None = None  # torch intra-op threads (None = torch's default, one per core); part of the numerics, recorded
    device: str = "auto"  # hhlib.runtime.resolve_device
    amp: bool = True  # docs/method.md §3: mixed precision (bf16, or fp16 with a GradScaler; GPU only)
    channels_last: bool = True  # channels-last memory format on GPU
    compile: bool = False  # torch.compile the model
    num_workers: int = 0  # DataLoader worker processes (image-list datasets; in-memory splits use hhlib.batches)
    out_dir: str = "outputs"  # outputs root; the run lives in <out_dir>/<dataset>/checkpoints/<run_name>
    run_name: str | None = None  # None = "<loss>_<bits>", e.g. "wml_64"
    resume: bool = True  # continue from <run dir>/checkpoint.pt when it exists
    progress: bool = True  # tqdm bars within each epoch (the per-epoch log line goes to the "hhlib" logger either way)

    def __post_init__(self) -> None:
        self._check_types()
        self._check_values()

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of every configuration field, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a validated config from a plain dict (a YAML/JSON mapping).

        Args:
            values: field name -> value; missing fields take their defaults.

        Returns:
            The config.

        Raises:
            ConfigError: an unknown key (the message lists the valid ones), an ill-typed value
                (names the field, the expected type and the value) or a value out of range.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"a training config must be a mapping of field -> value, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown TrainConfig key(s) {unknown}: valid keys are {cls.field_names()}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (``from_dict(to_dict())`` round-trips)."""
        return asdict(self)

    @property
    def config_hash(self) -> str:
        """8 hex digits identifying what this config computes (RESUME_FREE_FIELDS and LOCATION_FIELDS excluded; the loss's
        hyperparameters resolved with its defaults)."""
        values = _resolved({k: v for k, v in self.to_dict().items() if k not in RESUME_FREE_FIELDS + LOCATION_FIELDS})
        text = json.dumps(artifacts.json_ready(values), sort_keys=True)  # a changed loss default is a new run
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    @property
    def resolved_run_name(self) -> str:
        """``"<run_name>-<config_hash>"``; ``run_name`` None = ``"<loss>_<bits>"`` (``"<loss>_<bits>_seed<N>"`` for
        seeds other than 0): changed parameters train a new run."""
        from hhlib.spread import seed_run_name

        return f"{self.run_name or seed_run_name(f'{self.loss}_{self.bits}', self.seed)}-{self.config_hash}"

    @property
    def run_dir(self) -> Path:
        """Folder of this run's files: ``<out_dir>/<dataset>/checkpoints/<resolved_run_name>``."""
        return artifacts.run_dir(self.out_dir, self.dataset, self.resolved_run_name)

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = _allowed_types(hints[f.name])
            if float in allowed and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not _is_instance(value, allowed):
                names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
                raise ConfigError(f"TrainConfig.{f.name} must be {names}, got {value!r} ({type(value).__name__})")

    def _check_values(self) -> None:
        from hhlib.data import DATASETS
        from hhlib.losses import LOSSES
        from hhlib.model import PRESETS

        for name, registry in (("dataset", DATASETS), ("preset", PRESETS), ("loss", LOSSES),
                               ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in registry:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r} is unknown: valid names are {sorted(registry)}")
        positive = ("bits", "batch_size", "epochs", "eval_batch_size", "lr")
        non_negative = ("weight_decay", "momentum", "warmup_epochs", "min_lr_ratio", "eval_every", "num_workers")
        optional_positive = ("img_size", "query_per_class", "train_per_class", "database_limit", "grad_clip",
                             "num_threads", "validation_per_class")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in optional_positive:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"TrainConfig.{name} must be > 0 or None, got {value!r}")
        if self.min_lr_ratio > 1:
            raise ConfigError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.run_name is not None:
            try:
                artifacts.run_dir(self.out_dir, self.dataset, self.run_name)
            except ValueError as error:
                raise ConfigError(f"TrainConfig.run_name: {error}") from None


def _allowed_types(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _allowed_types(arg))
    origin = typing.get_origin(hint)
    return (origin,) if origin is not None else (hint,)


def _is_instance(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in allowed:
        return False  # True is an int in Python, but never a valid batch size or learning rate
    return isinstance(value, allowed)


@dataclass
class RunResult:
    """What one training run produced.

    Attributes:
        final_map: mAP@topk of the final model (the main figure, docs/method.md §3).
        map_tie_aware: tie-aware mAP@topk of the final model.
        best_map: best mAP over the periodic evaluations (what the reference code reports;
            selected on the query set, so optimistic; labelled ``map_best_over_evals`` in metrics.json).
        best_epoch: epoch (1-based) of ``best_map``.
        topk: the k of mAP@k actually used (the database size for "all").
        bits: code length.
        epochs: epochs trained.
        train_seconds: wall time of the training steps (evaluations excluded), summed over resumptions.
        eval_seconds: wall time of the evaluations (encoding + ranking).
        images_per_second: training throughput (images / train_seconds).
        n_parameters: trainable parameters of the model (the loss's own excluded).
        run_dir: folder of the run's files.
        checkpoint_path: ``checkpoint.pt``.
        codes_path: ``codes.npz`` (final query/database codes and labels).
        metrics_path: ``metrics.jsonl`` (one line per epoch).
        history: the per-epoch records of metrics.jsonl.
        evaluation: the final model's full hhlib.evaluate.evaluate report (PR curve, P@N, radius 2).
        config: the TrainConfig as a dict.
        environment: versions, thread count and device of the run (hhlib.runtime.environment).
        flops: forward FLOPs of the network for one image (hhlib.complexity.model_complexity).
        pretrained_report: what loading ``config.pretrained`` did (hhlib.pretrained.LoadReport.to_dict
            plus ``source``); None when trained from scratch.
        health: hhlib.health.code_health of the final database codes (constant_bits, distinct_codes,
            collapsed): a collapsed run's mAP is not a result.
    """

    final_map: float
    map_tie_aware: float | None
    best_map: float
    best_epoch: int
    topk: int
    bits: int
    epochs: int
    train_seconds: float
    eval_seconds: float
    images_per_second: float
    n_parameters: int
    run_dir: str
    checkpoint_path: str
    codes_path: str
    metrics_path: str
    history: list = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    flops: int | None = None
    pretrained_report: dict | None = None
    health: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return asdict(self)

    def summary(self, **extra: Any) -> dict[str, Any]:
        """A ``metrics.json`` run row: map, map_tie_aware, map_best_over_evals, topk, seconds, ...

        Args:
            **extra: fields to add or override, e.g. ``method="hybridhash"``.

        Returns:
            A flat JSON-ready dict for ``hhlib.artifacts.update_metrics(runs=[...])``.
        """
        row = {
            "method": self.config.get("loss"),
            "bits": self.bits,
            "map": self.final_map,
            "map_tie_aware": self.map_tie_aware,
            "map_best_over_evals": self.best_map,
            "best_epoch": self.best_epoch,
            "topk": self.topk,
            "epochs": self.epochs,
            "lr": self.config.get("lr"),
            "train_seconds": round(self.train_seconds, 1),
            "images_per_second": round(self.images_per_second, 1),
            "n_parameters": self.n_parameters,
            "flops": self.flops,
            "preset": self.config.get("preset"),
            "seed": self.config.get("seed"),
            "map_last_evals": last_evaluations(self.history),
            "run_dir": self.run_dir,
            "pretrained": (self.pretrained_report or {}).get("summary"),
            "collapsed": self.health.get("collapsed"),
            "constant_bits": self.health.get("constant_bits"),
        }
        row.update(extra)
        return row


def last_evaluations(history: list[dict[str, Any]], count: int = 3) -> list[list[float]]:
    """The convergence evidence of a run: ``[epoch, mAP]`` of its last ``count`` evaluations.

    Args:
        history: the run's metrics.jsonl rows (``RunResult.history``).
        count: how many evaluations to keep.

    Returns:
        Up to ``count`` ``[epoch, map]`` pairs, oldest first.
    """
    evaluated = [[row["epoch"], row["map"]] for row in history if row.get("map") is not None]
    return evaluated[-count:]


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


@torch.no_grad()
def encode(
    model: nn.Module,
    data: Dataset | DataLoader,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    features: bool = False,
    continuous: bool = False,
    limit: int | None = None,
    num_workers: int = 0,
) -> tuple[np.ndarray, ...]:
    """Encode a split into binary codes, in batches, with no gradient (docs/method.md §4: codes = sign of outputs).

    Args:
        model: a HybridHash network (DDP/compiled wrappers are unwrapped); it is put in eval mode
            and moved to ``device``.
        data: a Dataset of ``(image (3, S, S), label (C,), index)`` items, or a DataLoader over one.
        device: where to run (``"auto"`` = hhlib.runtime.resolve_device); autocast on CUDA.
        batch_size: images per forward pass when ``data`` is a Dataset.
        features: also return the pooled pre-hash features (``model.features``; DLBHC re-ranking).
        continuous: return the tanh outputs (N, bits) float32 in (-1, 1) instead of the codes (t-SNE input).
        limit: encode only the first ``limit`` items of a Dataset (None = all).
        num_workers: DataLoader worker processes decoding a Dataset's images (JPEG sets: decoding
            on the main process would keep the accelerator waiting; benchmarks/bench_data.py).
            Images stream batch by batch either way: only the codes are kept.

    Returns:
        codes (N, bits) int8 in {-1, +1} (sign of the outputs, 0 -> -1: ``hhlib.hamming.ZERO_RULE``) or, when ``continuous``, the
        outputs; labels (N, C) float32; and, when ``features``, features (N, D) float32; all numpy,
        in the data's order.
    """
    from hhlib.hamming import signs  # imported here: hhlib.hamming loads numba

    device = resolve_device(device)
    net = _unwrap(model).to(device).eval()
    if limit is not None and not isinstance(data, DataLoader):
        data = Subset(data, range(min(int(limit), len(data))))
    # A DataLoader draws its base seed from the global RNG unless given a generator: evaluating in
    # the middle of training would then change the training that follows (tests/test_determinism.py).
    loader = data if isinstance(data, DataLoader) else DataLoader(
        data, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    dtype = autocast_dtype(device)
    codes, labels, feats = [], [], []
    for images, batch_labels, _ in loader:
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs = net(images, logits=True)
            if features:
                feats.append(net.features(images).float().cpu())
        if continuous:
            codes.append(torch.tanh(outputs.float()).cpu())
        else:
            codes.append(signs(outputs.float()).to(torch.int8).cpu())
        labels.append(batch_labels.float().cpu())
    bits = _unwrap(model).config.bits if hasattr(_unwrap(model), "config") else 0
    out = (
        torch.cat(codes).numpy() if codes else np.zeros((0, bits), np.float32 if continuous else np.int8),
        torch.cat(labels).numpy() if labels else np.zeros((0, 0), np.float32),
    )
    if features:
        out += (torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32),)
    return out


def _build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    # Adam(W) run as one fused kernel and the others over all tensors at once (foreach): on a CPU
    # the per-tensor loop was ~7% of a small32 step (docs/performance.md); same update rule
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum,
                                   foreach=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum,
                           nesterov=config.momentum > 0, foreach=True)


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate of one optimisation step under the config's schedule.

    Args:
        config: the run's config (lr, schedule, warmup_epochs, min_lr_ratio).
        step: 0-based global step.
        total_steps: steps of the whole run (epochs * steps_per_epoch).
        steps_per_epoch: optimiser steps per epoch.

    Returns:
        The lr: a linear warmup from lr / warmup_steps to lr over ``warmup_epochs``, then constant
        (``"constant"``) or a cosine from lr to ``lr * min_lr_ratio`` at the last step (``"cosine"``).
    """
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    progress = (step - warmup) / max(total_steps - warmup - 1, 1)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _rng_state(device: torch.device) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _resolved(values: dict[str, Any]) -> dict[str, Any]:
    """A config dict with its loss hyperparameters resolved with the loss's defaults: the run's identity
    (config_hash hashes it; the resume check compares it)."""
    from hhlib.losses import resolved_loss_params

    return {**values, "loss_params": resolved_loss_params(values["loss"], values.get("loss_params") or {})}


def _check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint written by another config (the same identity as config_hash: {} equals the loss's defaults,
    and where the run lives, LOCATION_FIELDS, is not part of it, so a run folder moved to another out_dir resumes)."""
    current = _resolved(config.to_dict())
    saved = _resolved(saved) if saved.get("loss") is not None else saved
    differing = [
        f"{name}: {saved.get(name)!r} -> {current[name]!r}"
        for name in current
        if name not in RESUME_FREE_FIELDS + LOCATION_FIELDS
        and artifacts.json_ready(saved.get(name)) != artifacts.json_ready(current[name])
    ]
    if differing:
        raise ConfigError(
            f"cannot resume from {path}: it was written by a different config ({'; '.join(differing)}). "
            "Restore those values, set resume=False to start over, or pick another run_name/out_dir"
        )


class _GatherWithGradient(torch.autograd.Function):
    """all_gather whose backward sums the gradients over ranks and returns this rank's slice.

    Each rank's loss is the same function of the global batch, so after the all_reduce every rank
    holds world_size x its share of the single-process gradient; DDP's averaging then gives exactly
    the single-process gradient. (Written out because torch.distributed.nn's all_gather is deprecated
    and gloo has no reduce_scatter.)
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def _gather(tensor: torch.Tensor, context: DistributedContext, differentiable: bool = False) -> torch.Tensor:
    """Concatenate a per-rank batch tensor over ranks (rank order); gradients flow back when differentiable."""
    if not context.is_distributed:
        return tensor
    if differentiable:
        return _GatherWithGradient.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(context.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def _train_batches(dataset: Dataset, sampler: DistributedSampler, batch_size: int, device: torch.device,
                   config: TrainConfig, generator: torch.Generator) -> typing.Iterable:
    """The epoch's batches: an in-memory split resized once and kept on ``device`` (hhlib.batches), else a DataLoader.

    Both give the same batches in the same order with the same random draws; ``num_workers`` only
    applies to the DataLoader (image-list datasets).
    """
    from hhlib.batches import InMemoryBatches, supports_in_memory

    if supports_in_memory(dataset):
        return InMemoryBatches(dataset, sampler, batch_size, device)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=config.num_workers,
        pin_memory=device.type == "cuda", drop_last=False, generator=generator, persistent_workers=False,
    )


def _evaluate(model: nn.Module, splits: Any, config: TrainConfig, device: torch.device,
              loss: nn.Module | None = None) -> tuple[dict, dict]:
    """Encode query and database, and compute the docs/method.md §4 report (mAP@topk, tie-aware mAP, curves)."""
    from hhlib.evaluate import evaluate
    from hhlib.weighted_hamming import weighted_mean_average_precision

    query_codes, query_labels = encode(model, splits.query, device, config.eval_batch_size, num_workers=config.num_workers)
    database_codes, database_labels = encode(model, splits.database, device, config.eval_batch_size,
                                             num_workers=config.num_workers)
    report = evaluate(query_codes, database_codes, query_labels, database_labels, topk=splits.topk)
    weights = None if loss is None else loss.retrieval_weights()
    if weights is not None:  # DRSDH: rank by its learned bit weights; the Hamming figures stay as map_hamming etc.
        report["map_hamming"], report["ranking"] = report["map"], "weighted_hamming"
        report["map"] = weighted_mean_average_precision(query_codes, database_codes, query_labels,
                                                        database_labels, weights, splits.topk)
    codes = {"query_codes": query_codes, "database_codes": database_codes,
             "query_labels": query_labels, "database_labels": database_labels}
    return report, codes


def _load_splits(config: TrainConfig) -> Any:
    from hhlib.data import get_spec, load_splits
    from hhlib.transforms import build_transform

    splits = load_splits(
        config.dataset, config.data_dir, seed=config.split_seed, img_size=_image_size(config),
        query_per_class=config.query_per_class, train_per_class=config.train_per_class,
        database_limit=config.database_limit,
    )
    if config.transform_params:
        # load_splits takes no augmentation options: rebuild the train transform with them
        try:
            splits.train.transform = build_transform(get_spec(config.dataset).transform, True, _image_size(config),
                                                     **config.transform_params)
        except TypeError as error:
            raise ConfigError(f"TrainConfig.transform_params {config.transform_params}: {error}") from None
        splits.params["transform_params"] = dict(config.transform_params)
    if config.validation_per_class is not None:
        from hhlib.validation import validation_splits

        splits = validation_splits(splits, config.validation_per_class, seed=config.split_seed)
    return splits


def _image_size(config: TrainConfig) -> int:
    """Side of the images: ``img_size``, else the model override's, else the preset's (32 for tiny32/small32)."""
    from hhlib.model import PRESETS

    if config.img_size is not None:
        return config.img_size
    return int(config.model_overrides.get("img_size", PRESETS[config.preset].img_size))


def _build_network(config: TrainConfig) -> nn.Module:
    """The run's network, freshly initialised: preset + the loss's model overrides (e.g. NINH's head) + the config's."""
    from hhlib.losses import LOSSES
    from hhlib.model import build

    overrides = {**LOSSES[config.loss].model_overrides, "img_size": _image_size(config), **config.model_overrides}
    try:
        return build(config.preset, bits=config.bits, **overrides)
    except TypeError as error:
        raise ConfigError(f"TrainConfig.model_overrides {config.model_overrides}: {error}") from None


def _build_model(config: TrainConfig) -> tuple[nn.Module, dict | None]:
    """The network, with the NesT weights of ``config.pretrained`` loaded (raises when the backbone did not load)."""
    from hhlib.model import from_pretrained_nest
    from hhlib.pretrained import require_backbone

    model = _build_network(config)
    if config.pretrained is None:
        return model, None
    report = require_backbone(from_pretrained_nest(model, config.pretrained), config.pretrained)
    return model, {"source": config.pretrained, **report.to_dict()}


def load_trained_model(checkpoint_path: str | Path, device: str | torch.device = "auto") -> nn.Module:
    """Rebuild a trained network from a run's checkpoint, in eval mode.

    Args:
        checkpoint_path: a run's ``checkpoint.pt`` written by :func:`fit` (it records the TrainConfig).
        device: where to put the network (``"auto"`` = hhlib.runtime.resolve_device).

    Returns:
        The network with the checkpoint's weights, on ``device``, in eval mode.

    Raises:
        FileNotFoundError: no checkpoint at the path.
        ValueError: the checkpoint's weights do not fit the network its config describes.
    """
    from hhlib.model import load_checkpoint

    state = artifacts.load_checkpoint(checkpoint_path)
    network = _build_network(TrainConfig.from_dict(state["config"]))
    load_checkpoint(network, state["model"])
    return network.to(resolve_device(device)).eval()


@dataclass
class _Run:
    """What one :func:`fit` call trains with, built once before its first epoch.

    ``model`` is the bare network (it is evaluated and checkpointed); ``network`` wraps it for the
    training steps (torch.compile, DistributedDataParallel) and, like the batches, is set by
    :func:`_prepare_batches` only after a checkpoint was restored.
    """

    config: TrainConfig
    context: DistributedContext
    device: torch.device
    splits: Any
    fingerprint: str
    loss: nn.Module
    model: nn.Module
    parameters: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    n_parameters: int
    flops: int
    pretrained_report: dict | None
    network: nn.Module | None = None
    sampler: DistributedSampler | None = None
    loader_generator: torch.Generator | None = None
    loader: typing.Iterable | None = None
    steps_per_epoch: int = 0

    @property
    def checkpoint_path(self) -> Path:
        """The run's ``checkpoint.pt``."""
        return self.config.run_dir / artifacts.CHECKPOINT_FILE


@dataclass
class _Progress:
    """How far the run is: what a checkpoint carries over (all but ``report``/``codes``, the latest evaluation's)."""

    start_epoch: int = 0
    history: list = field(default_factory=list)
    best_map: float = -1.0
    best_epoch: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    report: dict | None = None
    codes: dict | None = None


def fit(config: TrainConfig, *, max_epochs: int | None = None) -> RunResult | None:
    """Train one model under ``config``, evaluating on the protocol's query/database splits.

    The run's files go to ``config.run_dir``: ``checkpoint.pt`` (every epoch, atomic),
    ``metrics.jsonl`` (one line per epoch), ``codes.npz`` and ``result.json`` (at the end).
    Launched by ``torchrun`` with several processes it trains data-parallel (see module docstring).

    Args:
        config: a validated :class:`TrainConfig`.
        max_epochs: train at most this many epochs in this call, then return None (a stopped run,
            e.g. to time-slice a long run; the next call with ``resume=True`` continues it).

    Returns:
        The :class:`RunResult` of the final model; None when ``max_epochs`` stopped the call early.
        A finished run found on disk (``resume=True``, same config) is returned without training.

    Raises:
        ConfigError: an invalid config, batch size not divisible by the world size, or a checkpoint
            of a different config on resume.
        FloatingPointError: the loss became NaN/inf (lower ``lr`` or set ``grad_clip``).
    """
    from hhlib import logs  # imported here: `python -m hhlib.logs` must not find it already loaded

    if not isinstance(config, TrainConfig):
        raise ConfigError(f"fit() takes a TrainConfig, got {type(config).__name__}: use TrainConfig.from_dict(values)")
    context = init_distributed()
    if config.batch_size % context.world_size:
        raise ConfigError(f"batch_size {config.batch_size} is not divisible by the world size {context.world_size}: "
                          "batch_size is the global batch; pick a multiple of the number of processes")
    device = resolve_device(config.device)
    set_threads(config.num_threads)
    saved = _saved_checkpoint(config, device)
    result_path = config.run_dir / artifacts.RESULT_FILE
    if saved is not None and saved["epoch"] >= config.epochs and result_path.is_file():
        return _finished_result(config, result_path)

    run = _build_run(config, context, device, saved)
    progress = _restore(run, saved)
    _prepare_batches(run)  # after the restore: DDP broadcasts the weights it finds at construction
    logs.install_default_handler()
    call_start = time.perf_counter()
    end_epoch = config.epochs if max_epochs is None else min(config.epochs, progress.start_epoch + max_epochs)
    for epoch in range(progress.start_epoch, end_epoch):
        _run_epoch(run, progress, epoch, call_start)
    if end_epoch < config.epochs:
        return None
    return _finish(run, progress)


def _saved_checkpoint(config: TrainConfig, device: torch.device) -> dict[str, Any] | None:
    """The run's checkpoint when ``config.resume`` and it exists, checked to come from the same config; else None."""
    path = config.run_dir / artifacts.CHECKPOINT_FILE
    if not (config.resume and path.is_file()):
        return None
    saved = artifacts.load_checkpoint(path, device)
    _check_resumable(saved["config"], config, path)
    return saved


def _build_run(config: TrainConfig, context: DistributedContext, device: torch.device,
               saved: dict[str, Any] | None) -> _Run:
    """Seed, then build the splits, loss, model, optimizer and AMP scaler on ``device`` (freshly initialised)."""
    from hhlib import losses

    seed_everything(config.seed)
    splits, fingerprint = _load_checked_splits(config, saved)
    loss = losses.build(config.loss, config.bits, splits.n_classes, len(splits.train), **config.loss_params)
    model, pretrained_report = _build_model(config)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops = model_complexity(model).flops  # one image, eval mode, no randomness drawn
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.to(device)
    loss.to(device)
    loss.prepare(torch.from_numpy(splits.labels("train")).to(device))
    parameters = [p for p in list(model.parameters()) + list(loss.parameters()) if p.requires_grad]
    amp_dtype = autocast_dtype(device, config.amp)
    run = _Run(
        config=config, context=context, device=device, splits=splits, fingerprint=fingerprint, loss=loss,
        model=model, parameters=parameters, optimizer=_build_optimizer(config, parameters),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16), amp_dtype=amp_dtype,
        n_parameters=n_parameters, flops=flops, pretrained_report=pretrained_report,
    )
    if context.is_distributed:
        seed_everything(config.seed + context.rank)  # distinct augmentation / drop-path draws per rank
    return run


def _load_checked_splits(config: TrainConfig, saved: dict[str, Any] | None) -> tuple[Any, str]:
    """The run's splits and their fingerprint; raises when a checkpoint being resumed was trained on other data."""
    from hhlib.data import split_fingerprint

    splits = _load_splits(config)
    fingerprint = split_fingerprint(splits)
    if saved is not None and saved.get("split_fingerprint") != fingerprint:
        raise ConfigError(
            f"cannot resume from {config.run_dir / artifacts.CHECKPOINT_FILE}: it was trained on other data (split "
            f"fingerprint {saved.get('split_fingerprint')} != {fingerprint} now: the dataset files or their order "
            "changed). Restore the data, or delete that run folder to train again on the new data"
        )
    return splits, fingerprint


def _restore(run: _Run, saved: dict[str, Any] | None) -> _Progress:
    """Load a checkpoint's model, loss, optimizer, scaler and RNG states into ``run``; its progress (or a fresh one)."""
    if saved is None:
        return _Progress()
    run.model.load_state_dict(saved["model"])
    run.loss.load_state_dict(saved["loss"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scaler.load_state_dict(saved["scaler"])
    rng = saved["rng"]
    _set_rng_state(rng[run.context.rank % len(rng)], run.device)
    return _Progress(
        start_epoch=saved["epoch"], history=list(saved["history"]), best_map=saved["best_map"],
        best_epoch=saved["best_epoch"], train_seconds=saved["train_seconds"], eval_seconds=saved["eval_seconds"],
    )


def _prepare_batches(run: _Run) -> None:
    """Wrap the model for training (torch.compile, DDP) and set up this rank's sampler and batches."""
    config, context = run.config, run.context
    network: nn.Module = torch.compile(run.model) if config.compile else run.model
    if context.is_distributed:
        network = nn.parallel.DistributedDataParallel(
            network, device_ids=[run.device.index] if run.device.type == "cuda" else None
        )
    run.network = network
    run.sampler = DistributedSampler(run.splits.train, num_replicas=context.world_size, rank=context.rank,
                                     shuffle=True, seed=config.seed, drop_last=False)
    run.loader_generator = torch.Generator()
    run.loader = _train_batches(run.splits.train, run.sampler, config.batch_size // context.world_size, run.device,
                                config, run.loader_generator)
    run.steps_per_epoch = len(run.loader)


def _run_epoch(run: _Run, progress: _Progress, epoch: int, call_start: float) -> None:
    """Train one epoch, evaluate when it is due, then checkpoint and log (rank 0) and wait for every rank."""
    config = run.config
    record = _train_epoch(run, epoch)
    progress.train_seconds += record["seconds"]
    last = epoch + 1 == config.epochs
    if (last or (config.eval_every and (epoch + 1) % config.eval_every == 0)) and run.context.is_main:
        _evaluate_epoch(run, progress, record, epoch)
    progress.history.append(record)
    _save_epoch(run, progress, epoch, last, call_start)
    if run.context.is_distributed:
        dist.barrier()


def _train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass over this rank's batches; the epoch's metrics.jsonl record (loss, lr, images_per_second, seconds).

    Raises:
        FloatingPointError: the epoch's mean loss is NaN or infinite.
    """
    config = run.config
    run.sampler.set_epoch(epoch)
    run.loader_generator.manual_seed(config.seed * 100_003 + epoch)  # worker seeds; leaves the global RNG alone
    run.loss.set_epoch(epoch)
    run.network.train()
    run.loss.train()
    show = config.progress and run.context.is_main
    bar = tqdm(total=run.steps_per_epoch, disable=not show, leave=False, dynamic_ncols=True,
               desc=f"{config.resolved_run_name} epoch {epoch + 1}/{config.epochs}")
    loss_sum = torch.zeros((), device=run.device)
    seen, lr = 0, None
    start = time.perf_counter()
    for step, (images, labels, indices) in enumerate(run.loader):
        lr = _set_learning_rate(run, epoch * run.steps_per_epoch + step)
        value, batch_items = _train_step(run, images, labels, indices)
        loss_sum += value
        seen += batch_items
        bar.update(1)
        if show and (step % 10 == 0 or step == run.steps_per_epoch - 1):
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{loss_sum.item() / (step + 1):.4f}", img_s=f"{seen / elapsed:.0f}")
    bar.close()
    seconds = time.perf_counter() - start
    mean_loss = loss_sum.item() / max(run.steps_per_epoch, 1)
    if not math.isfinite(mean_loss):
        raise FloatingPointError(
            f"training loss is {mean_loss} at epoch {epoch + 1}: lower lr (now {config.lr}) or set grad_clip"
        )
    return {"epoch": epoch + 1, "loss": mean_loss, "lr": lr, "images_per_second": seen / max(seconds, 1e-9),
            "seconds": seconds}


def _set_learning_rate(run: _Run, global_step: int) -> float:
    """Put the schedule's learning rate of ``global_step`` into every parameter group; returns it."""
    lr = learning_rate(run.config, global_step, run.steps_per_epoch * run.config.epochs, run.steps_per_epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def _train_step(run: _Run, images: torch.Tensor, labels: torch.Tensor, indices: Any) -> tuple[torch.Tensor, int]:
    """One optimisation step on this rank's batch; the (detached) loss and the global batch size."""
    config, device, context = run.config, run.device, run.context
    images = images.to(device, non_blocking=True)
    if device.type == "cuda" and config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = labels.to(device, non_blocking=True).float()
    indices = torch.as_tensor(indices).to(device, non_blocking=True).long()
    with torch.autocast(device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        outputs = run.network(images, logits=run.loss.takes_logits)
    outputs = _gather(outputs.float(), context, differentiable=True)
    labels = _gather(labels, context)
    indices = _gather(indices, context)
    value = run.loss(outputs, labels, indices)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(value).backward()
    if config.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.parameters, config.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return value.detach(), len(outputs)


def _evaluate_epoch(run: _Run, progress: _Progress, record: dict[str, Any], epoch: int) -> None:
    """Evaluate the model now (rank 0): the mAPs go into ``record``, the report/codes and best mAP into ``progress``."""
    eval_start = time.perf_counter()
    progress.report, progress.codes = _evaluate(run.model, run.splits, run.config, run.device, run.loss)
    record["eval_seconds"] = time.perf_counter() - eval_start
    progress.eval_seconds += record["eval_seconds"]
    record["map"], record["map_tie_aware"] = progress.report["map"], progress.report["map_tie_aware"]
    if progress.report["map"] > progress.best_map:
        progress.best_map, progress.best_epoch = progress.report["map"], epoch + 1


def _save_epoch(run: _Run, progress: _Progress, epoch: int, last: bool, call_start: float) -> None:
    """Gather every rank's RNG state; rank 0 writes the checkpoint (and the codes after the last epoch),
    metrics.jsonl and the epoch's log line."""
    from hhlib import logs

    config = run.config
    rng = _rng_states(run)
    if not run.context.is_main:
        return
    if last:
        artifacts.save_codes(config.run_dir / artifacts.CODES_FILE, **progress.codes)
    artifacts.save_checkpoint(run.checkpoint_path, _checkpoint_state(run, progress, rng, epoch))
    artifacts.write_jsonl(config.run_dir / artifacts.METRICS_LOG_FILE, progress.history)
    per_epoch = (time.perf_counter() - call_start) / (epoch + 1 - progress.start_epoch)
    log.info(logs.epoch_message(config.resolved_run_name, progress.history[-1], config.epochs,
                                per_epoch * (config.epochs - epoch - 1)))


def _rng_states(run: _Run) -> list[dict[str, Any]]:
    """Every rank's RNG state, in rank order (one entry without DDP)."""
    if not run.context.is_distributed:
        return [_rng_state(run.device)]
    states = [None] * run.context.world_size
    dist.all_gather_object(states, _rng_state(run.device))
    return states


def _checkpoint_state(run: _Run, progress: _Progress, rng: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    """Everything needed to resume after ``epoch`` (0-based) exactly as if the run had not stopped."""
    config = run.config
    return {
        "model": run.model.state_dict(), "loss": run.loss.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(), "rng": rng, "epoch": epoch + 1, "config": config.to_dict(),
        "history": progress.history, "best_map": progress.best_map, "best_epoch": progress.best_epoch,
        "train_seconds": progress.train_seconds, "eval_seconds": progress.eval_seconds,
        "sampler": {"seed": config.seed, "next_epoch": epoch + 1, "world_size": run.context.world_size},
        "split_fingerprint": run.fingerprint,
    }


def _finish(run: _Run, progress: _Progress) -> RunResult | None:
    """The finished run's result (rank 0; None on the other ranks), written to result.json.

    A run resumed at its last epoch whose result file was lost has no evaluation yet: it is evaluated again.
    """
    config = run.config
    if progress.report is None and run.context.is_main:
        eval_start = time.perf_counter()
        progress.report, progress.codes = _evaluate(run.model, run.splits, config, run.device, run.loss)
        progress.eval_seconds += time.perf_counter() - eval_start
        artifacts.save_codes(config.run_dir / artifacts.CODES_FILE, **progress.codes)
    if not run.context.is_main:
        return None
    health = code_health(progress.codes["database_codes"])
    if health["collapsed"]:
        # stacklevel 3: the warning points at the line that called fit() (_finish <- fit <- caller)
        warnings.warn(f"{config.resolved_run_name}: the codes collapsed ({health}): its mAP is not a result; "
                      "train longer, lower lr or set grad_clip, or check the data", RuntimeWarning, stacklevel=3)
    result = _run_result(run, progress, health)
    artifacts.write_json(config.run_dir / artifacts.RESULT_FILE, result.to_dict())
    return result


def _finished_result(config: TrainConfig, result_path: Path) -> RunResult:
    """A finished run's saved result, its files and location named where the run lives now (a run folder may
    have been moved to another out_dir: LOCATION_FIELDS are not part of its identity)."""
    saved = artifacts.read_json(result_path)
    return RunResult(**{
        **saved, **_run_files(config.run_dir),
        "config": {**saved["config"], **{field: getattr(config, field) for field in LOCATION_FIELDS}},
    })


def _run_files(run_dir: Path) -> dict[str, str]:
    """A :class:`RunResult`'s location fields: the run folder and the files in it."""
    return {"run_dir": str(run_dir), "checkpoint_path": str(run_dir / artifacts.CHECKPOINT_FILE),
            "codes_path": str(run_dir / artifacts.CODES_FILE), "metrics_path": str(run_dir / artifacts.METRICS_LOG_FILE)}


def _run_result(run: _Run, progress: _Progress, health: dict[str, Any]) -> RunResult:
    """The :class:`RunResult` of the final evaluation in ``progress``."""
    config, report, run_dir = run.config, progress.report, run.config.run_dir
    history, train_seconds = progress.history, progress.train_seconds
    return RunResult(
        final_map=report["map"], map_tie_aware=report["map_tie_aware"], best_map=max(progress.best_map, report["map"]),
        best_epoch=progress.best_epoch or config.epochs, topk=report["topk"], bits=config.bits, epochs=config.epochs,
        train_seconds=train_seconds, eval_seconds=progress.eval_seconds,
        images_per_second=sum(r["seconds"] * r["images_per_second"] for r in history) / max(train_seconds, 1e-9),
        n_parameters=run.n_parameters, **_run_files(run_dir), history=history, evaluation=report,
        config=config.to_dict(), environment=environment(run.device), flops=run.flops, pretrained_report=run.pretrained_report, health=health,
    )
