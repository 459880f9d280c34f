"""DCH: Cauchy cross-entropy on the normalised Hamming distance, with pair balancing and Cauchy quantization.

Cao, Long, Liu, Wang, "Deep Cauchy Hashing for Hamming Space Retrieval", CVPR 2018.
The distance of two continuous codes is the Hamming distance their cosine stands for,
d(h_i, h_j) = K/2 (1 - cos(h_i, h_j)), and the probability that a pair is similar is the Cauchy
kernel sigma(d) = gamma / (gamma + d): it falls fast inside a small Hamming radius and slowly beyond,
so dissimilar pairs far apart cost little and similar pairs are pulled inside the radius. Its
cross-entropy, weighted by w_ij = S/S1 (similar) or S/S0 (dissimilar) to balance the pairs, is (Eq. 6;
equation numbers here as recalled, not checked offline)

    l_ij = w_ij (s_ij log(d_ij / gamma) + log(1 + gamma / d_ij)),

and the Cauchy quantization loss (Eq. 7) pulls every |h_i| towards the all-ones vector:

    q_i = log(1 + d(|h_i|, 1) / gamma).

hhlib's loss is mean_{i<j} l_ij + lambda mean_i q_i over the batch. As in DeepHash-pytorch (DCH.py),
the cosine is clipped at 0.99 so that d >= K/200 and log d stays finite; DeepHash-pytorch also counts the
B self-pairs (i = j, at that clip) and the ordered pairs twice, hhlib uses each unordered pair once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import balanced_pair_weights, share_label

MAX_COSINE = 0.99  # DeepHash-pytorch DCH.py's clip: keeps d > 0 for identical directions


def cosine_hamming_distance(codes_a: Tensor, codes_b: Tensor, bits: int) -> Tensor:
    """Normalised Hamming distance K/2 (1 - cos), with the cosine clipped at 0.99.

    Args:
        codes_a: (A, bits) float.
        codes_b: (B, bits) float.
        bits: code length K.

    Returns:
        (A, B) float in [K/200, K]; equals the Hamming distance for +-1 codes that are not identical.
    """
    norms = codes_a.norm(dim=1, keepdim=True) * codes_b.norm(dim=1, keepdim=True).T
    cosine = (codes_a @ codes_b.T) / norms.clamp_min(1e-4)
    return 0.5 * bits * (1.0 - cosine.clamp(max=MAX_COSINE))


class DCHLoss(HashLoss):
    """DCH (Cao et al., CVPR 2018): balanced Cauchy cross-entropy + lambda * Cauchy quantization.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size (checked only).
        gamma: Cauchy scale, the Hamming radius the kernel focuses on (20, DeepHash-pytorch's DCH
            config; the paper sets it by cross-validation, Sec. 4).
        quantization_weight: lambda of the Cauchy quantization loss (0.1, DeepHash-pytorch's DCH config).

    Raises:
        ValueError: gamma <= 0 or quantization_weight < 0.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        gamma: float = 20.0,  # DCH Eq. 5 Cauchy scale; DeepHash-pytorch DCH config "gamma": 20.0
        quantization_weight: float = 0.1,  # DCH Eq. 8 lambda; DeepHash-pytorch DCH config "lambda": 0.1
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if not gamma > 0:
            raise ValueError(f"gamma={gamma} must be > 0: it is the Cauchy kernel's scale (DCH uses 20)")
        if quantization_weight < 0:
            raise ValueError(f"quantization_weight={quantization_weight} must be >= 0")
        self.gamma = float(gamma)
        self.quantization_weight = float(quantization_weight)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DCH loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: mean over pairs i<j of w_ij (s log(d/gamma) + log(1 + gamma/d)) + lambda mean_i q_i.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        batch = outputs.shape[0]
        upper = torch.triu(torch.ones(batch, batch, dtype=torch.bool, device=outputs.device), diagonal=1)
        distance = cosine_hamming_distance(outputs, outputs, self.bits)[upper]
        similar = share_label(labels, labels)[upper]
        weights = balanced_pair_weights(similar > 0, distance)
        cross_entropy = weights * (similar * torch.log(distance / self.gamma) + torch.log1p(self.gamma / distance))
        ones = torch.ones_like(outputs[:1])
        quantization = torch.log1p(cosine_hamming_distance(outputs.abs(), ones, self.bits) / self.gamma)
        pair_term = cross_entropy.mean() if cross_entropy.numel() else outputs.sum() * 0.0
        return pair_term + self.quantization_weight * quantization.mean()
