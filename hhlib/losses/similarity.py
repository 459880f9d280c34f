"""Label similarity for supervised hashing: pairwise, multi-level and in-batch triplets.

The deep-hashing literature derives every supervision signal from the multi-hot labels:
two images are similar when they share at least one label (HybridHash Sec. 3.3; HashNet,
DPSH, DSH), the number of shared labels gives a multi-level relevance (DSRH, Zhao et al.
CVPR 2015), and triplet losses (NINH/DNNH, Lai et al. CVPR 2015; DRSDH, Zhang et al. TIP 2015)
use (anchor, similar, dissimilar) triples, which hhlib mines inside each batch.
"""

from __future__ import annotations

import torch
from torch import Tensor


def share_label(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """Binary similarity: 1 where two label vectors share at least one class.

    Args:
        labels_a: (A, C) float multi-hot labels.
        labels_b: (B, C) float multi-hot labels.

    Returns:
        (A, B) float in {0, 1}; s_ij = 1 iff <y_i, y_j> > 0.
    """
    return (labels_a @ labels_b.T > 0).to(labels_a.dtype)


def shared_label_counts(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """Multi-level similarity: the number of classes two label vectors share (DSRH's r).

    Args:
        labels_a: (A, C) float multi-hot labels.
        labels_b: (B, C) float multi-hot labels.

    Returns:
        (A, B) float, r_ij = <y_i, y_j> (0 = dissimilar, higher = more relevant).
    """
    return labels_a @ labels_b.T


def cosine_label_similarity(labels_a: Tensor, labels_b: Tensor) -> Tensor:
    """Continuous similarity <y_i, y_j> / (|y_i| |y_j|) used by HashNet to weight multi-label pairs.

    Args:
        labels_a: (A, C) float multi-hot labels.
        labels_b: (B, C) float multi-hot labels.

    Returns:
        (A, B) float in [0, 1]; rows of all-zero labels give 0.
    """
    norm_a = labels_a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    norm_b = labels_b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (labels_a / norm_a) @ (labels_b / norm_b).T


def balanced_pair_weights(positive: Tensor, like: Tensor) -> Tensor:
    """HashNet's class-balancing weights: S / S1 on similar pairs, S / S0 on dissimilar ones.

    S1 and S0 count the similar and dissimilar pairs, S = S0 + S1; a count of zero is taken as 1,
    so a batch without one kind of pair never divides by zero (HashNet Eq. 5; HybridHash docs/method.md §2).

    Args:
        positive: (...) bool, True where a pair is similar.
        like: tensor whose dtype and device the weights take (e.g. theta).

    Returns:
        (...) weights of ``like``'s dtype.
    """
    # counted on the tensors' device: reading the count back would stall a GPU every step
    n_pairs = positive.numel()
    n_positive = positive.sum(dtype=like.dtype)
    positive_weight = n_pairs / n_positive.clamp(min=1.0)
    negative_weight = n_pairs / (n_pairs - n_positive).clamp(min=1.0)
    return torch.where(positive, positive_weight, negative_weight)


def triplet_mask(similarity: Tensor) -> Tensor:
    """All valid in-batch triplets (anchor a, positive p, negative n).

    Args:
        similarity: (B, B) {0, 1} float or bool, s_ij = 1 iff i and j are similar.

    Returns:
        (B, B, B) bool, True at [a, p, n] iff p != a, s_ap = 1, s_an = 0 and n != a.
    """
    similar = similarity.bool()
    batch = similar.shape[0]
    distinct = ~torch.eye(batch, dtype=torch.bool, device=similar.device)
    positive = similar & distinct
    negative = ~similar & distinct
    return positive[:, :, None] & negative[:, None, :]


def ranking_pair_mask(levels: Tensor) -> Tensor:
    """All in-batch ranking pairs for each query: (query q, more relevant i, less relevant j).

    Args:
        levels: (B, B) float relevance r_qi of item i to query q (e.g. shared label counts).

    Returns:
        (B, B, B) bool, True at [q, i, j] iff r_qi > r_qj, i != q and j != q.
    """
    batch = levels.shape[0]
    distinct = ~torch.eye(batch, dtype=torch.bool, device=levels.device)
    ordered = levels[:, :, None] > levels[:, None, :]
    return ordered & distinct[:, :, None] & distinct[:, None, :]
