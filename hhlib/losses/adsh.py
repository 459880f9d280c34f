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
V steps (ADSH_pytorch ADSH_CIFAR_10.py).

Two choices keep ADSH from collapsing when trained from scratch (tests/test_no_collapse.py; docs/losses.md):
- S is the authors' code's balanced similarity (``balanced_similarity``: +1 similar, -r dissimilar with
  r = #similar / #dissimilar, their "soft constraint" calc_sim), not the paper text's {-1, +1}. A fresh network
  gives every image nearly the same output; with {-1, +1} the 9:1 dissimilar pairs of a 10-class set make
  -sign(S^T U) one code for every image. The balanced S cancels the shared output and leaves the class part.
- V starts at random signs (hhlib's choice; the authors' code starts at 0). With V = 0 the first epoch's
  square term has no gradient and the network only shrinks towards 0; measured on the no-collapse run,
  one bit then stays constant after 5 epochs, none with random V. ``initial_codes="zeros"`` restores the authors'.
The paper's {-1, +1} S collapses from either start (every bit constant). A sign of 0 in the V step gives +1.
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


def balanced_similarity(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """ADSH's similarity as the authors' code uses it: +1 for a shared class, -r elsewhere, r = #similar / #dissimilar.

    The authors' ``calc_sim`` ("soft constraint", ADSH_pytorch; DeepHash-pytorch's ADSH.py the same) rescales
    the {0, 1} matrix S to S (1 + r) - r, so the dissimilar entries sum to minus the similar ones. Every
    column sum sum_i S_ij u_i then cancels an output shared by all images; with the {-1, +1} S the 9:1
    dissimilar pairs of a 10-class set make -sign(S^T U) the same code for every image.

    Args:
        labels_a: (A, C) float multi-hot labels.
        labels_b: (B, C) float multi-hot labels.

    Returns:
        (A, B) float: 1 where a class is shared, -r elsewhere (all 1 when no pair is dissimilar).
    """
    shared = share_label(labels_a, labels_b)
    dissimilar = (1 - shared).sum()
    if dissimilar == 0:
        return shared
    ratio = shared.sum() / dissimilar
    return shared * (1 + ratio) - ratio


def initial_database_codes(n_train: int, bits: int, kind: str, seed: int) -> Tensor:
    """V before the first V step: fair random signs from ``seed`` ("random") or all 0 ("zeros", authors' code).

    Args:
        n_train: rows (training images).
        bits: code length K.
        kind: "random" or "zeros".
        seed: seed of the random signs (the same seed gives the same V on any machine).

    Returns:
        (n_train, bits) float, in {-1, +1} ("random") or 0 ("zeros").
    """
    if kind == "zeros":
        return torch.zeros(n_train, bits)
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n_train, bits), generator=generator).float() * 2 - 1


SIMILARITIES = {"balanced": balanced_similarity, "signed": signed_similarity}


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
        similarity: "balanced" (the authors' code: +1 similar, -r dissimilar, see ``balanced_similarity``)
            or "signed" (the paper's text: S in {-1, +1}, which collapses from scratch, docs/losses.md).
        initial_codes: V before the first V step: "random" (fair signs; the first epoch's network step then
            fits u_i^T v_j to K S_ij) or "zeros" (the authors' code: the first epoch sees only gamma ||u||^2).
        seed: seed of the random initial codes.

    Raises:
        ValueError: gamma < 0, or an unknown ``similarity`` or ``initial_codes``.
    """

    family = "asymmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        gamma: float = 200.0,  # ADSH Sec. 4.1 (gamma = 200), ADSH_pytorch's default
        similarity: str = "balanced",  # ADSH_pytorch's calc_sim ("soft constraint"), DeepHash-pytorch the same
        initial_codes: str = "random",  # hhlib's choice (measured, docs/losses.md); "zeros" = the authors' code
        seed: int = 0,  # seed of the random initial codes (hhlib's choice)
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if gamma < 0:
            raise ValueError(f"gamma={gamma} must be >= 0 (ADSH uses 200)")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity={similarity!r} is unknown: use one of {sorted(SIMILARITIES)}")
        if initial_codes not in ("random", "zeros"):
            raise ValueError(f"initial_codes={initial_codes!r} is unknown: use 'random' (hhlib) or 'zeros' (authors' code)")
        self.gamma = float(gamma)
        self.similarity = similarity
        self.register_buffer("database_codes", initial_database_codes(n_train, bits, initial_codes, seed))
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
        similarity = SIMILARITIES[self.similarity](self.train_labels[rows], self.train_labels)
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
        similarity = SIMILARITIES[self.similarity](labels, self.train_labels.to(outputs.dtype))
        square = (outputs @ codes.T - self.bits * similarity).pow(2).sum()
        quantization = (codes[indices] - outputs).pow(2).sum()
        return (square + self.gamma * quantization) / (self.n_train * outputs.shape[0])
