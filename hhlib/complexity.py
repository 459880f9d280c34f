"""Parameter counts and FLOPs of a built network, for the backbone comparison's table.

A fair comparison shows each backbone's size and cost beside its score (HybridHash, ICMR 2024,
Sec. 4 compares backbones; hhlib's house rules ask for parameters and FLOPs). FLOPs are counted
by ``torch.utils.flop_counter.FlopCounterMode`` on one image in eval mode: convolutions, matrix
products and attention, with a multiply-add counted as 2 FLOPs. Element-wise operations
(activations, normalisation, pooling) are not counted, as in the usual tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["Complexity", "model_complexity"]


@dataclass(frozen=True)
class Complexity:
    """Size and cost of a network.

    Attributes:
        parameters: all parameters (trainable or not).
        trainable: parameters with ``requires_grad``.
        flops: forward FLOPs for one image (a multiply-add = 2).
        input_shape: the (1, C, H, W) shape the FLOPs were counted at.
    """

    parameters: int
    trainable: int
    flops: int
    input_shape: tuple[int, ...]

    @property
    def macs(self) -> int:
        """Multiply-accumulates for one image (flops / 2)."""
        return self.flops // 2

    def to_dict(self) -> dict:
        """JSON-ready fields plus ``macs``."""
        return {**asdict(self), "input_shape": list(self.input_shape), "macs": self.macs}


def _input_shape(model: nn.Module, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_shape is not None:
        if len(input_shape) != 4 or input_shape[0] != 1 or min(input_shape) < 1:
            raise ValueError(f"input_shape {tuple(input_shape)} must be (1, C, H, W) with positive sizes, e.g. (1, 3, 32, 32)")
        return tuple(input_shape)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "img_size"):
        raise ValueError(f"{type(model).__name__} has no .config.img_size: pass input_shape=(1, C, H, W)")
    return (1, config.in_chans, config.img_size, config.img_size)


def model_complexity(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Complexity:
    """Count a network's parameters and its forward FLOPs on one image.

    Args:
        model: any module; a :class:`hhlib.model.HybridHash` knows its input size.
        input_shape: (1, C, H, W); None = (1, in_chans, img_size, img_size) from ``model.config``.

    Returns:
        The :class:`Complexity`. The model's train/eval mode is restored afterwards.

    Raises:
        ValueError: no input shape given and the model has no ``config.img_size``, or a bad shape.
    """
    shape = _input_shape(model, input_shape)
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(shape, device=device))
    finally:
        model.train(was_training)
    return Complexity(parameters, trainable, int(counter.get_total_flops()), shape)
