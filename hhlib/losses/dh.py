"""DH and SDH: quantization, balance (centred variance), bit independence and, for SDH, discriminative terms.

Liong, Lu, Wang, Moulin, Zhou, "Deep Hashing for Compact Binary Codes Learning", CVPR 2015.
With H the (N x K) top-layer outputs (tanh) and B = sign(H), DH minimises (Eq. 5)

    J = 1/2 ||B - H||_F^2 - lambda1 / (2N) tr(H^T H) + lambda2 / 2 sum_m ||W_m W_m^T - I||_F^2
        + lambda3 / 2 sum_m (||W_m||_F^2 + ||c_m||^2),

where the second term is, in the paper's words, the variance of the codes, there to give balanced bits,
and the third keeps the projections (hence the bits) independent. SDH (Eq. 11) adds the discriminative
term alpha (tr(Sigma_B) - tr(Sigma_W)) to the variance bracket, Sigma_W / Sigma_B the mean outer products
of code differences over similar / dissimilar pairs.

hhlib's batch objective, every term per image (B rows, mu the batch mean of H):

    L = 1/(2B) ||B - H||^2 - lambda1 / 2 sum_k Var_k(H) + lambda2 / 2 ||Cov(H) - I||_F^2
        [- lambda1 alpha / 2 (mean_D ||h_i - h_j||^2 - mean_S ||h_i - h_j||^2)]    (SDH),

Var and Cov centred over the batch: Cov(H) = (H - mu)^T (H - mu) / B. Why not the paper's literal weights:
read per image, the paper's variance term carries 1/N (lambda1 / N = 0.002 at N = 50,000) and is
uncentred, and its independence term acts on weight matrices with lambda2 = 0.001; on a network's outputs
those weights make one constant code (near-)optimal, which is what hhlib's first version learned
(Fashion-MNIST, mAP 0.10, every bit constant). Centring makes the term reward spread across images,
not large outputs. lambda1 keeps the paper's 100, now per image: the quantization term saturates the
tanh outputs within a few steps, and only a variance term that outweighs it spreads the codes before
(measured with tests/test_no_collapse.py's run: lambda1 = 1 or 10 ended with every bit constant).
lambda2 = 10 is hhlib's choice by the same measurement: with 1, the bits come out balanced but
correlated (about 2 codes per class); with 10, 5-10 codes per class.
SDH's lambda1 is 20, hhlib's choice by measurement: SDH's own discriminative term spreads the codes,
and with lambda1 = 100 the variance term (and with it the discriminative term, weighted lambda1 alpha / 2)
saturates the tanh outputs within the first epoch, fixing a coarse grouping of the classes (1-10 codes
per class). Too small a lambda1 fails the other way: the quantization term's pull towards the shared
sign of the first outputs wins, every tanh saturates exactly and the codes are constant (loss stuck at
lambda2 / 2 * K = 80). Notebook 05's validation protocol (16 bits, 16 epochs, lr 0.001), val mAP for
seeds 0 / 1 / 2: lambda1 = 100: 0.352 (seed 0); 50: 0.503 (seed 0); 30: 0.565 / 0.566 / 0.515;
20: 0.596 / 0.570 / 0.646 (the default); 10: 0.672 / 0.649 / 0.102 (collapsed; seed 2 collapsed in
notebook 05 too). At lambda1 = 100, alpha = 10 or lambda2 = 1 gave 0.195.
The weight decay (lambda3) belongs to the optimiser (set weight_decay = lambda3). DH is unsupervised:
it ignores the labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label


def centred_covariance(outputs: Tensor) -> Tensor:
    """Covariance of the bits over the batch, (H - mu)^T (H - mu) / B.

    Args:
        outputs: (B, bits) float.

    Returns:
        (bits, bits) float; its diagonal is the per-bit variance.
    """
    centred = outputs - outputs.mean(dim=0, keepdim=True)
    return centred.T @ centred / outputs.shape[0]


class DHLoss(HashLoss):
    """DH (Liong et al., CVPR 2015): quantization - lambda1 bit variance + lambda2 bit independence.

    Args:
        bits: code length K.
        n_classes: label width C (unused by DH; checked).
        n_train: training-split size (checked only).
        variance_weight: lambda1 of DH Eq. 5 (100, DH Sec. 4), applied per image to the centred variance.
        independence_weight: lambda2, weight of ||Cov(H) - I||^2 (hhlib's choice 10, measured; see module doc).

    Raises:
        ValueError: a weight is negative.
    """

    family = "unsupervised"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        variance_weight: float = 100.0,  # lambda1, DH Sec. 4 (as recalled); hhlib applies it per image (module doc)
        independence_weight: float = 10.0,  # hhlib's choice (measured, module doc): the paper's 0.001 weighs W, not outputs
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
            Scalar 1/(2B)||sign(H) - H||^2 - lambda1/2 tr Cov(H) + lambda2/2 ||Cov(H) - I||^2.
        """
        batch = outputs.shape[0]
        quantization = 0.5 * (outputs.detach().sign() - outputs).pow(2).sum() / batch
        covariance = centred_covariance(outputs)
        eye = torch.eye(self.bits, device=outputs.device, dtype=outputs.dtype)
        variance = 0.5 * covariance.diagonal().sum()
        independence = 0.5 * (covariance - eye).pow(2).sum()
        return quantization - self.variance_weight * variance + self.independence_weight * independence

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
        variance_weight: lambda1 (hhlib's choice 20, measured; DH's is 100: module doc).
        independence_weight: lambda2 (10, as DH).
        discriminative_weight: alpha of SDH Eq. 11 (1, as recalled from SDH Sec. 4; not checked offline).

    Raises:
        ValueError: a weight is negative.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        variance_weight: float = 20.0,  # lambda1, hhlib's choice (measured, module doc): the discriminative term spreads SDH's codes
        independence_weight: float = 10.0,  # lambda2, hhlib's choice, as DH
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
            Scalar: DH terms - lambda1 alpha / 2 (tr Sigma_B - tr Sigma_W).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        batch = outputs.shape[0]
        upper = torch.triu(torch.ones(batch, batch, dtype=torch.bool, device=outputs.device), diagonal=1)
        squared = (outputs[:, None, :] - outputs[None, :, :]).pow(2).sum(dim=2)[upper]
        similar = share_label(labels, labels)[upper] > 0
        within = squared[similar].sum() / similar.sum().clamp_min(1)
        between = squared[~similar].sum() / (~similar).sum().clamp_min(1)
        spread = 0.5 * self.variance_weight * self.discriminative_weight * (between - within)
        return self.unsupervised_terms(outputs) - spread
