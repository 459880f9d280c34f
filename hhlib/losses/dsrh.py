"""DSRH: deep semantic ranking with multi-level similarity and NDCG-weighted surrogate loss.

Zhao, Huang, Wang, Tan, "Deep Semantic Ranking Based Hashing for Multi-Label Image Retrieval",
CVPR 2015. The relevance of item x to query q is the number of labels they share, r = <y_q, y_x>.
With the relaxed Hamming distance d(q, x) = 1/2 (K - h_q^T h_x) on codes h in [-1, 1], the
surrogate of the ranking loss for a query (Eq. 5-6) is

    L_q = sum_i sum_{j: r_j < r_i} w(r_i, r_j) max(0, rho + d(q, x_i) - d(q, x_j)),
    w(r_i, r_j) = (2^r_i - 2^r_j) / Z,

which weights a mis-ordered pair by its NDCG cost; Z normalises the weights (hhlib: Z is the
ideal DCG of the query's in-batch list, sum over the ranks k of (2^r_(k) - 1) / log2(1 + k),
so a query's weights do not grow with the batch). The objective adds the mean-code regulariser
alpha / 2 ||mean_q h_q||^2 (balanced bits) and a weight decay beta / 2 ||W||^2, which belongs to the
optimiser (set the trainer's weight_decay to beta). Queries and database items are the batch
itself (every image is a query; the others are its list); the loss is the mean over the queries
that have at least one ordered pair.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import ranking_pair_mask, shared_label_counts


def ideal_dcg(levels: Tensor) -> Tensor:
    """Ideal DCG of each row's relevance list.

    Args:
        levels: (Q, N) float non-negative relevance levels.

    Returns:
        (Q,) float, sum_k (2^r_(k) - 1) / log2(1 + k) over the levels sorted in decreasing order.
    """
    ordered = levels.sort(dim=1, descending=True).values
    ranks = torch.arange(1, levels.shape[1] + 1, device=levels.device, dtype=levels.dtype)
    return ((torch.pow(2.0, ordered) - 1) / torch.log2(1 + ranks)).sum(dim=1)


class DSRHLoss(HashLoss):
    """DSRH (Zhao et al., CVPR 2015): NDCG-weighted triplet ranking surrogate + mean-code regulariser.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size.
        margin: rho of the surrogate hinge, in Hamming units (hhlib default 0.5).
        mean_code_weight: alpha of the regulariser alpha/2 ||mean h||^2 (hhlib default 1.0).

    Raises:
        ValueError: margin or weight is negative.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        margin: float = 0.5,  # rho, DSRH Eq. 6; hhlib default (paper value not checked offline)
        mean_code_weight: float = 1.0,  # alpha, DSRH Eq. 7; hhlib default (paper value not checked offline)
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if margin < 0 or mean_code_weight < 0:
            raise ValueError(f"margin={margin} and mean_code_weight={mean_code_weight} must be >= 0")
        self.margin = margin
        self.mean_code_weight = mean_code_weight

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DSRH loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs h.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: mean over queries of L_q + alpha / 2 ||mean h||^2.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        batch = outputs.shape[0]
        levels = shared_label_counts(labels, labels)
        others = ~torch.eye(batch, dtype=torch.bool, device=outputs.device)
        # the query itself is not in its own list
        normaliser = ideal_dcg(torch.where(others, levels, torch.zeros_like(levels)))
        gain = torch.pow(2.0, levels)
        weight = (gain[:, :, None] - gain[:, None, :]) / normaliser.clamp_min(1e-12)[:, None, None]
        distance = 0.5 * (self.bits - outputs @ outputs.T)
        hinge = (self.margin + distance[:, :, None] - distance[:, None, :]).clamp_min(0)
        valid = ranking_pair_mask(levels)
        per_query = (weight * hinge * valid).sum(dim=(1, 2))
        has_pairs = valid.any(dim=2).any(dim=1)
        ranking = per_query[has_pairs].sum() / has_pairs.sum().clamp_min(1)
        balance = 0.5 * outputs.mean(dim=0).pow(2).sum()
        return ranking + self.mean_code_weight * balance
