"""Weights for the HybridHash network: ImageNet NesT-B transfer, official checkpoints, hhlib checkpoints.

Paper: HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4.1 starts from ImageNet-pretrained
NesT-B (timm's ``nest_base_jx``); docs/method.md §1 "Pretrained weights" lists the
shared tensors (patch embedding, position embeddings, transformer layers, the interaction
modules' local conv and norm, final norm). Everything else (global branches, hash layer)
keeps the NesT initialisation.

Loading follows one recipe: remap (rename keys, resize position embeddings) -> compare the
key sets with the expected ones -> ``load_state_dict``. Transfer from NesT returns a
:class:`LoadReport`; loading a full checkpoint raises, naming the keys, if anything is
missing or left over.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hhlib.layers import blockify, deblockify

# Model keys that have a counterpart in timm's NesT (docs/method.md §1, "Pretrained weights").
NEST_SHARED_KEYS = (
    r"patch_embed\.proj\.(weight|bias)",
    r"levels\.\d+\.pos_embed",
    r"levels\.\d+\.transformer_encoder\..+",
    r"levels\.\d+\.pool\.(conv|norm)\.(weight|bias)",
    r"norm\.(weight|bias)",
)

# Official HybridHash key -> hhlib key (regex, replacement), applied in order.
OFFICIAL_RENAMES = (
    (r"^module\.", ""),
    (r"\.conv_glo\.", ".conv_global."),
    (r"\.pos_embed_glo$", ".pos_embed"),
    (r"^hashlayer_train\.convS1\.", "hash_layer.conv_row."),
    (r"^hashlayer_train\.convS2\.", "hash_layer.conv_col."),
    (r"^hashlayer_train\.conv2\.", "hash_layer.conv_hash."),
    (r"^hashlayer_train\.", "hash_layer."),
)

# Official tensors hhlib has no counterpart for, with the reason load_checkpoint reports.
OFFICIAL_UNUSED = {
    r"FcLayer\..+": "the official model's FcLayer, never used by its forward (hhlib leaves it out)",
}
# Tensors of older hhlib checkpoints that the model no longer has, with the reason load_checkpoint reports.
LEGACY_UNUSED = {
    r"reference_fc\..+": "older hhlib's frozen copy of the official FcLayer, never used (hhlib now leaves it out)",
}

TIMM_NEST_NAME = "nest_base_jx"  # timm's ImageNet-1k NesT-B (JAX weights), docs/method.md §1


@dataclass
class LoadReport:
    """What a weight transfer did.

    Attributes:
        loaded: model keys that received a source tensor.
        new: model keys left at their initialisation (no usable source tensor).
        dropped: source keys that were not used.
        resized: model keys loaded from a source tensor of another shape (position embeddings).
        reasons: why each dropped key was dropped.
    """

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Counts plus the one-line summary, JSON-ready (what result.json records)."""
        return {"loaded": len(self.loaded), "new": len(self.new), "dropped": len(self.dropped),
                "resized": len(self.resized), "summary": str(self).splitlines()[0]}

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors, {len(self.new)} new, {len(self.dropped)} dropped, {len(self.resized)} resized"]
        if self.resized:
            lines.append("resized: " + ", ".join(self.resized))
        if self.new:
            lines.append("new (initialised): " + ", ".join(label for label, _ in _compress(self.new)))
        if self.dropped:
            lines.append("dropped: " + ", ".join(f"{label} ({self.reasons.get(key, 'unused')})" for label, key in _compress(self.dropped)))
        return "\n  ".join(lines)


def _compress(keys: list[str]) -> list[tuple[str, str]]:
    """Group per-layer keys (``...encoder.15.attn.qkv.weight``) into ``...encoder.{15..19}.*`` for printing.

    Returns (label, first key of the group) pairs in first-seen order.
    """
    groups: dict[str, list[int]] = {}
    first: dict[str, str] = {}
    order: list[str] = []
    for key in keys:
        match = re.match(r"^(.*\.transformer_encoder\.)(\d+)\.", key)
        if not match:
            order.append(key)
            first[key] = key
            continue
        stem = match.group(1)
        if stem not in groups:
            groups[stem] = []
            first[stem] = key
            order.append(stem)
        groups[stem].append(int(match.group(2)))
    out = []
    for item in order:
        if item in groups:
            layers = sorted(set(groups[item]))
            span = f"{layers[0]}" if len(layers) == 1 else f"{{{layers[0]}..{layers[-1]}}}"
            out.append((f"{item}{span}.*", first[item]))
        else:
            out.append((item, item))
    return out


def read_state_dict(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Read a state dict from a file or unwrap one given in memory.

    Args:
        source: a ``.pth``/``.pt``/``.bin`` file saved by ``torch.save``, a ``.safetensors`` file,
            or a mapping. A checkpoint dict holding the weights under ``"model"`` (hhlib's
            trainer), ``"state_dict"`` or ``"model_state_dict"`` is unwrapped; a DDP/DataParallel
            ``module.`` prefix is removed.

    Returns:
        dict key -> tensor (CPU for files).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the object holds no tensors.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist: pass the path of a .pth or .safetensors file")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Mapping = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    else:
        sd = source
    for wrapper in ("model", "state_dict", "model_state_dict"):
        if isinstance(sd, Mapping) and isinstance(sd.get(wrapper), Mapping):
            sd = sd[wrapper]
            break
    if not isinstance(sd, Mapping) or not any(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{source if isinstance(source, (str, Path)) else 'the given object'} holds no state dict: pass a state dict or a checkpoint with a 'model' entry")
    return {re.sub(r"^module\.", "", k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def resize_pos_embed(pos_embed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Resize a blocked position embedding by bicubic interpolation over its full map.

    Args:
        pos_embed: (1, T, N, C) float; T and N square numbers.
        shape: the target (1, T', N', C).

    Returns:
        (1, T', N', C) float: the embedding deblockified to a (sqrt(T*N))^2 map, interpolated
        (bicubic, align_corners False, as timm) to (sqrt(T'*N'))^2, blockified with edge sqrt(N').
    """
    _, blocks, tokens, _ = shape
    full = deblockify(pos_embed, math.isqrt(pos_embed.shape[2])).permute(0, 3, 1, 2)
    edge = math.isqrt(blocks * tokens)
    full = F.interpolate(full.float(), size=(edge, edge), mode="bicubic", align_corners=False).to(pos_embed.dtype)
    return blockify(full.permute(0, 2, 3, 1), math.isqrt(tokens))


def _is_shared(key: str) -> bool:
    return any(re.fullmatch(pattern, key) for pattern in NEST_SHARED_KEYS)


def _plan_nest(sd: Mapping[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Match a NesT state dict to ``model``: (tensors to load, dropped key -> reason, resized keys)."""
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    resized: list[str] = []
    for key, value in sd.items():
        key = re.sub(r"^module\.", "", key)
        if not _is_shared(key):
            dropped[key] = "no counterpart in HybridHash"
        elif key not in target:
            dropped[key] = "not in this model"
        elif value.shape == target[key].shape:
            out[key] = value
        elif key.endswith("pos_embed") and value.ndim == 4 and value.shape[-1] == target[key].shape[-1]:
            out[key] = resize_pos_embed(value, tuple(target[key].shape))
            resized.append(key)
        else:
            dropped[key] = f"shape {tuple(value.shape)} != model {tuple(target[key].shape)}"
    return out, dropped, resized


def remap_nest_state_dict(sd: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Turn a timm NesT state dict into the subset of ``model``'s state dict it can supply.

    Keys keep their names (hhlib uses timm's); position embeddings are resized when the grid
    differs; tensors without a counterpart or with an incompatible shape are left out.

    Args:
        sd: timm NesT state dict (e.g. ``nest_base_jx``), key -> tensor.
        model: the target :class:`hhlib.model.HybridHash`.

    Returns:
        dict model key -> tensor of exactly the model's shape.
    """
    return _plan_nest(sd, model)[0]


def _fetch_timm_nest() -> dict[str, torch.Tensor]:
    try:
        import timm

        return timm.create_model(TIMM_NEST_NAME, pretrained=True).state_dict()
    except Exception as error:  # network, hub or cache failures all end here
        raise RuntimeError(
            f"could not fetch timm's {TIMM_NEST_NAME} pretrained weights ({error}): on a machine with internet run "
            f"`torch.save(timm.create_model('{TIMM_NEST_NAME}', pretrained=True).state_dict(), 'nest_base_jx.pth')` "
            f"and pass that file's path"
        ) from error


def load_nest_weights(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], strict: bool = False) -> LoadReport:
    """Load every NesT-B tensor that has a counterpart in ``model`` (docs/method.md §1, "Pretrained weights").

    Args:
        model: a :class:`hhlib.model.HybridHash`.
        source: a local ``.pth``/``.safetensors`` file of timm's NesT state dict, a state dict, or
            ``"timm"`` to download ``nest_base_jx`` through timm (needs internet).
        strict: raise if a model tensor that has a NesT counterpart (patch embedding, position
            embeddings, transformer layers, interaction local conv/norm, final norm) stays new.

    Returns:
        The :class:`LoadReport` (loaded / new / dropped / resized keys).

    Raises:
        RuntimeError: ``"timm"`` was asked for but the download failed (the message says how to get a file).
        ValueError: ``strict`` and some shared tensor could not be loaded (the keys are named).
    """
    sd = _fetch_timm_nest() if isinstance(source, str) and source == "timm" else read_state_dict(source)
    tensors, dropped, resized = _plan_nest(sd, model)
    new = [key for key in model.state_dict() if key not in tensors]
    if strict:
        missing_shared = [key for key in new if _is_shared(key)]
        if missing_shared:
            raise ValueError(f"these tensors have a NesT counterpart but were not loaded: {missing_shared}; pass strict=False to keep them initialised")
    model.load_state_dict(tensors, strict=False)
    return LoadReport(loaded=list(tensors), new=new, dropped=list(dropped), resized=resized, reasons=dropped)


def plan_nest_weights(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor]) -> LoadReport:
    """The :class:`LoadReport` that :func:`load_nest_weights` would give, without changing ``model``.

    Works on a model built on the ``meta`` device (only shapes are compared), so a parameter check
    can test a weights file against every configuration in seconds.

    Args:
        model: a :class:`hhlib.model.HybridHash` (any device, ``meta`` included).
        source: a weights file or a state dict (as :func:`load_nest_weights`; no ``"timm"`` download).

    Returns:
        The report (loaded / new / dropped / resized keys).
    """
    tensors, dropped, resized = _plan_nest(read_state_dict(source), model)
    new = [key for key in model.state_dict() if key not in tensors]
    return LoadReport(loaded=list(tensors), new=new, dropped=list(dropped), resized=resized, reasons=dropped)


class PretrainedError(ValueError):
    """Pretrained weights were asked for but the backbone did not load from them."""


def backbone_problem(report: LoadReport, source: str | Path) -> str | None:
    """Why ``report`` shows that the NesT backbone did not load from ``source`` (None = it loaded).

    The backbone loaded when at least one tensor loaded and every model tensor with a NesT
    counterpart (patch embedding, position embeddings, transformer layers, interaction local
    conv/norm, final norm: :data:`NEST_SHARED_KEYS`) received one.

    Args:
        report: the result of :func:`load_nest_weights` or :func:`plan_nest_weights`.
        source: the weights file (for the message).

    Returns:
        A message naming the file, what loaded and the fix; None when the backbone loaded.
    """
    missing = [key for key in report.new if _is_shared(key)]
    if report.loaded and not missing:
        return None
    shown = ", ".join(label for label, _ in _compress(missing)) if missing else "(the model has no NesT tensor)"
    return (
        f"pretrained weights {source} did not load the backbone ({str(report).splitlines()[0]}; not loaded: {shown}): "
        f"pass timm's {TIMM_NEST_NAME} state dict for a NesT-B-sized preset (\"paper\"), or set pretrained: null "
        "to train from scratch"
    )


def require_backbone(report: LoadReport, source: str | Path) -> LoadReport:
    """Return ``report`` when the backbone loaded from ``source``; raise otherwise.

    Raises:
        PretrainedError: see :func:`backbone_problem` (names the file, the counts and the fix).
    """
    problem = backbone_problem(report, source)
    if problem:
        raise PretrainedError(problem)
    return report


def from_pretrained_nest(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], strict: bool = False) -> LoadReport:
    """Initialise ``model`` from ImageNet NesT-B weights; see :func:`load_nest_weights` (same arguments and result)."""
    return load_nest_weights(model, source, strict=strict)


def is_official_state_dict(sd: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict comes from the official HybridHash code (its hash layer is ``hashlayer_train``)."""
    return any(re.sub(r"^module\.", "", key).startswith(("hashlayer_train.", "FcLayer.")) for key in sd)


def remap_official_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official HybridHash state dict onto hhlib's names (see :data:`OFFICIAL_RENAMES`).

    Args:
        sd: the official model's state dict (reference-state-dict.txt lists its keys).

    Returns:
        The same tensors under hhlib's keys.
    """
    out = {}
    for key, value in sd.items():
        for pattern, replacement in OFFICIAL_RENAMES:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def load_checkpoint(model: nn.Module, path_or_state_dict: str | Path | Mapping[str, torch.Tensor]) -> LoadReport:
    """Load a complete checkpoint: hhlib's own, or one saved by the official HybridHash code.

    Every model tensor must be present with its exact shape and nothing may be left over.
    Official checkpoints need ``token_layout="reference"`` (their global branches use the
    official token reshape); their unused ``FcLayer.*`` is left out and listed in the report's
    ``dropped``.

    Args:
        model: a :class:`hhlib.model.HybridHash` built with the checkpoint's configuration.
        path_or_state_dict: a file (``.pth``/``.safetensors``), a state dict, or a checkpoint
            dict with a ``"model"`` entry (hhlib's trainer).

    Returns:
        A :class:`LoadReport` whose ``loaded`` lists every model key (nothing new or resized);
        ``dropped`` lists the official checkpoint's unused ``FcLayer.*`` (or an older hhlib
        checkpoint's ``reference_fc.*``), if any.

    Raises:
        ValueError: keys missing, left over, or of another shape (all named), or an official
            checkpoint given to a model with the paper token layout.
    """
    sd = read_state_dict(path_or_state_dict)
    official = is_official_state_dict(sd)
    if official:
        if getattr(getattr(model, "config", None), "token_layout", None) != "reference":
            raise ValueError(
                "this checkpoint comes from the official HybridHash code (keys hashlayer_train.*), whose block-token "
                "attention uses the reference token layout: build the model with token_layout='reference' to load it"
            )
        sd = remap_official_state_dict(sd)
    patterns = {**(OFFICIAL_UNUSED if official else {}), **LEGACY_UNUSED}
    unused = {key: reason for key in sd for pattern, reason in patterns.items() if re.fullmatch(pattern, key)}
    sd = {key: value for key, value in sd.items() if key not in unused}
    target = model.state_dict()
    missing = sorted(set(target) - set(sd))
    unexpected = sorted(set(sd) - set(target))
    mismatched = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(target[k].shape)}" for k in set(sd) & set(target) if sd[k].shape != target[k].shape)
    if missing or unexpected or mismatched:
        raise ValueError(
            f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}, shape mismatches {mismatched}; "
            f"build the model with the configuration the checkpoint was trained with"
        )
    model.load_state_dict(sd, strict=True)
    return LoadReport(loaded=list(target), dropped=list(unused), reasons=unused)
