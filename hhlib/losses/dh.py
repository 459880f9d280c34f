"""DH and SDH: quantization, balance (variance), bit independence and, for SDH, discriminative terms.

Liong, Lu, Wang, Moulin, Zhou, "Deep Hashing for Compact Binary Codes Learning", CVPR 2015.
With H the (N x K) top-layer outputs (tanh) and B = sign(H), DH minimises (Eq. 5)

    J = 1/2 ||B - H||_F^2 - lambda1 / (2N) tr(H^T H) + lambda2 / 2 sum_m ||W_m W_m^T - I||_F^2
        + lambda3 / 2 sum_m (||W_m||_F^2 + ||c_m||^2),

and SDH (Eq. 11) adds to the variance term the discriminative term alpha (tr(Sigma_B) - tr(Sigma_W)),
Sigma_W / Sigma_B the mean outer products of code differences over similar / dissimilar pairs, so
the bracket reads -lambda1 / 2 (tr(H^T H) / N + alpha (tr Sigma_B - tr Sigma_W)).
hhlib computes J / N on a batch (B rows) with the paper's N = n_train keeping the terms' relative
weights: 1/(2B) ||B - H||^2 - lambda1 / (2 n_train) * (1/B) tr(H^T H) [- lambda1 alpha / (2 n_train)
(mean_D ||h_i - h_j||^2 - mean_S ||h_i - h_j||^2)]. Two terms act on network weights, which a loss
does not see: the weight decay (lambda3) belongs to the optimiser (set weight_decay = lambda3), and the
bit-independence term is applied to the outputs, lambda2 / (2 n_train) ||H^T H / B - I||_F^2, which
equals the paper's ||W W^T - I||^2 when the top layer's inputs are whitened (Cov(W x) = W W^T).
DH is unsupervised: it ignores the labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label


class DHLoss(HashLoss):
    """DH (Liong et al., CVPR 2015): quantization - lambda1 variance + lambda2 bit independence.

    Args:
        bits: code length K.
        n_classes: label width C (unused by DH; checked).
        n_train: training-split size, the paper's N in lambda1 / (2N).
        variance_weight: lambda1 of DH Eq. 5 (100).
        independence_weight: lambda2 of DH Eq. 5 (0.001).

    Raises:
        ValueError: a weight is negative.
    """

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        variance_weight: float = 100.0,  # lambda1, DH Sec. 4 (as recalled; not checked offline)
        independence_weight: float = 0.001,  # lambda2, DH Sec. 4 (as recalled; not checked offline)
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if variance_weight < 0 or independence_weight < 0:
            raise ValueError(
                f"variance_weight={variance_weight} and independence_weight={independence_weight} must be >= 0"
            )
        self.variance_weight = variance_weight
        self.independence_weight = independence_weight

    def unsupervised_terms(self, outputs: Tensor) -> Tensor:
        """DH's three output terms of a batch, per image.

        Args:
            outputs: (B, bits) float tanh outputs H.

        Returns:
            Scalar 1/(2B)||sign(H) - H||^2 - lambda1/(2 n_train B) tr(H^T H) + lambda2/(2 n_train) ||H^T H/B - I||^2.
        """
        batch = outputs.shape[0]
        quantization = 0.5 * (outputs.detach().sign() - outputs).pow(2).sum() / batch
        variance = 0.5 * outputs.pow(2).sum() / batch
        correlation = outputs.T @ outputs / batch
        eye = torch.eye(self.bits, device=outputs.device, dtype=outputs.dtype)
        independence = 0.5 * (correlation - eye).pow(2).sum()
        return quantization + (self.independence_weight * independence - self.variance_weight * variance) / self.n_train

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DH loss of a batch (labels are checked, not used).

        Args:
            outputs: (B, bits) float tanh outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar loss.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        return self.unsupervised_terms(outputs)


class SDHLoss(DHLoss):
    """SDH (Liong et al., CVPR 2015): DH plus alpha (between-class - within-class) code spread.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size.
        variance_weight: lambda1 (100, as DH).
        independence_weight: lambda2 (0.001, as DH).
        discriminative_weight: alpha of SDH Eq. 11 (1).

    Raises:
        ValueError: a weight is negative.
    """

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        variance_weight: float = 100.0,  # lambda1, DH Sec. 4 (as recalled; not checked offline)
        independence_weight: float = 0.001,  # lambda2, DH Sec. 4 (as recalled; not checked offline)
        discriminative_weight: float = 1.0,  # alpha, SDH Sec. 3.3 (as recalled; not checked offline)
    ) -> None:
        super().__init__(bits, n_classes, n_train, variance_weight, independence_weight)
        if discriminative_weight < 0:
            raise ValueError(f"discriminative_weight={discriminative_weight} must be >= 0")
        self.discriminative_weight = discriminative_weight

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """SDH loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: DH terms - lambda1 alpha / (2 n_train) (tr Sigma_B - tr Sigma_W).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        batch = outputs.shape[0]
        upper = torch.triu(torch.ones(batch, batch, dtype=torch.bool, device=outputs.device), diagonal=1)
        squared = (outputs[:, None, :] - outputs[None, :, :]).pow(2).sum(dim=2)[upper]
        similar = share_label(labels, labels)[upper] > 0
        within = squared[similar].sum() / similar.sum().clamp_min(1)
        between = squared[~similar].sum() / (~similar).sum().clamp_min(1)
        spread = 0.5 * self.variance_weight * self.discriminative_weight * (between - within) / self.n_train
        return self.unsupervised_terms(outputs) - spread
