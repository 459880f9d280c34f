"""Hash centres for the central-similarity losses: Hadamard rows, Bernoulli draws, minimum-distance search.

CSQ (Yuan et al., "Central Similarity Quantization for Efficient Image and Video Retrieval", CVPR 2020,
Sec. 3.2) gives every class a centre in {-1, +1}^K: the rows of a K x K Hadamard matrix and their
negations (2K centres, pairwise Hamming distance K/2, or K for a row and its negation) when K is a power
of two and there are at most 2K classes; otherwise independent Bernoulli(1/2) bits, whose pairwise
distance is K/2 on average. MDSHC (Wang et al., "Deep Hashing with Minimal-Distance-Separated Hash
Centers", CVPR 2023) instead searches for centres whose *minimum* pairwise distance reaches a target;
hhlib's default target is the Gilbert-Varshamov bound, the largest d for which C centres at pairwise
distance >= d are guaranteed to exist: C * sum_{i<d} binom(K, i) <= 2^K.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def hadamard_matrix(order: int) -> Tensor:
    """Sylvester's Hadamard matrix: rows in {-1, +1}, pairwise orthogonal.

    Args:
        order: a power of two.

    Returns:
        (order, order) float.

    Raises:
        ValueError: order is not a power of two.
    """
    if order < 1 or order & (order - 1):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power-of-two order, got {order}")
    matrix = torch.ones(1, 1)
    while matrix.shape[0] < order:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix


def hadamard_centres(n_classes: int, bits: int) -> Tensor:
    """CSQ's Hadamard centres: the first C rows of [H_K; -H_K].

    Args:
        n_classes: number of classes C (at most 2K).
        bits: code length K, a power of two.

    Returns:
        (C, K) float in {-1, +1}.

    Raises:
        ValueError: K is not a power of two, or C > 2K (the limit is named in the message).
    """
    if bits & (bits - 1):
        raise ValueError(f"Hadamard centres need a power-of-two code length, got bits={bits}: use 'bernoulli'")
    if n_classes > 2 * bits:
        raise ValueError(
            f"Hadamard centres support at most 2K = {2 * bits} classes at bits={bits}, got n_classes={n_classes}: "
            "use more bits or centres='bernoulli'"
        )
    matrix = hadamard_matrix(bits)
    return torch.cat([matrix, -matrix], 0)[:n_classes].clone()


def bernoulli_centres(n_classes: int, bits: int, seed: int = 0) -> Tensor:
    """CSQ's random centres: every bit an independent fair coin, redrawn until the centres are distinct.

    Args:
        n_classes: number of classes C (at most 2^K).
        bits: code length K.
        seed: seed of the draw.

    Returns:
        (C, K) float in {-1, +1}, pairwise distinct.

    Raises:
        ValueError: C > 2^K, or 100 draws gave duplicate centres.
    """
    if n_classes > 2**bits:
        raise ValueError(f"{n_classes} distinct centres cannot exist at bits={bits} (at most 2^K = {2**bits})")
    generator = torch.Generator().manual_seed(seed)
    for _ in range(100):
        centres = torch.randint(0, 2, (n_classes, bits), generator=generator).float() * 2 - 1
        if minimum_distance(centres) > 0:
            return centres
    raise ValueError(f"100 Bernoulli draws of {n_classes} centres at bits={bits} all had duplicates: use more bits")


def minimum_distance(centres: Tensor) -> int:
    """Smallest pairwise Hamming distance between distinct rows of +-1 centres (K when there is one row)."""
    bits = centres.shape[1]
    if centres.shape[0] < 2:
        return bits
    distance = 0.5 * (bits - centres @ centres.T)
    distance.fill_diagonal_(float(bits) + 1)
    return int(distance.min().round())


def gilbert_varshamov_distance(n_classes: int, bits: int) -> int:
    """Largest d such that C * sum_{i<d} binom(K, i) <= 2^K: C centres at distance >= d surely exist.

    Args:
        n_classes: number of classes C >= 1.
        bits: code length K.

    Returns:
        d in [1, K].
    """
    best = 1
    for d in range(1, bits + 1):
        if n_classes * sum(math.comb(bits, i) for i in range(d)) <= 2**bits:
            best = d
    return best


def min_distance_centres(n_classes: int, bits: int, target: int | None = None, seed: int = 0,
                         max_flips: int = 10_000) -> Tensor:
    """Centres whose minimum pairwise Hamming distance reaches ``target``, by greedy bit flips.

    Starts from Bernoulli centres; while some pair is closer than ``target``, flips the bit of one of
    the closest pair's centres that most raises that centre's smallest distance to the others (ties:
    the largest sum of distances). This is hhlib's search, not the paper's optimiser (see docs/losses.md).
    With ``target=None`` it first reaches the Gilbert-Varshamov distance, then keeps raising the
    target by one while a further ``20 * n_classes`` flips reach it.

    Args:
        n_classes: number of classes C.
        bits: code length K.
        target: required minimum distance (None = as high as the search gets, at least Gilbert-Varshamov).
        seed: seed of the starting draw.
        max_flips: give up on a target after this many flips.

    Returns:
        (C, K) float in {-1, +1} with minimum pairwise distance >= target.

    Raises:
        ValueError: C > 2^K, target outside [1, K], or the search stalls below the target.
    """
    required = gilbert_varshamov_distance(n_classes, bits) if target is None else int(target)
    if not 1 <= required <= bits:
        raise ValueError(f"target minimum distance {required} must lie in [1, bits={bits}]")
    centres = bernoulli_centres(n_classes, bits, seed)
    if not _raise_minimum_distance(centres, required, max_flips):
        raise ValueError(
            f"could not place {n_classes} centres at minimum distance {required} with bits={bits} "
            f"(reached {minimum_distance(centres)}): lower the target or use more bits"
        )
    while target is None and n_classes > 1 and required < bits:
        attempt = centres.clone()
        if not _raise_minimum_distance(attempt, required + 1, 20 * n_classes):
            break
        centres, required = attempt, required + 1
    return centres


def _raise_minimum_distance(centres: Tensor, target: int, max_flips: int) -> bool:
    """Greedy flips in place until the minimum distance reaches ``target``; False when it does not."""
    for _ in range(max_flips):
        if minimum_distance(centres) >= target:
            return True
        if not _flip_one_bit(centres):
            return False
    return minimum_distance(centres) >= target


def _flip_one_bit(centres: Tensor) -> bool:
    """One greedy step of min_distance_centres, in place; False when no flip helps."""
    bits = centres.shape[1]
    distance = 0.5 * (bits - centres @ centres.T)
    distance.fill_diagonal_(float(bits) + 1)
    first, second = divmod(int(distance.argmin()), centres.shape[0])
    current = distance.min()
    best_gain, best = None, None
    for row in (first, second):
        others = torch.cat([centres[:row], centres[row + 1:]])
        # flipping bit k changes the distance to each other centre by +1 where they agree, -1 where they differ
        change = torch.where(others == centres[row], 1.0, -1.0)
        flipped = 0.5 * (bits - others @ centres[row])[:, None] + change
        gain = (flipped.min(dim=0).values - current) * 10 * bits + flipped.sum(dim=0) / max(len(others), 1)
        bit = int(gain.argmax())
        if best_gain is None or gain[bit] > best_gain:
            best_gain, best = gain[bit], (row, bit)
    row, bit = best
    others = torch.cat([centres[:row], centres[row + 1:]])
    before = (0.5 * (bits - others @ centres[row])).min()
    centres[row, bit] = -centres[row, bit]
    after = (0.5 * (bits - others @ centres[row])).min()
    return bool(after > before) or bool(best_gain > 0)
