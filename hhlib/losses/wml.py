"""HybridHash's loss: weighted maximum likelihood between the batch and a memory of the training set.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 3.3, as its reference code computes it (a HashNet-style
weighted pairwise likelihood; see docs hybridhash-docs/method.md §2):

    U (n_train x K), Y (n_train x C): memory of the training outputs and labels, the batch written
        (detached) at its dataset indices before the loss is computed;
    s_ij = 1 iff y_i and Y_j share a label;  theta_ij = alpha <u_i, U_j>, alpha = 0.5;
    l_ij = log(1 + exp(-|theta_ij|)) + max(theta_ij, 0) - s_ij theta_ij;
    loss = (S / S1 * sum_{s=1} l_ij + S / S0 * sum_{s=0} l_ij) / S,

with S1 / S0 the counts of similar / dissimilar batch-by-memory pairs and S = S0 + S1.
Deviations from the reference, both deliberate (docs/method.md §6): the memory has exactly n_train rows
(the reference allocates 10,000 rows for 5,000 CIFAR-10 images), and rows not yet written in the
first epoch are left out of the pairs (``skip_unwritten``) instead of entering as dissimilar pairs
with theta = 0. HashNet's continuation is available (``continuation=True``), off as in the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.dpsh import pairwise_nll
from hhlib.losses.hashnet import ContinuationMixin
from hhlib.losses.similarity import balanced_pair_weights, share_label


class WeightedMaximumLikelihoodLoss(ContinuationMixin, HashLoss):
    """HybridHash's weighted pairwise likelihood against a training-set memory (ICMR 2024, Sec. 3.3).

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size (memory rows).
        alpha: theta_ij = alpha <u_i, U_j> (0.5 in the paper and its code; an ablation in the paper).
        skip_unwritten: leave memory rows not written yet out of the pairs (False = reference behaviour).
        continuation: HashNet's tanh(beta z) continuation; configured but unused by the reference (default off).
        continuation_gamma: gamma of beta = (1 + gamma t)^power, as HashNet.
        continuation_power: power of the schedule, as HashNet.
        continuation_step_size: iterations between beta updates, as HashNet.

    Raises:
        ValueError: alpha is not positive.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        alpha: float = 0.5,  # HybridHash Sec. 3.3 / reference config "alpha": 0.5
        skip_unwritten: bool = True,  # hhlib: unwritten rows are not data (docs/method.md §6)
        continuation: bool = False,  # reference never calls it (docs/method.md §2)
        continuation_gamma: float = 0.005,  # HashNet network.py
        continuation_power: float = 0.5,  # HashNet network.py
        continuation_step_size: int = 200,  # HashNet network.py
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if alpha <= 0:
            raise ValueError(f"alpha={alpha} must be > 0 (theta = alpha <u_i, U_j>; the paper uses 0.5)")
        self.alpha = alpha
        self.skip_unwritten = skip_unwritten
        self.continuation = continuation
        self.takes_logits = continuation
        self.init_continuation(continuation_gamma, continuation_power, continuation_step_size)
        self.register_buffer("memory_codes", torch.zeros(n_train, bits))
        self.register_buffer("memory_labels", torch.zeros(n_train, n_classes))
        self.register_buffer("memory_written", torch.zeros(n_train, dtype=torch.bool))
        self._every_row_written = False  # then the unwritten-row mask selects everything: skip it

    def set_epoch(self, epoch: int) -> None:
        """Note once per epoch whether every memory row holds codes (from the second epoch on).

        The per-step mask of written rows needs a ``nonzero`` whose size the host must read,
        which stalls a GPU each step; once every row is written the mask is skipped.
        """
        self._every_row_written = bool(self.memory_written.all())

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._every_row_written = False  # a loaded memory is re-examined at the next set_epoch

    @torch.no_grad()
    def write_memory(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> None:
        """Store the batch's detached codes and labels at their training-split rows.

        Args:
            outputs: (B, bits) float codes u (after tanh).
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions.
        """
        self.memory_codes[indices] = outputs.detach().to(self.memory_codes.dtype)
        self.memory_labels[indices] = labels.detach().to(self.memory_labels.dtype)
        self.memory_written[indices] = True

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """Weighted likelihood of the batch against the memory.

        Args:
            outputs: (B, bits) float tanh outputs u (pre-tanh logits when ``continuation``).
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions.

        Returns:
            Scalar loss = weighted sum / S.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        codes = self.continue_tanh(outputs) if self.continuation else outputs
        self.write_memory(codes, labels, indices)
        memory_codes = self.memory_codes.to(codes.dtype)
        memory_labels = self.memory_labels.to(codes.dtype)
        if self.skip_unwritten and not self._every_row_written:
            memory_codes = memory_codes[self.memory_written]
            memory_labels = memory_labels[self.memory_written]
        theta = self.alpha * codes @ memory_codes.T
        similarity = share_label(labels, memory_labels)
        weight = balanced_pair_weights(similarity > 0, theta)
        return (weight * pairwise_nll(theta, similarity)).sum() / similarity.numel()
