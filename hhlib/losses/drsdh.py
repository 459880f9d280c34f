"""DRSDH: bit-scalable hashing by regularized similarity learning (weighted bits, triplets, Laplacian).

Zhang, Lin, Zhang, Zuo, Zhang, "Bit-Scalable Deep Hashing With Regularized Similarity Learning for
Image Retrieval and Person Re-Identification", IEEE TIP 2015. Each bit k carries a learned weight
w_k; the weighted Hamming distance (relaxed on tanh outputs) is

    D_w(u, v) = 1/4 sum_k w_k^2 (u_k - v_k)^2        (= sum of w_k^2 over differing bits for +-1 codes),

triplets (anchor, same label, different label) are pushed apart by a margin in that distance, and a
Laplacian regulariser enforces adjacency consistency (neighbouring images get close codes):

    L = mean_triplets max(0, margin + D_w(a, p) - D_w(a, n)) + lambda * tr(U^T L_S U) / B,
    tr(U^T L_S U) = 1/2 sum_ij S_ij ||u_i - u_j||^2,   L_S = D - S.

Retrieval ranks by the same weighted distance on the binary codes (``retrieval_weights()``;
hhlib.weighted_hamming normalises the weights to sum_k w_k^2 = K); hhlib.train's evaluation then reports
that mAP as ``map`` and the plain Hamming one as ``map_hamming``.
Bit scalability: sorting the bits by |w_k| (``bit_order()``) and keeping the first K' gives a K'-bit code.
hhlib choices where the supervision must come from (outputs, labels, indices): the adjacency S of the
regulariser is "shares a label" inside the batch (the paper's neighbourhood of similar appearance is
not available from these inputs), the weights enter as w_k^2 so they stay non-negative, and the
margin default is bits / 4 Hamming units (a choice, not a published value). It was measured on notebook
05's validation protocol (16 bits, 16 epochs, lr 0.002): val mAP 0.559 / 0.417 (seeds 0 / 1) with
bits / 2, 0.571 / 0.550 with bits / 4. A Laplacian weight of 0.1 instead of 0.01 gave 0.199, and
normalising the weights inside the loss as at retrieval (sum w^2 = K) gave 0.264.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label, triplet_mask


class DRSDHLoss(HashLoss):
    """DRSDH (Zhang et al., TIP 2015): weighted-Hamming triplet margin loss + Laplacian regulariser.

    Owns ``bit_weights`` (bits,) initialised to 1; the trainer optimises it with the model.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size.
        margin: triplet margin in weighted Hamming units; None = bits / 4 (hhlib choice, measured: module doc).
        laplacian_weight: lambda of the adjacency-consistency regulariser (hhlib choice 0.01).

    Raises:
        ValueError: margin or weight is negative.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        margin: float | None = None,  # hhlib choice (measured, module doc): a quarter of the code length
        laplacian_weight: float = 0.01,  # hhlib choice: small next to the triplet term
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        self.margin = bits / 4.0 if margin is None else float(margin)
        if self.margin < 0 or laplacian_weight < 0:
            raise ValueError(f"margin={self.margin} and laplacian_weight={laplacian_weight} must be >= 0")
        self.laplacian_weight = laplacian_weight
        self.bit_weights = nn.Parameter(torch.ones(bits))

    def bit_order(self) -> Tensor:
        """Bits sorted by importance |w_k|, most important first (keep the first K' for a K'-bit code).

        Returns:
            (bits,) long permutation of the bit positions.
        """
        return torch.argsort(self.bit_weights.detach().abs(), descending=True)

    def retrieval_weights(self) -> Tensor:
        """The learned bit weights, for the weighted Hamming ranking at retrieval (hhlib.weighted_hamming).

        Returns:
            (bits,) float, detached, on the CPU.
        """
        return self.bit_weights.detach().cpu()

    def weighted_distance(self, codes_a: Tensor, codes_b: Tensor) -> Tensor:
        """Relaxed weighted Hamming distance between all rows of two code sets.

        Args:
            codes_a: (A, bits) float in [-1, 1].
            codes_b: (B, bits) float in [-1, 1].

        Returns:
            (A, B) float, 1/4 sum_k w_k^2 (a_k - b_k)^2.
        """
        difference = (codes_a[:, None, :] - codes_b[None, :, :]).pow(2)
        return 0.25 * (difference * self.bit_weights.pow(2)).sum(dim=2)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DRSDH loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: mean triplet hinge + lambda * Laplacian term / B.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        similarity = share_label(labels, labels)
        distance = self.weighted_distance(outputs, outputs)
        valid = triplet_mask(similarity)
        hinge = (self.margin + distance[:, :, None] - distance[:, None, :]).clamp_min(0)
        triplet = (hinge * valid).sum() / valid.sum().clamp_min(1)
        squared = (outputs[:, None, :] - outputs[None, :, :]).pow(2).sum(dim=2)
        laplacian = 0.5 * (similarity * squared).sum() / outputs.shape[0]
        return triplet + self.laplacian_weight * laplacian
