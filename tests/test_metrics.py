"""Tests for hhlib.metrics against hand-computed values and straightforward per-query oracles."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hhlib import metrics

# Hand example: 4-bit codes, query 0000. Distances 1, 0, 1, 1 -> order by (distance, index): 1, 0, 2, 3.
HAND_DATABASE = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
HAND_DATABASE_LABELS = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
HAND_QUERY = np.zeros((2, 4))
# query 0 shares class 0 with items 0 and 3 (item 3 is multi-label); query 1 has no relevant item
HAND_QUERY_LABELS = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)


def _hand(function, *args, **kwargs):
    return function(HAND_QUERY, HAND_DATABASE, HAND_QUERY_LABELS, HAND_DATABASE_LABELS, *args, **kwargs)


def oracle_map(query, database, query_labels, database_labels, topk=None):
    """The straightforward algorithm: per query, distances, stable argsort, AP over the top k."""
    query, database = np.asarray(query) > 0, np.asarray(database) > 0
    topk = database.shape[0] if topk is None else min(topk, database.shape[0])
    average_precisions = []
    for q in range(query.shape[0]):
        distances = (query[q] != database).sum(axis=1)
        order = np.argsort(distances, kind="stable")[:topk]
        relevant = (database_labels[order] @ query_labels[q]) > 0
        if not relevant.any():
            average_precisions.append(0.0)
            continue
        ranks = np.flatnonzero(relevant) + 1.0
        average_precisions.append(float(np.mean(np.arange(1, ranks.size + 1) / ranks)))
    return float(np.mean(average_precisions))


def brute_force_tie_aware_map(query, database, query_labels, database_labels, topk=None):
    """Average AP@k over every ordering of the tied items (all permutations inside each distance)."""
    query, database = np.asarray(query) > 0, np.asarray(database) > 0
    topk = database.shape[0] if topk is None else min(topk, database.shape[0])
    per_query = []
    for q in range(query.shape[0]):
        distances = (query[q] != database).sum(axis=1)
        relevant = (database_labels @ query_labels[q]) > 0
        groups = [np.flatnonzero(distances == d) for d in np.unique(distances)]
        total, count = 0.0, 0
        for orders in itertools.product(*(itertools.permutations(group) for group in groups)):
            ranked = relevant[np.concatenate(orders)[:topk]]
            ranks = np.flatnonzero(ranked) + 1.0
            total += float(np.mean(np.arange(1, ranks.size + 1) / ranks)) if ranks.size else 0.0
            count += 1
        per_query.append(total / count)
    return float(np.mean(per_query))


def _random_problem(seed, n_query, n_database, bits, n_classes, tie_heavy=False):
    rng = np.random.default_rng(seed)
    query = np.where(rng.random((n_query, bits)) < 0.5, -1.0, 1.0)
    database = np.where(rng.random((n_database, bits)) < 0.5, -1.0, 1.0)
    if tie_heavy:  # few distinct codes -> big tie groups
        database = database[rng.integers(0, 3, n_database)]
    query_labels = (rng.random((n_query, n_classes)) < 0.3).astype(np.float32)
    database_labels = (rng.random((n_database, n_classes)) < 0.3).astype(np.float32)
    return query, database, query_labels, database_labels


def test_hand_computed_map_with_ties() -> None:
    # query 0 ranks relevance 0, 1, 0, 1 -> AP = (1/2 + 2/4) / 2 = 0.5 ; query 1 -> 0 (counts in the mean)
    assert _hand(metrics.mean_average_precision) == pytest.approx(0.25, abs=1e-15)
    assert _hand(metrics.mean_average_precision, 1) == pytest.approx(0.0, abs=1e-15)
    assert _hand(metrics.mean_average_precision, 2) == pytest.approx(0.25, abs=1e-15)  # (1/2)/1 / 2
    assert _hand(metrics.mean_average_precision, 3) == pytest.approx(0.25, abs=1e-15)


def test_hand_computed_tie_aware_map() -> None:
    # query 0: position 1 is item 1 (irrelevant); items 0, 2, 3 tie at distance 1, two relevant.
    # all: relevant positions {2,3},{2,4},{3,4} equally likely -> (7/12 + 1/2 + 5/12) / 3 = 1/2
    assert _hand(metrics.tie_aware_map) == pytest.approx(0.5 / 2, abs=1e-15)
    # k=2: position 2 relevant with probability 2/3, then AP = 1/2 -> 1/3
    assert _hand(metrics.tie_aware_map, 2) == pytest.approx((1 / 3) / 2, abs=1e-15)
    # k=3: {2,3} -> 7/12, {2,4} -> 1/2, {3,4} -> 1/3 -> 17/36 (the cut changes the denominator)
    assert _hand(metrics.tie_aware_map, 3) == pytest.approx((17 / 36) / 2, abs=1e-15)


@pytest.mark.parametrize(
    "seed, n_query, n_database, bits, n_classes, tie_heavy",
    [
        (0, 5, 60, 16, 4, False),
        (1, 4, 50, 8, 3, True),
        (2, 3, 40, 100, 70, False),  # several code words and label words
        (3, 3, 33, 64, 21, True),
        (4, 3, 30, 16, 70, True),  # one code word, two label words
        (5, 2, 20, 130, 2, False),  # keys wider than a byte
    ],
)
def test_map_equals_stable_argsort_oracle(seed, n_query, n_database, bits, n_classes, tie_heavy) -> None:
    problem = _random_problem(seed, n_query, n_database, bits, n_classes, tie_heavy)
    for topk in (None, 1, 2, 7, n_database - 1, n_database, 10 * n_database):
        fast = metrics.mean_average_precision(*problem, topk)
        assert abs(fast - oracle_map(*problem, topk)) <= 1e-12


def test_map_is_not_the_reference_slice_bug() -> None:
    # the only relevant item is the last one in the ranking: "all" must include it
    database = np.array([[0, 0], [1, 1]])
    labels = np.array([[0, 1], [1, 0]], dtype=np.float32)
    value = metrics.mean_average_precision(np.zeros((1, 2)), database, np.array([[1.0, 0.0]]), labels)
    assert value == pytest.approx(0.5)


@pytest.mark.parametrize("seed, tie_heavy", [(0, True), (1, True), (2, False), (3, True)])
def test_tie_aware_map_equals_brute_force(seed: int, tie_heavy: bool) -> None:
    problem = _random_problem(seed, 2, 6, 4, 3, tie_heavy)
    for topk in range(1, 7):
        fast = metrics.tie_aware_map(*problem, topk)
        assert abs(fast - brute_force_tie_aware_map(*problem, topk)) <= 1e-12


def test_tie_aware_map_all_tied_seven_items() -> None:
    rng = np.random.default_rng(7)
    database = np.zeros((7, 8))
    database_labels = (rng.random((7, 2)) < 0.5).astype(np.float32)
    query_labels = np.array([[1.0, 0.0]])
    for topk in (3, None):
        expected = brute_force_tie_aware_map(np.zeros((1, 8)), database, query_labels, database_labels, topk)
        fast = metrics.tie_aware_map(np.zeros((1, 8)), database, query_labels, database_labels, topk)
        assert abs(fast - expected) <= 1e-12


def test_tie_aware_equals_standard_without_ties() -> None:
    # 8 items at distances 0..7 from the query: no ties, so both definitions agree
    bits = 7
    database = np.tril(np.ones((bits + 1, bits)), -1)
    labels = np.random.default_rng(0).integers(0, 2, (bits + 1, 3)).astype(np.float32)
    query_labels = np.array([[1.0, 1.0, 0.0]])
    for topk in (None, 3):
        a = metrics.tie_aware_map(np.zeros((1, bits)), database, query_labels, labels, topk)
        b = metrics.mean_average_precision(np.zeros((1, bits)), database, query_labels, labels, topk)
        assert a == pytest.approx(b, abs=1e-12)


def test_tie_aware_hypergeometric_cut_of_a_large_group() -> None:
    # one group of n = 40 tied items, r = 10 relevant, k = 5: E[AP@5] by the same conditional
    # expectation computed independently here with math.comb
    n, r, m = 40, 10, 5
    labels = np.zeros((n, 1), np.float32)
    labels[:r] = 1
    expected = 0.0
    for x in range(1, m + 1):
        probability = math.comb(r, x) * math.comb(n - r, m - x) / math.comb(n, m)
        # given x relevant among m positions, each position is relevant with prob x/m and has
        # (t-1)(x-1)/(m-1) relevant ahead on average
        ap = sum((x / m) * (1 + (t - 1) * (x - 1) / (m - 1)) / t for t in range(1, m + 1)) / x
        expected += probability * ap
    value = metrics.tie_aware_map(np.zeros((1, 4)), np.zeros((n, 4)), np.ones((1, 1)), labels, m)
    assert value == pytest.approx(expected, abs=1e-12)


def test_precision_at_n_hand_and_oracle() -> None:
    np.testing.assert_allclose(_hand(metrics.precision_at_n, [1, 2, 4, 10]), [0.0, 0.25, 0.25, 0.25], atol=1e-15)
    problem = _random_problem(5, 4, 30, 8, 3, tie_heavy=True)
    query, database, query_labels, database_labels = problem
    ns = [1, 5, 13, 30]
    expected = []
    for n in ns:
        hits = []
        for q in range(query.shape[0]):
            distances = ((query[q] > 0) != (database > 0)).sum(axis=1)
            order = np.argsort(distances, kind="stable")[:n]
            hits.append(((database_labels[order] @ query_labels[q]) > 0).sum() / n)
        expected.append(np.mean(hits))
    np.testing.assert_allclose(metrics.precision_at_n(*problem, ns), expected, atol=1e-14)


def test_precision_recall_curve_hand_and_oracle() -> None:
    curve = _hand(metrics.precision_recall_curve)
    np.testing.assert_allclose(curve["precision"][:2], [0.0, 0.25])
    np.testing.assert_allclose(curve["recall"][:2], [0.0, 1.0])  # query 1 has no relevant item: excluded
    np.testing.assert_allclose(curve["mean_returned"][:3], [1.0, 4.0, 4.0])
    problem = _random_problem(6, 5, 25, 6, 3)
    query, database, query_labels, database_labels = problem
    curve = metrics.precision_recall_curve(*problem)
    distances = ((query[:, None, :] > 0) != (database[None] > 0)).sum(axis=2)
    relevant = (query_labels @ database_labels.T) > 0
    for radius in range(7):
        returned = distances <= radius
        found = (returned & relevant).sum(axis=1)
        nonempty = returned.sum(axis=1) > 0
        precision = np.mean(found[nonempty] / returned.sum(axis=1)[nonempty]) if nonempty.any() else np.nan
        has = relevant.sum(axis=1) > 0
        np.testing.assert_allclose(curve["precision"][radius], precision, atol=1e-14)
        np.testing.assert_allclose(curve["recall"][radius], np.mean(found[has] / relevant.sum(axis=1)[has]), atol=1e-14)


def test_precision_within_radius() -> None:
    precision, returned = _hand(metrics.precision_within_radius)
    assert (precision, returned) == (pytest.approx(0.25), pytest.approx(4.0))
    precision, returned = _hand(metrics.precision_within_radius, 0)
    assert (precision, returned) == (pytest.approx(0.0), pytest.approx(1.0))
    # empty result within the radius counts as precision 0
    far = metrics.precision_within_radius(np.zeros((1, 8)), np.ones((3, 8)), np.ones((1, 1)), np.ones((3, 1)))
    assert far == (0.0, 0.0)
    with pytest.raises(ValueError, match="radius must be an int >= 0"):
        _hand(metrics.precision_within_radius, -1)


def test_accepts_torch_and_packed_inputs() -> None:
    problem = _random_problem(8, 3, 20, 16, 4)
    expected = metrics.mean_average_precision(*problem, 5)
    as_torch = [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in problem]
    assert metrics.mean_average_precision(*as_torch, 5) == pytest.approx(expected, abs=1e-15)
    packed_query = np.packbits(problem[0] > 0, axis=1)
    packed_database = np.packbits(problem[1] > 0, axis=1)
    value = metrics.mean_average_precision(packed_query, packed_database, problem[2], problem[3], 5, bits=16)
    assert value == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((np.ones((2, 16)), np.ones((3, 8)), np.ones((2, 2)), np.ones((3, 2))), "16 bits but database codes have 8"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones((1, 2)), np.ones((3, 2))), "query_labels has 1 rows"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones((2, 2)), np.ones((4, 2))), "database_labels has 4 rows"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones((2, 2)), np.ones((3, 5))), "2 classes but database_labels have 5"),
        ((np.ones((0, 8)), np.ones((3, 8)), np.ones((0, 2)), np.ones((3, 2))), "query_codes is empty"),
        ((np.ones((2, 8)), np.ones((0, 8)), np.ones((2, 2)), np.ones((0, 2))), "database_codes is empty"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones(2), np.ones((3, 2))), "must be 2-D multi-hot"),
    ],
)
def test_input_errors(arguments, message) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.mean_average_precision(*arguments)


@pytest.mark.parametrize("topk", [0, -5, 2.5, True])
def test_bad_topk(topk) -> None:
    with pytest.raises(ValueError, match="topk must be a positive int or None"):
        _hand(metrics.mean_average_precision, topk)
    with pytest.raises(ValueError, match="topk must be a positive int or None"):
        _hand(metrics.tie_aware_map, topk)


def test_bad_cut_offs() -> None:
    with pytest.raises(ValueError, match="n must be positive"):
        _hand(metrics.precision_at_n, [0, 5])
