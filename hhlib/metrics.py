"""Retrieval metrics over Hamming ranking: mAP@k, tie-aware mAP, PR curve, P@N, precision within radius.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4.1 and docs/method.md §4: rank the database by
Hamming distance, take the top k, average precision over the relevant items of that top k
(relevant = shares at least one label with the query; labels are multi-hot), mean over queries;
a query with no relevant item in its top k adds 0 but counts in the mean. k = None means the whole
database (the reference's ``[0:-1]`` slice, which drops the last item, is not reproduced).

Ties follow :data:`hhlib.hamming.TIE_RULE` (distance, then database index). Because that order is
arbitrary, :func:`tie_aware_map` also reports the expected AP over all orderings of tied items
(McSherry & Najork, ECIR 2008; He et al., "Hashing as Tie-Aware Learning to Rank", CVPR 2018).

How it is fast: codes are packed bits compared with popcount, labels are packed into 64-bit
bitsets so relevance is one AND, and each query is ranked by a counting sort over the bits + 1
distances. Pass 1 stores a one-byte key (2 x distance + relevant) per database item and
histograms the keys; pass 2 walks the database in index order and gives each item that can reach
the top k the rank (items closer) + (items at its distance seen so far) + 1, which is the tie
rule, without ever sorting. Queries run in parallel (numba ``prange``) and in chunks.

Memory bound: besides the caller's arrays, an evaluation holds the packed database
(N_db x 8 x ceil(bits/64) bytes), its label bitsets (N_db x 8 x ceil(C/64) bytes), one key per
database item per worker thread (N_db x 1 byte for bits <= 127, x 2 bytes up to 32767 bits) and,
per chunk of queries, chunk x (bits + 1) x 16 bytes of histograms. No (queries x N_db) matrix is
ever formed. For a 1M-item database with 64-bit codes, 81 classes and 2 threads: 8 MB + 16 MB +
2 MB, plus 1 MB for the default chunk of 1024 queries; packing float codes adds a transient
N_db x bits bool array (64 MB). A 24 GiB machine holds that several hundred times over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hhlib.hamming import (
    _check_k,
    _key_histogram,
    _to_numpy,
    as_words,
    kernel_threads,
    key_dtype,
    njit,
    pack_pair,
    prange,
    trailing_zeros64,
)

DEFAULT_CHUNK_SIZE = 1024  # queries per kernel call; memory per chunk is listed in the module docstring
DEFAULT_RADIUS = 2  # "precision within Hamming radius 2", the literature's hash-lookup protocol (docs/method.md §4)


@dataclass(frozen=True)
class PreparedInputs:
    """Codes and labels in kernel form, checked against each other.

    Attributes:
        query_words: (Q, ceil(bits/64)) uint64 packed query codes.
        database_words: (N, ceil(bits/64)) uint64 packed database codes.
        query_labels: (Q, ceil(C/64)) uint64 label bitsets.
        database_labels: (N, ceil(C/64)) uint64 label bitsets.
        bits: code length.
    """

    query_words: np.ndarray
    database_words: np.ndarray
    query_labels: np.ndarray
    database_labels: np.ndarray
    bits: int

    @property
    def n_query(self) -> int:
        """Number of queries."""
        return int(self.query_words.shape[0])

    @property
    def n_database(self) -> int:
        """Number of database items."""
        return int(self.database_words.shape[0])


def label_bitsets(labels: Any, name: str = "labels") -> np.ndarray:
    """Pack multi-hot labels into 64-bit bitsets so that "shares a label" is one AND per word.

    Args:
        labels: (N, C) multi-hot (any value > 0 is a positive class), numpy or torch.
        name: what to call the argument in error messages.

    Returns:
        (N, ceil(C/64)) uint64.

    Raises:
        ValueError: not 2-D, no classes, or non-finite values.
    """
    array = _to_numpy(labels, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D multi-hot (N, C); got shape {array.shape}: "
            "convert class indices y with np.eye(C)[y]"
        )
    if array.shape[1] == 0:
        raise ValueError(f"{name} have 0 classes: pass (N, C) multi-hot labels with C >= 1")
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf: pass 0/1 multi-hot labels")
    return as_words(np.packbits(array > 0, axis=1, bitorder="little"))


def prepare_inputs(
    query_codes: Any, database_codes: Any, query_labels: Any, database_labels: Any, bits: int | None = None
) -> PreparedInputs:
    """Pack codes and labels and check every shape against the others.

    Args:
        query_codes: (Q, bits) codes (float sign outputs, {-1,+1}, {0,1}, bool; numpy or torch),
            or (Q, ceil(bits/8)) packed uint8 together with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot.
        database_labels: (N, C) multi-hot.
        bits: code length; None = the width of the unpacked codes.

    Returns:
        The inputs in kernel form.

    Raises:
        ValueError: empty inputs, code length mismatch, label rows != code rows, label widths differ.
    """
    packed_query, packed_database, bits = pack_pair(query_codes, database_codes, bits)
    query_bitsets = label_bitsets(query_labels, "query_labels")
    database_bitsets = label_bitsets(database_labels, "database_labels")
    for role, codes, bitsets in (
        ("query", packed_query, query_bitsets),
        ("database", packed_database, database_bitsets),
    ):
        if bitsets.shape[0] != codes.shape[0]:
            raise ValueError(
                f"{role}_labels has {bitsets.shape[0]} rows but {role}_codes has {codes.shape[0]}: "
                "pass one label row per code, in the same order"
            )
    query_classes = _to_numpy(query_labels, "query_labels").shape[1]
    database_classes = _to_numpy(database_labels, "database_labels").shape[1]
    if query_classes != database_classes:
        raise ValueError(
            f"query_labels have {query_classes} classes but database_labels have {database_classes}: "
            "use multi-hot labels over the same class list for both"
        )
    return PreparedInputs(
        as_words(packed_query), as_words(packed_database), query_bitsets, database_bitsets, bits
    )


@njit(cache=True)
def _expected_cut_term(
    expected_sum: float, relevant_before: int, x: int, m: int, harmonic: float, harmonic_weighted: float
) -> float:
    """E[AP@k | x relevant among the m tied items kept from the cut group]."""
    denominator = relevant_before + x
    if denominator == 0:
        return 0.0
    cut = 0.0
    if x > 0:
        slope = (x - 1) / (m - 1) if m > 1 else 0.0
        cut = x / m * ((relevant_before + 1) * harmonic + slope * harmonic_weighted)
    return (expected_sum + cut) / denominator


@njit(cache=True)
def _tie_aware_average_precision(counts: np.ndarray, relevant_counts: np.ndarray, topk: int) -> float:
    """Expected AP@topk of one query over uniformly random orderings inside each distance group.

    counts[d] items lie at distance d, relevant_counts[d] of them relevant. Groups that fit in
    the top k contribute E[sum_t rel_t * prec@t] in closed form (He et al. 2018, Eq. 8): position
    t of a group holds a relevant item with probability n+/n, and then the expected number of
    relevant items ahead of it in the group is (t - 1)(n+ - 1)/(n - 1). When k cuts a group,
    the number X of relevant items among its m kept positions is hypergeometric, and the AP's
    denominator (relevant items in the top k) depends on X, so the expectation is summed over X
    exactly (pmf by the ratio recurrence from the mode, normalised).
    """
    n_bins = counts.shape[0]
    before = 0
    relevant_before = 0
    expected_sum = 0.0
    for d in range(n_bins):
        n = counts[d]
        if n == 0:
            continue
        n_relevant = relevant_counts[d]
        if before + n <= topk:
            if n_relevant > 0:
                slope = (n_relevant - 1) / (n - 1) if n > 1 else 0.0
                group_sum = 0.0
                for t in range(1, n + 1):
                    group_sum += (relevant_before + 1 + (t - 1) * slope) / (before + t)
                expected_sum += n_relevant / n * group_sum
            before += n
            relevant_before += n_relevant
            if before == topk:
                break
            continue
        m = topk - before
        harmonic = 0.0
        harmonic_weighted = 0.0
        for t in range(1, m + 1):
            inverse = 1.0 / (before + t)
            harmonic += inverse
            harmonic_weighted += (t - 1) * inverse
        x_low = max(0, m - (n - n_relevant))
        x_high = min(m, n_relevant)
        mode = ((m + 1) * (n_relevant + 1)) // (n + 2)
        mode = min(max(mode, x_low), x_high)
        numerator = _expected_cut_term(expected_sum, relevant_before, mode, m, harmonic, harmonic_weighted)
        denominator = 1.0
        weight = 1.0
        for x in range(mode, x_high):
            weight *= (n_relevant - x) * (m - x) / ((x + 1.0) * (n - n_relevant - m + x + 1.0))
            if weight == 0.0:
                break
            numerator += weight * _expected_cut_term(
                expected_sum, relevant_before, x + 1, m, harmonic, harmonic_weighted
            )
            denominator += weight
        weight = 1.0
        for x in range(mode, x_low, -1):
            weight *= x * (n - n_relevant - m + x) / ((n_relevant - x + 1.0) * (m - x + 1.0))
            if weight == 0.0:
                break
            numerator += weight * _expected_cut_term(
                expected_sum, relevant_before, x - 1, m, harmonic, harmonic_weighted
            )
            denominator += weight
        return numerator / denominator
    if relevant_before == 0:
        return 0.0
    return expected_sum / relevant_before


@njit(cache=True)
def _ranked_relevance_pass(
    keys: np.ndarray,
    counts: np.ndarray,
    relevant_counts: np.ndarray,
    topk: int,
    needed: int,
    cut_offs: np.ndarray,
    hits: np.ndarray,
) -> float:
    """Pass 2: AP@topk under the tie rule and hits[c] = relevant items in the top cut_offs[c].

    Counting sort without materialising the order: item j at distance d has rank
    (items closer than d) + (items at d before j in database order) + 1, and its relevant rank
    likewise, so one walk over the database in index order, with a running counter per distance,
    gives every rank. Only keys of distance <= the bin holding rank ``needed`` are visited, found
    64 at a time through a branch-free bit mask and trailing-zero counts.
    """
    n_bins = counts.shape[0]
    rank = np.empty(n_bins, dtype=np.int64)
    relevant_rank = np.empty(n_bins, dtype=np.int64)
    total = 0
    relevant_total = 0
    last_bin = n_bins - 1
    found_last = False
    for d in range(n_bins):
        rank[d] = total
        relevant_rank[d] = relevant_total
        total += counts[d]
        relevant_total += relevant_counts[d]
        if not found_last and total >= needed:
            last_bin = d
            found_last = True
    limit = 2 * last_bin + 1  # largest key (2 * distance + relevant) that can reach the top
    n_cut_offs = cut_offs.shape[0]
    precision_sum = 0.0
    relevant_in_topk = 0
    placed = 0
    n_database = keys.shape[0]
    n_blocks = (n_database + 63) // 64
    for block in range(n_blocks):
        base = block * 64
        mask = np.uint64(0)
        if base + 64 <= n_database:
            for lane in range(64):
                mask |= np.uint64(keys[base + lane] <= limit) << np.uint64(lane)
        else:
            for lane in range(n_database - base):
                mask |= np.uint64(keys[base + lane] <= limit) << np.uint64(lane)
        while mask != 0:
            j = base + trailing_zeros64(mask)
            mask &= mask - np.uint64(1)
            key = keys[j]
            distance = key >> 1
            rank[distance] += 1
            position = rank[distance]  # 1-based
            if position > needed:
                continue
            placed += 1
            if key & 1:
                relevant_rank[distance] += 1
                if position <= topk:
                    precision_sum += relevant_rank[distance] / position
                    relevant_in_topk += 1
                for c in range(n_cut_offs):
                    if position <= cut_offs[c]:
                        hits[c] += 1
        if placed == needed:
            break
    if relevant_in_topk == 0:
        return 0.0
    return precision_sum / relevant_in_topk


@njit(parallel=True, cache=True)
def _ranking_kernel(
    query_words: np.ndarray,
    database_words: np.ndarray,
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    n_bins: int,
    topk: int,
    cut_offs: np.ndarray,
    exact_pass: bool,
    tie_aware: bool,
    key_probe: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query: AP@topk under the tie rule, tie-aware AP@topk, (distance, relevance) histograms, hits@N.

    Pass 1 stores key = 2 * distance + relevant for every item (one byte each for bits <= 127) and
    histograms it; pass 2 (:func:`_ranked_relevance_pass`) ranks the items that can reach the top
    ``needed`` = max(topk, largest N) and accumulates AP@topk and the relevant counts at each N.
    """
    n_query = query_words.shape[0]
    n_database = database_words.shape[0]
    n_cut_offs = cut_offs.shape[0]
    average_precision = np.zeros(n_query, dtype=np.float64)
    tie_aware_precision = np.zeros(n_query, dtype=np.float64)
    counts = np.zeros((n_query, n_bins), dtype=np.int64)
    relevant_counts = np.zeros((n_query, n_bins), dtype=np.int64)
    hits = np.zeros((n_query, n_cut_offs), dtype=np.int64)
    needed = topk
    if n_cut_offs > 0 and cut_offs[n_cut_offs - 1] > needed:
        needed = cut_offs[n_cut_offs - 1]
    for qi in prange(n_query):
        keys = np.empty(n_database, dtype=key_probe.dtype)
        histogram = _key_histogram(
            query_words[qi], database_words, query_labels[qi], database_labels, keys, 2 * n_bins
        )
        for d in range(n_bins):
            counts[qi, d] = histogram[2 * d] + histogram[2 * d + 1]
            relevant_counts[qi, d] = histogram[2 * d + 1]
        if tie_aware:
            tie_aware_precision[qi] = _tie_aware_average_precision(counts[qi], relevant_counts[qi], topk)
        if not exact_pass:
            continue
        average_precision[qi] = _ranked_relevance_pass(
            keys, counts[qi], relevant_counts[qi], topk, needed, cut_offs, hits[qi]
        )
    return average_precision, tie_aware_precision, counts, relevant_counts, hits


@dataclass
class RankingSummary:
    """Everything one pass over the queries yields, reduced over queries.

    Attributes:
        topk: the cut-off used (None in the call -> the database size).
        average_precision: (Q,) AP@topk per query under the tie rule (None when not asked).
        tie_aware_average_precision: (Q,) expected AP@topk per query (None when not asked).
        cut_offs: (T,) the N of precision@N, clipped to the database size.
        precision_at_n: (T,) mean over queries of (relevant in top N) / N.
        radius_precision: (bits+1,) mean precision of the items within radius r, over the
            queries that get at least one item (NaN where none does).
        radius_recall: (bits+1,) mean recall within radius r over the queries with at least one
            relevant database item (NaN if there is none).
        radius_precision_or_zero: (bits+1,) mean precision within radius r, an empty result
            counting as precision 0 (the hash-lookup convention of the literature).
        radius_mean_returned: (bits+1,) mean number of items within radius r.
    """

    topk: int
    average_precision: np.ndarray | None
    tie_aware_average_precision: np.ndarray | None
    cut_offs: np.ndarray
    precision_at_n: np.ndarray
    radius_precision: np.ndarray
    radius_recall: np.ndarray
    radius_precision_or_zero: np.ndarray
    radius_mean_returned: np.ndarray


def _cut_offs(values: int | Sequence[int], n_database: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate P@N cut-offs; return (as given, sorted unique clipped to the database size)."""
    given = np.atleast_1d(np.asarray(values))
    if given.ndim != 1 or (given.size and given.dtype.kind not in "iu"):
        raise ValueError(f"n must be a positive int or a list of them; got {values!r}: pass e.g. n=(100, 1000)")
    if given.size and given.min() <= 0:
        raise ValueError(f"n must be positive; got {values!r}: pass e.g. n=(100, 1000)")
    clipped = np.minimum(given.astype(np.int64), n_database)
    return clipped, np.unique(clipped)


def compute_ranking_summary(
    inputs: PreparedInputs,
    topk: int | None = None,
    *,
    precision_at: int | Sequence[int] = (),
    exact: bool = True,
    tie_aware: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> RankingSummary:
    """Run the ranking kernel over chunks of queries and reduce the results.

    Args:
        inputs: from :func:`prepare_inputs`.
        topk: mAP cut-off; None = the whole database; values above the database size are clipped.
        precision_at: the N of precision@N (clipped to the database size).
        exact: compute the tie-rule AP and precision@N (the second pass over the database).
        tie_aware: compute the tie-aware AP.
        chunk_size: queries per kernel call (bounds the per-chunk histogram memory).

    Returns:
        The per-query APs and the reduced curves.

    Raises:
        ValueError: topk <= 0, bad cut-offs or chunk_size.
    """
    n_database = inputs.n_database
    topk = _check_k(topk, n_database, "topk")
    given, cut_offs = _cut_offs(precision_at, n_database)
    if isinstance(chunk_size, bool) or int(chunk_size) <= 0:
        raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}: use e.g. 1024")
    n_bins = inputs.bits + 1
    n_query = inputs.n_query
    key_probe = np.zeros(1, dtype=key_dtype(inputs.bits))
    average_precision = np.zeros(n_query)
    tie_aware_precision = np.zeros(n_query)
    hits_sum = np.zeros(cut_offs.shape[0])
    precision_sum = np.zeros(n_bins)
    precision_count = np.zeros(n_bins)
    recall_sum = np.zeros(n_bins)
    recall_count = 0
    returned_sum = np.zeros(n_bins)
    for begin in range(0, n_query, int(chunk_size)):
        end = min(begin + int(chunk_size), n_query)
        with kernel_threads((end - begin) * n_database):
            ap, tap, counts, relevant_counts, hits = _ranking_kernel(
                inputs.query_words[begin:end],
                inputs.database_words,
                inputs.query_labels[begin:end],
                inputs.database_labels,
                n_bins,
                topk,
                cut_offs,
                exact or cut_offs.size > 0,
                tie_aware,
                key_probe,
            )
        average_precision[begin:end] = ap
        tie_aware_precision[begin:end] = tap
        hits_sum += hits.sum(axis=0)
        returned = np.cumsum(counts, axis=1)
        relevant_returned = np.cumsum(relevant_counts, axis=1)
        nonempty = returned > 0
        precision_sum += np.where(nonempty, relevant_returned / np.maximum(returned, 1), 0.0).sum(axis=0)
        precision_count += nonempty.sum(axis=0)
        relevant_total = relevant_returned[:, -1]
        has_relevant = relevant_total > 0
        recall_sum += (relevant_returned[has_relevant] / relevant_total[has_relevant, None]).sum(axis=0)
        recall_count += int(has_relevant.sum())
        returned_sum += returned.sum(axis=0)
    precision_at_n = hits_sum / (n_query * np.maximum(cut_offs, 1))
    lookup = {int(n): p for n, p in zip(cut_offs, precision_at_n)}
    with np.errstate(invalid="ignore", divide="ignore"):
        radius_precision = np.where(precision_count > 0, precision_sum / np.maximum(precision_count, 1), np.nan)
        radius_recall = recall_sum / recall_count if recall_count else np.full(n_bins, np.nan)
    return RankingSummary(
        topk=topk,
        average_precision=average_precision if exact else None,
        tie_aware_average_precision=tie_aware_precision if tie_aware else None,
        cut_offs=given,
        precision_at_n=np.array([lookup[int(n)] for n in given], dtype=np.float64),
        radius_precision=radius_precision,
        radius_recall=radius_recall,
        radius_precision_or_zero=precision_sum / n_query,
        radius_mean_returned=returned_sum / n_query,
    )


def mean_average_precision(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    topk: int | None = None,
    *,
    bits: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """mAP@topk over the Hamming ranking, ties by database index (``hhlib.hamming.TIE_RULE``).

    AP of a query = mean over the relevant items in its top k of (relevant items up to and
    including that rank) / rank; a query without a relevant item in its top k has AP 0 and
    still counts in the mean (docs/method.md §4).

    Args:
        query_codes: (Q, bits) codes: float sign outputs, {-1,+1}, {0,1} or bool (numpy or
            torch), or (Q, ceil(bits/8)) packed uint8 together with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot; relevant = shares at least one label.
        database_labels: (N, C) multi-hot.
        topk: cut-off k; None = all N items (CIFAR-10's mAP@all); clipped to N.
        bits: code length; needed only for packed uint8 codes.
        chunk_size: queries per kernel call.

    Returns:
        mAP in [0, 1].

    Raises:
        ValueError: empty inputs, code length mismatch, label rows != code rows, label widths
            differ, or topk <= 0.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    summary = compute_ranking_summary(inputs, topk, exact=True, tie_aware=False, chunk_size=chunk_size)
    return float(np.mean(summary.average_precision))


def tie_aware_map(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    topk: int | None = None,
    *,
    bits: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """Tie-aware mAP@topk: the expected AP over all orderings of items at equal Hamming distance.

    Each query's AP@k is averaged over every ordering of its tied items, all equally likely
    (McSherry & Najork 2008; He et al. CVPR 2018). When k cuts through a tie group, the expectation
    is over the orderings of the truncated list: which of the tied items fall in the top k is
    random too, and AP@k (with its own denominator, the relevant items that made the top k; 0 if
    none) is averaged exactly over those outcomes. Without ties it equals
    :func:`mean_average_precision`.

    Args:
        query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8 with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot.
        database_labels: (N, C) multi-hot.
        topk: cut-off k; None = all N items; clipped to N.
        bits: code length; needed only for packed uint8 codes.
        chunk_size: queries per kernel call.

    Returns:
        Tie-aware mAP in [0, 1].

    Raises:
        ValueError: as :func:`mean_average_precision`.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    summary = compute_ranking_summary(inputs, topk, exact=False, tie_aware=True, chunk_size=chunk_size)
    return float(np.mean(summary.tie_aware_average_precision))


def precision_recall_curve(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    *,
    bits: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, np.ndarray]:
    """Precision and recall of Hamming-ball lookup at every radius 0..bits.

    At radius r a query retrieves every item at distance <= r (ties do not matter). Precision is
    averaged over the queries that retrieve at least one item at that radius (precision of an
    empty result is undefined); recall over the queries that have at least one relevant item.

    Args:
        query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8 with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot.
        database_labels: (N, C) multi-hot.
        bits: code length; needed only for packed uint8 codes.
        chunk_size: queries per kernel call.

    Returns:
        {"radius": (bits+1,) int, "precision": (bits+1,) float (NaN where no query retrieves
        anything), "recall": (bits+1,) float, "mean_returned": (bits+1,) float}.

    Raises:
        ValueError: as :func:`mean_average_precision`.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    summary = compute_ranking_summary(inputs, None, exact=False, tie_aware=False, chunk_size=chunk_size)
    return {
        "radius": np.arange(inputs.bits + 1),
        "precision": summary.radius_precision,
        "recall": summary.radius_recall,
        "mean_returned": summary.radius_mean_returned,
    }


def precision_at_n(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    n: int | Sequence[int] = (100, 500, 1000),
    *,
    bits: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """Precision of the top N under the tie rule, for each N in a list.

    Args:
        query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8 with ``bits``.
        database_codes: (N_db, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot.
        database_labels: (N_db, C) multi-hot.
        n: one N or a list; an N above N_db is clipped to N_db (precision of the whole database).
        bits: code length; needed only for packed uint8 codes.
        chunk_size: queries per kernel call.

    Returns:
        (len(n),) float64: mean over queries of (relevant items in the top N) / N.

    Raises:
        ValueError: as :func:`mean_average_precision`, or an N <= 0.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    summary = compute_ranking_summary(
        inputs, 1, precision_at=n, exact=False, tie_aware=False, chunk_size=chunk_size
    )
    return summary.precision_at_n


def precision_within_radius(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    radius: int = DEFAULT_RADIUS,
    *,
    bits: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[float, float]:
    """Precision of Hamming-ball lookup within ``radius`` and the mean number of items returned.

    A query that retrieves nothing within the radius counts as precision 0 (the convention of
    the hashing literature for "precision within Hamming radius 2").

    Args:
        query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8 with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot.
        database_labels: (N, C) multi-hot.
        radius: Hamming radius, default 2 (docs/method.md §4).
        bits: code length; needed only for packed uint8 codes.
        chunk_size: queries per kernel call.

    Returns:
        (mean precision, mean number of database items within the radius).

    Raises:
        ValueError: as :func:`mean_average_precision`, or a negative radius.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    radius = _check_radius(radius, inputs.bits)
    summary = compute_ranking_summary(inputs, None, exact=False, tie_aware=False, chunk_size=chunk_size)
    return float(summary.radius_precision_or_zero[radius]), float(summary.radius_mean_returned[radius])


def _check_radius(radius: int, bits: int) -> int:
    """Validate a Hamming radius; radii above bits mean the whole database."""
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an int >= 0; got {radius!r}: pass e.g. radius=2")
    return int(min(int(radius), bits))
