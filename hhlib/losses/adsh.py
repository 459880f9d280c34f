"""ADSH: asymmetric deep supervised hashing, database codes learned by discrete optimisation.

Jiang, Li, "Asymmetric Deep Supervised Hashing", AAAI 2018. The network F encodes queries only,
u_i = tanh(F(x_i)); the codes V in {-1, +1}^{n x K} of the n database (here: training) images are
free variables. With S_ij in {-1, +1} (+1 when i and j share a label) the objective is (Eq. 3;
equation numbers as recalled, not checked offline)

    min_{F, V}  sum_{i in Omega} sum_{j in Gamma} (u_i^T v_j - K S_ij)^2 + gamma sum_{i in Omega} ||v_i - u_i||^2,

with Omega the sampled query images (a subset of the database Gamma). It alternates:
- network step: F is trained by back-propagation with V fixed (the loss below, one batch at a time);
- V step: with U fixed (the outputs of Omega, Ubar their rows placed in an n x K zero matrix), V is
  updated one bit column at a time (discrete cyclic coordinate descent, Eq. 9):
  v_k = -sign(2 V_{-k} U_{-k}^T u_k + q_k), Q = -2K S^T U - 2 gamma Ubar.

hhlib runs this inside the one training loop (hhlib.train.fit) without a loop of its own: Omega is the
whole training split each epoch, the outputs of an epoch are kept in a memory as they are computed
(detached, like the authors' U), and ``set_epoch`` runs the V step on that memory before the next epoch.
The authors instead sample |Omega| = 2,000 images per outer iteration and train 3 epochs on them between
V steps (ADSH_pytorch ADSH_CIFAR_10.py). V starts at 0, as in the authors' code: the first epoch's
network step only sees the quantization term. A sign of 0 in the V step gives +1 (hhlib's convention).
Trained from scratch ADSH collapses in a short run (tests/test_no_collapse.py, an expected failure there):
the authors fine-tune an ImageNet network whose outputs already differ between images, while a fresh
network gives every image nearly the same output, and the V step on constant outputs gives every image
the same code (-sign of the 9:1 dissimilar-dominated S^T U). Starting V at random signs was measured and
did not help: the network fits the shared part of sum_j S_ij v_j first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label


def signed_similarity(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """ADSH's similarity: +1 where two label vectors share a class, -1 elsewhere.

    Args:
        labels_a: (A, C) float multi-hot labels.
        labels_b: (B, C) float multi-hot labels.

    Returns:
        (A, B) float in {-1, +1}.
    """
    return 2 * share_label(labels_a, labels_b) - 1


def discrete_cyclic_coordinate_descent(codes: Tensor, outputs: Tensor, placed_outputs: Tensor,
                                       similarity: Tensor, gamma: float) -> Tensor:
    """ADSH's V step: every bit column of the database codes in turn, the others fixed (ADSH Eq. 9).

    Args:
        codes: (n, K) float database codes V (any values; each column is overwritten in turn).
        outputs: (m, K) float query outputs U of the sampled images Omega.
        placed_outputs: (n, K) float Ubar: U at Omega's database rows, 0 elsewhere.
        similarity: (m, n) float S in {-1, +1} between Omega and the database.
        gamma: weight of the ||v_i - u_i||^2 term.

    Returns:
        (n, K) float in {-1, +1}, the updated V (a new tensor).
    """
    bits = codes.shape[1]
    codes = codes.clone()
    q = -2 * bits * similarity.T @ outputs - 2 * gamma * placed_outputs
    for k in range(bits):
        rest = torch.arange(bits, device=codes.device) != k
        column = 2 * codes[:, rest] @ (outputs[:, rest].T @ outputs[:, k]) + q[:, k]
        codes[:, k] = torch.where(column > 0, -1.0, 1.0)
    return codes


class ADSHLoss(HashLoss):
    """ADSH (Jiang & Li, AAAI 2018): squared inner-product loss against learned database codes + gamma ||v - u||^2.

    Buffers: ``database_codes`` V (n_train, K), ``memory_outputs`` U (n_train, K), ``memory_written``
    (n_train,) bool and ``train_labels`` (n_train, C), all checkpointed with the loss.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size n (the database ADSH learns codes for).
        gamma: weight of the quantization term ||v_i - u_i||^2 (200, ADSH Sec. 4.1 and ADSH_pytorch).

    Raises:
        ValueError: gamma < 0.
    """

    family = "asymmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        gamma: float = 200.0,  # ADSH Sec. 4.1 (gamma = 200), ADSH_pytorch's default
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if gamma < 0:
            raise ValueError(f"gamma={gamma} must be >= 0 (ADSH uses 200)")
        self.gamma = float(gamma)
        self.register_buffer("database_codes", torch.zeros(n_train, bits))
        self.register_buffer("memory_outputs", torch.zeros(n_train, bits))
        self.register_buffer("memory_written", torch.zeros(n_train, dtype=torch.bool))
        self.register_buffer("train_labels", torch.zeros(n_train, n_classes))

    def prepare(self, train_labels: Tensor) -> None:
        """Keep the training labels: the V step needs S between Omega and the whole training split.

        Args:
            train_labels: (n_train, C) float multi-hot labels, in training-split order.

        Raises:
            ValueError: the labels do not have shape (n_train, n_classes).
        """
        if tuple(train_labels.shape) != (self.n_train, self.n_classes):
            raise ValueError(f"ADSH: train_labels have shape {tuple(train_labels.shape)}, expected "
                             f"({self.n_train}, {self.n_classes}): pass the whole training split's labels")
        self.train_labels.copy_(train_labels.to(self.train_labels.device, self.train_labels.dtype))

    def set_epoch(self, epoch: int) -> None:
        """Run the V step on the outputs stored during the previous epoch (nothing before the first).

        Args:
            epoch: index of the epoch about to start.
        """
        self.update_database_codes()

    @torch.no_grad()
    def update_database_codes(self) -> None:
        """Discrete cyclic coordinate descent of V over the images written since the start (Omega)."""
        rows = self.memory_written.nonzero().squeeze(1)
        if rows.numel() == 0:
            return
        outputs = self.memory_outputs[rows]
        placed = torch.zeros_like(self.memory_outputs)
        placed[rows] = outputs
        similarity = signed_similarity(self.train_labels[rows], self.train_labels)
        self.database_codes.copy_(
            discrete_cyclic_coordinate_descent(self.database_codes, outputs, placed, similarity, self.gamma)
        )

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """ADSH network-step loss of a batch; stores the batch's detached outputs for the next V step.

        Args:
            outputs: (B, bits) float tanh outputs u.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (also the rows of V the batch's images own).

        Returns:
            Scalar: (sum_ij (u_i^T v_j - K S_ij)^2 + gamma sum_i ||v_{idx i} - u_i||^2) / (n_train B),
            the authors' normalisation.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        if self.training:
            self.memory_outputs[indices] = outputs.detach().to(self.memory_outputs.dtype)
            self.memory_written[indices] = True
        codes = self.database_codes.to(outputs.dtype)
        similarity = signed_similarity(labels, self.train_labels.to(outputs.dtype))
        square = (outputs @ codes.T - self.bits * similarity).pow(2).sum()
        quantization = (codes[indices] - outputs).pow(2).sum()
        return (square + self.gamma * quantization) / (self.n_train * outputs.shape[0])
