"""NINH / DNNH: triplet ranking loss on (query, similar, dissimilar) with the divide-and-encode head.

Lai, Pan, Liu, Yan, "Simultaneous Feature Learning and Hash Coding with Deep Neural Networks",
CVPR 2015 (the network-in-network hashing of the paper, also called DNNH). For a triplet
(I, I+, I-) with I+ more similar to I than I-, and codes F in [0, 1]^q (sigmoid units of the
divide-and-encode module), Eq. 2:

    l(F(I), F(I+), F(I-)) = max(0, 1 - (||F(I) - F(I-)||^2 - ||F(I) - F(I+)||^2)).

hhlib's heads end in tanh, so F = (u + 1) / 2 maps the outputs onto the paper's [0, 1] scale
(margin 1 keeps its meaning). Triplets: every valid (anchor, positive, negative) of the batch,
similar = shares a label (the paper's multi-label rule on NUS-WIDE); the loss is their mean.
The divide-and-encode head (one slice of the features per bit) is a model option: this loss
asks for it through ``model_overrides = {"head": "divide_encode"}``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label, triplet_mask


class NINHLoss(HashLoss):
    """NINH/DNNH (Lai et al., CVPR 2015): triplet ranking hinge on [0, 1] codes, margin 1.

    Args:
        bits: code length q.
        n_classes: label width C.
        n_train: training-split size.
        margin: the 1 of DNNH Eq. 2 (in squared-distance units of [0, 1] codes).

    Raises:
        ValueError: margin is negative.
    """

    family = "symmetric"

    model_overrides: ClassVar[dict] = {"head": "divide_encode"}

    def __init__(self, bits: int, n_classes: int, n_train: int, margin: float = 1.0) -> None:  # DNNH Eq. 2
        super().__init__(bits, n_classes, n_train)
        if margin < 0:
            raise ValueError(f"margin={margin} must be >= 0 (DNNH Eq. 2 uses 1)")
        self.margin = margin

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """Mean triplet ranking loss over the valid in-batch triplets (0 when the batch has none).

        Args:
            outputs: (B, bits) float tanh outputs u in (-1, 1).
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar loss.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        codes = (outputs + 1) / 2
        distance = (codes[:, None, :] - codes[None, :, :]).pow(2).sum(dim=2)
        valid = triplet_mask(share_label(labels, labels))
        hinge = (self.margin - (distance[:, None, :] - distance[:, :, None])).clamp_min(0)
        return (hinge * valid).sum() / valid.sum().clamp_min(1)
