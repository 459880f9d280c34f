"""Tests of hhlib.weighted_hamming against a brute-force oracle and the plain Hamming ranking."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hhlib import artifacts
from hhlib.train import TrainConfig, fit

from hhlib.hamming import rank
from hhlib.metrics import mean_average_precision
from hhlib.weighted_hamming import (
    normalised_bit_weights,
    weighted_hamming_distances,
    weighted_mean_average_precision,
    weighted_rank,
)

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def oracle_average_precision(query, query_label, database, database_labels, weights, k):
    """Plain loops: normalise, sum w^2 over differing bits, sort by (distance, index), AP@k."""
    scale = len(weights) / sum(w * w for w in weights)
    distance = [sum(w * w * scale for w, a, b in zip(weights, query, row) if a != b) for row in database]
    order = sorted(range(len(database)), key=lambda j: (round(distance[j], 9), j))[:k]
    hits, total = 0, 0.0
    for position, j in enumerate(order, start=1):
        if any(a and b for a, b in zip(query_label, database_labels[j])):
            hits += 1
            total += hits / position
    return total / hits if hits else 0.0


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    database = rng.choice([-1, 1], size=(30, 5))
    database[7] = database[3]  # identical codes: an exact tie
    queries = rng.choice([-1, 1], size=(6, 5))
    database_labels = np.eye(3)[rng.integers(0, 3, 30)]
    database_labels[::4, 1] = 1  # some multi-label items
    query_labels = np.eye(3)[rng.integers(0, 3, 6)]
    weights = np.array([0.3, -1.2, 0.8, 2.0, 0.5])
    return queries, database, query_labels, database_labels, weights


def test_normalised_weights_have_sum_of_squares_k():
    weights = normalised_bit_weights([3.0, -4.0])
    assert np.allclose(weights, [3 * np.sqrt(2 / 25), 4 * np.sqrt(2 / 25)])
    assert (weights**2).sum() == pytest.approx(2.0)


def test_distances_match_the_oracle(problem):
    queries, database, _, _, weights = problem
    scale = len(weights) / (weights**2).sum()
    expected = [[sum(w * w * scale for w, a, b in zip(weights, q, d) if a != b) for d in database] for q in queries]
    assert np.allclose(weighted_hamming_distances(queries, database, weights), expected, atol=1e-12)


@pytest.mark.parametrize("k", [None, 5, 12])
def test_map_matches_the_brute_force_oracle_exactly(problem, k):
    queries, database, query_labels, database_labels, weights = problem
    cut = len(database) if k is None else k
    expected = np.mean([oracle_average_precision(q, ql, database, database_labels, weights, cut)
                        for q, ql in zip(queries, query_labels)])
    value = weighted_mean_average_precision(queries, database, query_labels, database_labels, weights, k, chunk_size=4)
    assert value == pytest.approx(expected, abs=1e-12)


def test_rank_breaks_ties_by_database_index(problem):
    queries, database, _, _, weights = problem
    order = weighted_rank(queries, database, weights)
    for row in order:
        assert list(row).index(3) < list(row).index(7)


def test_equal_weights_give_the_plain_hamming_ranking_and_map(problem):
    queries, database, query_labels, database_labels, _ = problem
    equal = np.ones(5)
    indices, _ = rank(queries, database)
    assert np.array_equal(weighted_rank(queries, database, equal), indices)
    assert weighted_mean_average_precision(queries, database, query_labels, database_labels, equal) == pytest.approx(
        mean_average_precision(queries, database, query_labels, database_labels), abs=1e-12)


def test_weights_change_the_ranking_as_the_oracle_says():
    # query 000, database 100 and 011: plain Hamming prefers 100 (1 bit); weights (3, 1, 1) prefer 011
    query, database = np.array([[0, 0, 0]]), np.array([[1, 0, 0], [0, 1, 1]])
    assert weighted_rank(query, database, [3.0, 1.0, 1.0]).tolist() == [[1, 0]]
    assert weighted_rank(query, database, [1.0, 1.0, 1.0]).tolist() == [[0, 1]]


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="one weight per bit"):
        weighted_hamming_distances(np.ones((2, 3)), np.ones((2, 3)), [1.0, 1.0])
    with pytest.raises(ValueError, match="all bit weights are 0"):
        normalised_bit_weights([0.0, 0.0])
    with pytest.raises(ValueError, match="same model"):
        weighted_hamming_distances(np.ones((2, 3)), np.ones((2, 4)), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"k=0 must be > 0"):
        weighted_rank(np.ones((2, 3)), np.ones((2, 3)), [1.0, 1.0, 1.0], k=0)


@pytest.mark.skipif(not Path(FASHION_MNIST, "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real Fashion-MNIST files are absent from {FASHION_MNIST}")
def test_a_drsdh_run_is_evaluated_with_its_bit_weights(tmp_path):
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32, query_per_class=2,
        train_per_class=4, database_limit=50, batch_size=8, epochs=1, optimizer="adamw", lr=1e-2,
        model_overrides={"drop_path_rate": 0.0}, out_dir=str(tmp_path), progress=False, device="cpu", loss="drsdh",
    ))
    result = fit(config)
    weights = artifacts.load_checkpoint(result.checkpoint_path)["loss"]["bit_weights"]
    assert not torch.allclose(weights, torch.ones(16))  # the weights were trained
    with np.load(result.codes_path) as codes:
        expected = weighted_mean_average_precision(codes["query_codes"], codes["database_codes"],
                                                   codes["query_labels"], codes["database_labels"], weights)
    assert result.evaluation["ranking"] == "weighted_hamming"
    assert result.final_map == pytest.approx(expected, abs=1e-12)
    assert "map_hamming" in result.evaluation
