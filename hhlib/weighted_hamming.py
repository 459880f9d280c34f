"""Weighted Hamming ranking: DRSDH's learned bit weights applied at retrieval.

DRSDH (Zhang, Lin, Zhang, Zuo, Zhang, "Bit-Scalable Deep Hashing with Regularized Similarity Learning
for Image Retrieval and Person Re-identification", TIP 2015) learns one weight per bit and compares
codes by the weighted Hamming distance sum_k w_k^2 [a_k != b_k] (hhlib/losses/drsdh.py trains with it).
The weights are first normalised so that sum_k w_k^2 = K: the distance then spans [0, K] like the plain
Hamming distance, and equal weights give exactly the plain Hamming ranking.

Ranking rule: the key (weighted distance, database index), i.e. a stable sort of the distances, the
same tie rule as hhlib.hamming.TIE_RULE. mAP@k follows hhlib.metrics: AP of a query is the mean over
the relevant items in its top k of (relevant items up to that rank) / rank, 0 when none is in the top k.
Distances are computed in float64 from the unpacked codes, one chunk of queries at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalised_bit_weights", "weighted_hamming_distances", "weighted_rank", "weighted_mean_average_precision"]


def _codes(codes: Any, name: str) -> np.ndarray:
    """(N, K) codes (+-1, 0/1 or bool; numpy or torch) -> (N, K) bool, True where the bit is set."""
    if hasattr(codes, "detach"):
        codes = codes.detach().cpu().numpy()
    array = np.asarray(codes)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} have shape {array.shape}: pass a non-empty (N, bits) array of +-1 or 0/1 codes")
    return array > 0


def normalised_bit_weights(weights: Any, bits: int | None = None) -> np.ndarray:
    """Bit weights scaled so that their squares sum to K (the plain Hamming range).

    Args:
        weights: (K,) float learned weights w (their sign is irrelevant: the distance uses w^2).
        bits: expected K, checked when given.

    Returns:
        (K,) float64 |w| * sqrt(K / sum w^2).

    Raises:
        ValueError: wrong length, a non-finite weight, or all weights 0.
    """
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().numpy()
    array = np.abs(np.asarray(weights, dtype=np.float64).reshape(-1))
    if bits is not None and array.shape[0] != bits:
        raise ValueError(f"{array.shape[0]} bit weights for {bits}-bit codes: pass one weight per bit")
    if not np.isfinite(array).all():
        raise ValueError("bit weights contain NaN or inf: the DRSDH run diverged (lower lr)")
    total = float((array**2).sum())
    if total == 0:
        raise ValueError("all bit weights are 0: a weighted ranking needs at least one non-zero weight")
    return array * np.sqrt(array.shape[0] / total)


def weighted_hamming_distances(query_codes: Any, database_codes: Any, weights: Any) -> np.ndarray:
    """sum_k w_k^2 [q_k != d_k] for every query/database pair, with the weights normalised first.

    Args:
        query_codes: (Q, K) codes, +-1, 0/1 or bool.
        database_codes: (N, K) codes of the same form.
        weights: (K,) raw bit weights (normalised here with :func:`normalised_bit_weights`).

    Returns:
        (Q, N) float64 in [0, K].

    Raises:
        ValueError: empty codes, different code lengths, or bad weights.
    """
    query, database = _codes(query_codes, "query_codes"), _codes(database_codes, "database_codes")
    if query.shape[1] != database.shape[1]:
        raise ValueError(f"query codes have {query.shape[1]} bits, database codes {database.shape[1]}: "
                         "encode both with the same model")
    squared = normalised_bit_weights(weights, query.shape[1]) ** 2
    # [q != d] = q + d - 2 q d for 0/1 bits, so the weighted sum is three matrix products
    q, d = query.astype(np.float64), database.astype(np.float64)
    return (q @ squared)[:, None] + (d @ squared)[None, :] - 2 * (q * squared) @ d.T


def weighted_rank(query_codes: Any, database_codes: Any, weights: Any, k: int | None = None) -> np.ndarray:
    """Database positions ranked by (weighted Hamming distance, database index) for each query.

    Args:
        query_codes: (Q, K) codes.
        database_codes: (N, K) codes.
        weights: (K,) raw bit weights.
        k: how many per query; None = all N.

    Returns:
        (Q, k) int64 database positions, best first.

    Raises:
        ValueError: as :func:`weighted_hamming_distances`, or k <= 0.
    """
    distances = weighted_hamming_distances(query_codes, database_codes, weights)
    k = _check_k(k, distances.shape[1])
    return np.argsort(_rounded(distances), axis=1, kind="stable")[:, :k]


def weighted_mean_average_precision(query_codes: Any, database_codes: Any, query_labels: Any,
                                    database_labels: Any, weights: Any, topk: int | None = None,
                                    chunk_size: int = 256) -> float:
    """mAP@topk of the weighted Hamming ranking (relevant = shares at least one label).

    Args:
        query_codes: (Q, K) codes.
        database_codes: (N, K) codes.
        query_labels: (Q, C) multi-hot.
        database_labels: (N, C) multi-hot.
        weights: (K,) raw bit weights.
        topk: cut-off k; None = all N; clipped to N.
        chunk_size: queries per distance block (memory: chunk x N x 8 bytes).

    Returns:
        mAP in [0, 1].

    Raises:
        ValueError: as :func:`weighted_hamming_distances`, label rows != code rows, or topk <= 0.
    """
    query_labels, database_labels = np.asarray(query_labels) > 0, np.asarray(database_labels) > 0
    n_query, n_database = len(query_labels), len(database_labels)
    if _codes(query_codes, "query_codes").shape[0] != n_query or _codes(database_codes, "database_codes").shape[0] != n_database:
        raise ValueError("pass one label row per code, in the same order, for queries and database")
    k = _check_k(topk, n_database)
    precisions = []
    for start in range(0, n_query, chunk_size):
        rows = slice(start, start + chunk_size)
        order = weighted_rank(np.asarray(query_codes)[rows], database_codes, weights, k)
        relevant = (query_labels[rows].astype(np.int64) @ database_labels.T.astype(np.int64) > 0)
        hits = np.take_along_axis(relevant, order, axis=1)
        found = np.cumsum(hits, axis=1)
        ranks = np.arange(1, k + 1)
        sums = (hits * found / ranks).sum(axis=1)
        precisions.append(np.where(found[:, -1] > 0, sums / np.maximum(found[:, -1], 1), 0.0))
    return float(np.concatenate(precisions).mean())


def _rounded(distances: np.ndarray) -> np.ndarray:
    """Distances rounded to 1e-9 so that equal sums reached in different float orders tie exactly."""
    return np.round(distances, 9)


def _check_k(k: int | None, n_database: int) -> int:
    if k is None:
        return n_database
    if int(k) <= 0:
        raise ValueError(f"k={k} must be > 0 (None = the whole database)")
    return min(int(k), n_database)
