"""HashNet: weighted maximum likelihood on in-batch pairs, with tanh(beta z) continuation.

Cao, Long, Wang, Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017.
For pairs of the batch, with theta_ij = alpha <h_i, h_j> (the adaptive sigmoid, Eq. 2), HashNet
minimises (Eq. 4)

    L = sum_{s_ij in S} w_ij (log(1 + exp(theta_ij)) - s_ij theta_ij),
    w_ij = c_ij |S| / |S_1| if s_ij = 1,  w_ij = |S| / |S_0| if s_ij = 0  (Eq. 3),

c_ij = <y_i, y_j> / (|y_i| |y_j|) for multi-label data (1 for single-label data), alpha = 10 / bits
(authors' train.py: sigmoid_param = 10 / hash_bit). Continuation (Sec. 3.3): the hash layer is
h = tanh(beta z) with beta raised during training; the authors' network sets, every 200
iterations, beta = (1 + 0.005 t)^0.5 at iteration t. hhlib counts training forward calls of the
loss as iterations, so beta_t = (1 + gamma * step * floor(t / step))^power, t = 0, 1, ... .
The loss therefore takes the pre-tanh logits z (``takes_logits = True``) and applies tanh(beta z).
Pairs: the authors pair two halves of a doubled batch; hhlib uses every unordered pair i < j.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.dpsh import pairwise_nll
from hhlib.losses.similarity import balanced_pair_weights, cosine_label_similarity, share_label


def continuation_scale(iteration: int, gamma: float, power: float, step_size: int) -> float:
    """HashNet's continuation beta at a training iteration.

    Args:
        iteration: 0-based count of training steps taken so far.
        gamma: growth rate (0.005 in HashNet's code).
        power: exponent (0.5 in HashNet's code).
        step_size: beta changes every step_size iterations (200 in HashNet's code).

    Returns:
        beta = (1 + gamma * step_size * floor(iteration / step_size)) ** power (1.0 at the start).
    """
    return float((1.0 + gamma * step_size * (iteration // step_size)) ** power)


class ContinuationMixin:
    """tanh(beta z) with HashNet's beta schedule; the iteration count is a buffer, so it checkpoints."""

    iteration: Tensor

    def init_continuation(self, gamma: float, power: float, step_size: int) -> None:
        if step_size < 1:
            raise ValueError(f"continuation_step_size={step_size} must be >= 1")
        if not gamma >= 0 or not power >= 0:
            raise ValueError(f"continuation_gamma={gamma} and continuation_power={power} must be >= 0: "
                             "beta = (1 + gamma t)^power must not shrink (HashNet Sec. 3.3; 0.005 and 0.5 in its code)")
        self.continuation_gamma = gamma
        self.continuation_power = power
        self.continuation_step_size = step_size
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    @property
    def beta(self) -> float:
        """Current continuation scale beta."""
        return continuation_scale(int(self.iteration), self.continuation_gamma, self.continuation_power,
                                  self.continuation_step_size)

    def continue_tanh(self, logits: Tensor) -> Tensor:
        """tanh(beta z); advances the iteration count when the module is in training mode."""
        codes = torch.tanh(self.beta * logits)
        if self.training:
            self.iteration += 1
        return codes


class HashNetLoss(ContinuationMixin, HashLoss):
    """HashNet (Cao et al., ICCV 2017): weighted pairwise likelihood, continuation on by default.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size.
        sigmoid_scale: alpha of the adaptive sigmoid (HashNet Eq. 2); None = 10 / bits (authors' code).
        continuation: apply tanh(beta z) to logits with beta rising (HashNet Sec. 3.3); False takes tanh outputs.
        continuation_gamma: gamma of beta = (1 + gamma t)^power (0.005, authors' network.py).
        continuation_power: power of the schedule (0.5, authors' network.py).
        continuation_step_size: iterations between beta updates (200, authors' network.py).
        multi_label_weighting: multiply similar pairs' weights by the cosine label similarity c_ij (Eq. 3).

    Raises:
        ValueError: a schedule parameter is out of range.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        sigmoid_scale: float | None = None,  # alpha = 10 / bits, HashNet train.py
        continuation: bool = True,  # HashNet Sec. 3.3
        continuation_gamma: float = 0.005,  # HashNet network.py
        continuation_power: float = 0.5,  # HashNet network.py
        continuation_step_size: int = 200,  # HashNet network.py
        multi_label_weighting: bool = True,  # c_ij, HashNet Eq. 3
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if sigmoid_scale is not None and not sigmoid_scale > 0:
            raise ValueError(f"sigmoid_scale={sigmoid_scale} must be > 0 or None (alpha of HashNet Eq. 2; None = 10 / bits)")
        self.sigmoid_scale = 10.0 / bits if sigmoid_scale is None else float(sigmoid_scale)
        self.continuation = continuation
        self.takes_logits = continuation
        self.multi_label_weighting = multi_label_weighting
        self.init_continuation(continuation_gamma, continuation_power, continuation_step_size)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """HashNet loss of a batch.

        Args:
            outputs: (B, bits) float pre-tanh logits z when ``takes_logits`` (continuation on), else tanh outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar: sum over pairs i < j of w_ij * l_ij divided by the number of pairs |S|.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        codes = self.continue_tanh(outputs) if self.continuation else outputs
        batch = codes.shape[0]
        upper = torch.triu(torch.ones(batch, batch, dtype=torch.bool, device=codes.device), diagonal=1)
        theta = (self.sigmoid_scale * codes @ codes.T)[upper]
        similarity = share_label(labels, labels)[upper]
        positive = similarity > 0
        n_pairs = float(theta.numel())
        weight = balanced_pair_weights(positive, theta)
        if self.multi_label_weighting:
            weight = torch.where(positive, weight * cosine_label_similarity(labels, labels)[upper], weight)
        return (weight * pairwise_nll(theta, similarity)).sum() / max(n_pairs, 1.0)
