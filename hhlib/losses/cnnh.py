"""CNNH: two-stage hashing: factorise the similarity matrix into codes, then regress them.

Xia, Pan, Lai, Liu, Yan, "Supervised Hashing for Image Retrieval via Image Representation
Learning", AAAI 2014.

Stage 1 (``prepare``): with S_ij = +1 for similar and -1 for dissimilar training pairs, find
approximate codes H in [-1, 1]^(n x q) minimising ||S - H H^T / q||_F^2 (Eq. 2) by random
coordinate descent: one entry H_ij = x changes by d at a time. With R = q S - H H^T and h = H[:, j],

    f(d) - f(0) = -4 g d + 2 (|h|^2 + x^2 - R_ii) d^2 + 4 x d^3 + d^4,    g = R[i, :] . h,

(f = ||q S - H H^T||^2). The paper takes the Newton step d = -f'(0) / f''(0) = g / (|h|^2 + x^2 - R_ii)
clipped to the box [-1 - x, 1 - x]; hhlib keeps that step when it lowers f and otherwise the better
box end (or no move), so every update decreases f. Rows are visited in a random order and, within
a row, the q entries in a random order; R is never stored: g = q S[i, :] . h - H[i, :] . (H^T h),
with G = H^T H kept up to date; S is held as an (n, n) int8 matrix (169 MB for n = 13,000).
The learned codes are binarised, sign(H), and stored as the buffer ``target_codes``.

Stage 2 (``forward``): the network regresses the codes of its batch, mean_i ||u_i - sign(H)_i||^2 / q;
CNNH+ (``label_weight > 0``) also regresses the class labels from the codes through the loss's own
linear head (Sec. 3.2: the output layer predicts codes and, optionally, labels).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from hhlib.losses.base import HashLoss


def _coordinate_descent(
    codes: np.ndarray, similarity: np.ndarray, order: np.ndarray, column_orders: np.ndarray
) -> float:
    """One sweep of CNNH's coordinate descent over all entries, in place; plain loops so numba can compile it.

    Args:
        codes: (n, q) float64 relaxed codes H in [-1, 1], updated in place.
        similarity: (n, n) int8 S in {-1, +1}.
        order: (n,) int64 row visiting order.
        column_orders: (n, q) int64 column visiting order of each visit.

    Returns:
        Total decrease of f = ||q S - H H^T||_F^2 over the sweep (>= 0).
    """
    n, q = codes.shape
    gram = codes.T @ codes
    similar_dot = np.zeros(q)
    decrease = 0.0
    for visit in range(n):
        i = order[visit]
        # a_j = S[i, :] . H[:, j] for the current H
        for j in range(q):
            similar_dot[j] = 0.0
        for k in range(n):
            s_ik = float(similarity[i, k])
            for j in range(q):
                similar_dot[j] += s_ik * codes[k, j]
        s_ii = float(similarity[i, i])
        for position in range(q):
            j = column_orders[visit, position]
            x = codes[i, j]
            row_norm = 0.0
            h_gram = 0.0
            for t in range(q):
                row_norm += codes[i, t] * codes[i, t]
                h_gram += codes[i, t] * gram[t, j]
            g = q * similar_dot[j] - h_gram
            residual_ii = q * s_ii - row_norm
            curvature = gram[j, j] + x * x - residual_ii
            low = -1.0 - x
            high = 1.0 - x
            best_d = 0.0
            best_value = 0.0
            candidates = [low, high]
            if curvature > 0:
                newton = g / curvature
                candidates.append(min(max(newton, low), high))
            for d in candidates:
                value = -4.0 * g * d + 2.0 * curvature * d * d + 4.0 * x * d * d * d + d * d * d * d
                if value < best_value:
                    best_value = value
                    best_d = d
            if best_d != 0.0:
                for t in range(q):
                    gram[t, j] += best_d * codes[i, t]
                    gram[j, t] += best_d * codes[i, t]
                gram[j, j] += best_d * best_d
                codes[i, j] = x + best_d
                similar_dot[j] += s_ii * best_d
                decrease -= best_value
    return decrease


def similarity_factorisation(
    train_labels: np.ndarray, bits: int, sweeps: int, seed: int, use_numba: bool | None = None
) -> np.ndarray:
    """CNNH stage 1: relaxed codes H in [-1, 1]^(n x q) with H H^T / q close to the +-1 similarity matrix.

    Args:
        train_labels: (n, C) float multi-hot labels of the training split.
        bits: code length q.
        sweeps: passes over all n * q entries.
        seed: seed of the initial H ~ U(-1, 1) and of the visiting orders.
        use_numba: compile the sweep with numba (None = when numba is importable and n * q >= 20,000).

    Returns:
        (n, q) float64 relaxed codes H.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(train_labels, dtype=np.float32)
    n = labels.shape[0]
    similarity = np.empty((n, n), dtype=np.int8)
    for start in range(0, n, 2048):  # row blocks keep the float product small
        similarity[start:start + 2048] = np.where(labels[start:start + 2048] @ labels.T > 0, 1, -1)
    codes = rng.uniform(-1.0, 1.0, size=(n, bits))
    sweep = _coordinate_descent
    if use_numba is None:
        use_numba = n * bits >= 20_000
    if use_numba:
        try:
            import numba
        except ImportError:
            numba = None
        if numba is not None:
            sweep = numba.njit(cache=True)(_coordinate_descent)
    for _ in range(sweeps):
        order = rng.permutation(n).astype(np.int64)
        column_orders = np.argsort(rng.random((n, bits)), axis=1).astype(np.int64)
        sweep(codes, similarity, order, column_orders)
    return codes


class CNNHLoss(HashLoss):
    """CNNH (Xia et al., AAAI 2014): stage 1 in ``prepare`` (factorise S), stage 2 regresses the codes.

    Args:
        bits: code length q.
        n_classes: label width C.
        n_train: training-split size.
        sweeps: coordinate-descent passes of stage 1 (hhlib default 10; the paper does not state it).
        label_weight: weight of the CNNH+ label regression through the loss's linear head (0 = CNNH).
        seed: seed of stage 1 (initial H and visiting order).

    Raises:
        ValueError: sweeps < 1 or label_weight < 0.
    """

    family = "symmetric"

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        sweeps: int = 10,  # hhlib default (paper: iterate to convergence)
        label_weight: float = 0.0,  # 0 = CNNH, > 0 = CNNH+ (Sec. 3.2)
        seed: int = 0,
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if sweeps < 1 or label_weight < 0:
            raise ValueError(f"sweeps={sweeps} must be >= 1 and label_weight={label_weight} >= 0")
        self.sweeps = sweeps
        self.label_weight = label_weight
        self.seed = seed
        self.register_buffer("target_codes", torch.zeros(n_train, bits))
        self.register_buffer("prepared", torch.zeros((), dtype=torch.bool))
        self.label_head = nn.Linear(bits, n_classes) if label_weight > 0 else None

    def prepare(self, train_labels: Tensor) -> None:
        """Stage 1: learn the approximate codes of the training split and store sign(H).

        Args:
            train_labels: (n_train, C) float multi-hot labels in training-split order.

        Raises:
            ValueError: train_labels is not (n_train, n_classes).
        """
        train_labels = torch.as_tensor(train_labels)
        if tuple(train_labels.shape) != (self.n_train, self.n_classes):
            raise ValueError(
                f"CNNHLoss.prepare: train_labels have shape {tuple(train_labels.shape)}, expected "
                f"({self.n_train}, {self.n_classes}): pass splits.labels('train') of the split the loss was built for"
            )
        relaxed = similarity_factorisation(train_labels.detach().cpu().numpy(), self.bits, self.sweeps, self.seed)
        targets = np.where(relaxed >= 0, 1.0, -1.0)
        self.target_codes.copy_(torch.from_numpy(targets))
        self.prepared.fill_(True)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """Stage-2 regression loss of a batch.

        Args:
            outputs: (B, bits) float tanh outputs.
            labels: (B, C) float multi-hot labels (used by CNNH+ only).
            indices: (B,) long train-split positions: rows of the stage-1 codes.

        Returns:
            Scalar: mean squared error to sign(H) [+ label_weight * mean squared error of the label head].

        Raises:
            RuntimeError: ``prepare`` has not been called (and no checkpoint with the codes was loaded).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        if not bool(self.prepared):
            raise RuntimeError("CNNHLoss has no stage-1 codes: call loss.prepare(train_labels) before training")
        loss = (outputs - self.target_codes[indices]).pow(2).mean()
        if self.label_head is not None:
            loss = loss + self.label_weight * (self.label_head(outputs) - labels).pow(2).mean()
        return loss

