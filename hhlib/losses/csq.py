"""CSQ and MDSHC: codes pulled towards per-class hash centres (central similarity), plus quantization.

Yuan, Wang, Zhang, Tay, Xie, Feng, "Central Similarity Quantization for Efficient Image and Video
Retrieval", CVPR 2020. Each class c has a centre in {-1, +1}^K (hhlib/losses/centres.py); an image's
centre is its class's, and for a multi-label image the sign of the sum of its classes' centres (a tie
bit takes the bit of one fixed random vector, as in DeepHash-pytorch's CSQ.py). With u = tanh output,
h = (u + 1)/2 and t = (centre + 1)/2, the loss of a batch is (Sec. 3.3;
equation numbers not checked offline)

    L = mean_{i,k} BCE(h_ik, t_ik) + lambda mean_{i,k} log cosh(|u_ik| - 1).

DeepHash-pytorch writes the quantization term as (|u| - 1)^2, the paper as log cosh; hhlib follows the
paper (the two agree to second order near |u| = 1).

MDSHC (Wang, Pan, Liu, Lai, Yin, Liu, "Deep Hashing with Minimal-Distance-Separated Hash Centers",
CVPR 2023) keeps this centre-based training and changes the centres: they are searched so that their
minimum pairwise Hamming distance is as large as possible (hhlib/losses/centres.py). docs/losses.md
says what of the paper's objective hhlib leaves out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hhlib.losses.base import HashLoss
from hhlib.losses.centres import bernoulli_centres, hadamard_centres, min_distance_centres

CONSTRUCTIONS = ("auto", "hadamard", "bernoulli")


def image_centres(labels: Tensor, class_centres: Tensor, tie_breaker: Tensor) -> Tensor:
    """Each image's centre: sign of the sum of its classes' centres, ties resolved by ``tie_breaker``.

    Args:
        labels: (B, C) float multi-hot labels.
        class_centres: (C, K) float in {-1, +1}.
        tie_breaker: (K,) float in {-1, +1}, used where the sum is 0.

    Returns:
        (B, K) float in {-1, +1}; for a single-label image, its class's centre.
    """
    summed = labels @ class_centres
    return torch.where(summed == 0, tie_breaker, summed.sign())


class CSQLoss(HashLoss):
    """CSQ (Yuan et al., CVPR 2020): BCE between codes and their hash centres + lambda * quantization.

    Buffers ``class_centres`` (C, K) and ``tie_breaker`` (K,) are built at construction (seeded).

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size (checked only).
        quantization_weight: lambda of CSQ's quantization term (1e-4, DeepHash-pytorch's CSQ config;
            the authors' code uses the same).
        centres: "hadamard" (K a power of two and C <= 2K), "bernoulli", or "auto" (Hadamard when it
            applies, else Bernoulli: CSQ Sec. 3.2).
        seed: seed of the Bernoulli centres and the tie-breaking vector.

    Raises:
        ValueError: unknown construction, quantization_weight < 0, or more classes than the construction
            supports at this code length (2K for Hadamard, 2^K for Bernoulli).
    """

    family = "central_similarity"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        quantization_weight: float = 1e-4,  # CSQ lambda; DeepHash-pytorch CSQ config "lambda": 0.0001
        centres: str = "auto",  # CSQ Sec. 3.2: Hadamard when 2K >= C and K is a power of two, else Bernoulli
        seed: int = 0,  # hhlib's: any fixed seed makes the centres reproducible
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if quantization_weight < 0:
            raise ValueError(f"quantization_weight={quantization_weight} must be >= 0")
        if centres not in CONSTRUCTIONS:
            raise ValueError(f"centres={centres!r}: choose one of {CONSTRUCTIONS}")
        self.quantization_weight = float(quantization_weight)
        generator = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("class_centres", self.build_centres(centres, seed))
        self.register_buffer("tie_breaker", torch.randint(0, 2, (bits,), generator=generator).float() * 2 - 1)

    def build_centres(self, construction: str, seed: int) -> Tensor:
        """The (C, K) class centres of the chosen construction."""
        hadamard_fits = not self.bits & (self.bits - 1) and self.n_classes <= 2 * self.bits
        if construction == "hadamard" or (construction == "auto" and hadamard_fits):
            return hadamard_centres(self.n_classes, self.bits)
        return bernoulli_centres(self.n_classes, self.bits, seed)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """CSQ loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs u.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: mean BCE((u+1)/2, (c+1)/2) + lambda mean log cosh(|u| - 1).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        targets = image_centres(labels, self.class_centres.to(outputs.dtype), self.tie_breaker.to(outputs.dtype))
        probabilities = ((outputs + 1) / 2).clamp(1e-7, 1 - 1e-7)
        centre_loss = nn.functional.binary_cross_entropy(probabilities, (targets + 1) / 2)
        quantization = torch.log(torch.cosh(outputs.abs() - 1)).mean()
        return centre_loss + self.quantization_weight * quantization


class MDSHCLoss(CSQLoss):
    """MDSHC (Wang et al., CVPR 2023): CSQ's centre loss with centres searched for a large minimum distance.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size (checked only).
        quantization_weight: lambda (1e-4, as CSQ; hhlib's choice, the paper's value not checked offline).
        min_distance: required minimum pairwise Hamming distance of the centres; None = as high as
            hhlib's greedy search gets, at least the Gilbert-Varshamov distance (centres.py).
        seed: seed of the search's starting centres and of the tie-breaking vector.

    Raises:
        ValueError: quantization_weight < 0, more classes than 2^K, or a min_distance the search cannot reach.
    """

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        quantization_weight: float = 1e-4,  # hhlib's choice: CSQ's value
        min_distance: int | None = None,  # None: as high as the search reaches (>= Gilbert-Varshamov)
        seed: int = 0,  # hhlib's: any fixed seed makes the centres reproducible
    ) -> None:
        self.min_distance = min_distance
        super().__init__(bits, n_classes, n_train, quantization_weight, "bernoulli", seed)

    def build_centres(self, construction: str, seed: int) -> Tensor:
        """Centres whose minimum pairwise distance reaches ``min_distance`` (or as high as the search gets)."""
        return min_distance_centres(self.n_classes, self.bits, self.min_distance, seed)
