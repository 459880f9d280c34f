"""DSH: contrastive loss on real-valued outputs with margin 2k and the | |b| - 1 | regulariser.

Liu, Wang, Shan, Chen, "Deep Supervised Hashing for Fast Image Retrieval", CVPR 2016, Eq. 3-4.
For a pair (b_1, b_2) with y = 0 if similar and 1 if not, and k bits,

    L = 1/2 (1 - y) ||b_1 - b_2||^2 + 1/2 y max(m - ||b_1 - b_2||^2, 0)
        + alpha (|| |b_1| - 1 ||_1 + || |b_2| - 1 ||_1),       m = 2k, alpha = 0.01.

DSH's network ends in a linear layer (no tanh; the regulariser pulls outputs to +-1), so this loss
takes the model's pre-tanh outputs (``takes_logits = True``); sign() of them equals sign() of the tanh
outputs, so the codes are unchanged. Pairs: every unordered pair i < j of the batch, as DSH generates
pairs online from each mini-batch; the loss is the mean over those pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label


class DSHLoss(HashLoss):
    """DSH (Liu et al., CVPR 2016): pairwise contrastive loss with margin 2k plus alpha * | |b| - 1 |_1.

    Args:
        bits: code length k.
        n_classes: label width C.
        n_train: training-split size.
        margin: m of DSH Eq. 3; None = 2 * bits (the paper's m = 2k).
        regularization_weight: alpha of DSH Eq. 4 (0.01 in the paper).

    Raises:
        ValueError: margin or weight is negative.
    """

    family = "symmetric"

    takes_logits = True

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        margin: float | None = None,  # m = 2k, DSH Sec. 3.2
        regularization_weight: float = 0.01,  # alpha, DSH Sec. 4 (experiments)
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        self.margin = 2.0 * bits if margin is None else float(margin)
        if self.margin < 0 or regularization_weight < 0:
            raise ValueError(f"margin={self.margin} and regularization_weight={regularization_weight} must be >= 0")
        self.regularization_weight = regularization_weight

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DSH loss of a batch.

        Args:
            outputs: (B, bits) float real-valued (pre-tanh) outputs b.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: mean over pairs i < j of the pair loss (each pair's regulariser covers both members).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        batch = outputs.shape[0]
        upper = torch.triu(torch.ones(batch, batch, dtype=torch.bool, device=outputs.device), diagonal=1)
        squared_distance = (outputs[:, None, :] - outputs[None, :, :]).pow(2).sum(dim=2)[upper]
        similar = share_label(labels, labels)[upper]
        pair = 0.5 * similar * squared_distance + 0.5 * (1 - similar) * (self.margin - squared_distance).clamp_min(0)
        regularizer = (outputs.abs() - 1).abs().sum(dim=1)
        pair_regularizer = (regularizer[:, None] + regularizer[None, :])[upper]
        return (pair + self.regularization_weight * pair_regularizer).sum() / max(float(pair.numel()), 1.0)
