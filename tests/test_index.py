"""Tests for hhlib.index: exact search = rank() (tie rule), faiss agreement, save/load, coarse-to-fine."""

from __future__ import annotations

import numpy as np
import pytest

from hhlib import hamming
from hhlib.index import INDEX_MODES, MISSING_DISTANCE, HammingIndex


def _codes(rows: int, bits: int, seed: int) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random((rows, bits)) < 0.5, -1.0, 1.0).astype(np.float32)


def _tied_database(bits: int = 16) -> np.ndarray:
    database = _codes(50, bits, 1)
    database[20:35] = database[3]  # a big tie group
    return database


def test_exact_search_equals_rank_including_ties() -> None:
    database, queries = _tied_database(), _codes(4, 16, 2)
    queries[0] = database[3]
    index = HammingIndex(database)
    distances, ids = index.search(queries, 10)
    expected_ids, expected_distances = hamming.rank(queries, database, 10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(distances, expected_distances)
    assert ids[0].tolist() == [3] + list(range(20, 29))  # tied items by database index


def test_exact_search_distances_agree_with_faiss_flat() -> None:
    database, queries = _tied_database(24), _codes(5, 24, 3)
    index = HammingIndex(database)
    faiss_distances, faiss_ids = index.faiss_index.search(hamming.pack_codes(queries), 12)
    distances, ids = index.search(queries, 12)
    np.testing.assert_array_equal(distances, faiss_distances)  # same distances, ties may differ
    oracle = hamming.hamming_distances(queries, database)
    np.testing.assert_array_equal(np.take_along_axis(oracle, faiss_ids, axis=1), faiss_distances)


@pytest.mark.parametrize("mode", ["hnsw", "multihash"])
def test_approximate_modes_return_sorted_valid_results(mode: str) -> None:
    database, queries = _codes(200, 32, 4), _codes(3, 32, 5)
    queries[1] = database[17]
    index = HammingIndex(database, mode=mode, multihash_flips=2)
    distances, ids = index.search(queries, 5)
    oracle = hamming.hamming_distances(queries, database)
    assert ids[1, 0] == 17 and distances[1, 0] == 0  # an exact copy is always found
    for q in range(3):
        found = ids[q] >= 0
        np.testing.assert_array_equal(distances[q][found], oracle[q, ids[q][found]])
        assert np.all(distances[q][~found] == MISSING_DISTANCE)
        keys = list(zip(distances[q], np.where(found, ids[q], 1 << 62)))
        assert keys == sorted(keys)


def test_hnsw_is_exact_on_a_small_database() -> None:
    database, queries = _codes(100, 16, 6), _codes(3, 16, 7)
    distances, _ = HammingIndex(database, mode="hnsw", hnsw_ef_search=200).search(queries, 10)
    np.testing.assert_array_equal(distances, hamming.rank(queries, database, 10)[1])


def test_retrieve_returns_image_ids() -> None:
    database = _tied_database()
    image_ids = np.array([f"img_{i:03d}.jpg" for i in range(50)])
    index = HammingIndex(database, np.eye(50, 3), image_ids)
    found_ids, distances = index.retrieve(database[3], 4)
    assert found_ids.tolist() == ["img_003.jpg", "img_020.jpg", "img_021.jpg", "img_022.jpg"]
    assert distances.tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="retrieve takes one query code"):
        index.retrieve(database[:2], 4)


@pytest.mark.parametrize("mode", sorted(INDEX_MODES))
def test_save_load_round_trip(tmp_path, mode: str) -> None:
    database, queries = _codes(40, 12, 8), _codes(3, 12, 9)
    labels = (np.random.default_rng(0).random((40, 5)) < 0.3).astype(np.float32)
    index = HammingIndex(database, labels, np.arange(100, 140), mode=mode)
    before = index.search(queries, 6)
    loaded = HammingIndex.load(index.save(tmp_path / "index"))
    assert (loaded.mode, loaded.bits, loaded.settings) == (mode, 12, index.settings)
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.labels, labels)
    np.testing.assert_array_equal(loaded.image_ids, np.arange(100, 140))
    for got, expected in zip(loaded.search(queries, 6), before):
        np.testing.assert_array_equal(got, expected)
    assert loaded.faiss_index.ntotal == 40


def test_load_missing_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="save the index with HammingIndex.save"):
        HammingIndex.load(tmp_path / "nothing")


def test_coarse_to_fine_reranks_the_shortlist_by_feature_distance() -> None:
    rng = np.random.default_rng(10)
    database, queries = _codes(30, 8, 11), _codes(2, 8, 12)
    database_features = rng.standard_normal((30, 5)).astype(np.float32)
    query_features = rng.standard_normal((2, 5)).astype(np.float32)
    index = HammingIndex(database)
    distances, ids = index.coarse_to_fine(queries, query_features, database_features, shortlist=12, k=4)
    shortlist, _ = hamming.rank(queries, database, 12)
    for q in range(2):
        euclidean = np.linalg.norm(database_features[shortlist[q]] - query_features[q], axis=1)
        order = np.argsort(euclidean, kind="stable")[:4]
        np.testing.assert_array_equal(ids[q], shortlist[q][order])
        np.testing.assert_allclose(distances[q], euclidean[order], rtol=1e-5)


def test_coarse_to_fine_errors() -> None:
    index = HammingIndex(_codes(10, 8, 13))
    queries, features = _codes(2, 8, 14), np.zeros((2, 3))
    with pytest.raises(ValueError, match="k=5 exceeds shortlist=3"):
        index.coarse_to_fine(queries, features, np.zeros((10, 3)), 3, 5)
    with pytest.raises(ValueError, match="database_features must be"):
        index.coarse_to_fine(queries, features, np.zeros((9, 3)), 3, 2)
    with pytest.raises(ValueError, match="query features have 3 dims but database features have 4"):
        index.coarse_to_fine(queries, features, np.zeros((10, 4)), 3, 2)
    with pytest.raises(ValueError, match="query_features must be"):
        index.coarse_to_fine(queries, np.zeros((3, 3)), np.zeros((10, 3)), 3, 2)


def test_construction_and_query_errors() -> None:
    with pytest.raises(KeyError, match="valid modes are"):
        HammingIndex(_codes(4, 8, 0), mode="ivf")
    with pytest.raises(ValueError, match="codes is empty"):
        HammingIndex(np.zeros((0, 8)))
    with pytest.raises(ValueError, match="labels must be"):
        HammingIndex(_codes(4, 8, 0), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="image_ids must be"):
        HammingIndex(_codes(4, 8, 0), image_ids=[1, 2])
    index = HammingIndex(_codes(4, 16, 0))
    with pytest.raises(ValueError, match="query codes have width 8 but the index holds 16-bit codes"):
        index.search(_codes(1, 8, 0), 2)
    with pytest.raises(ValueError, match="k must be a positive int"):
        index.search(_codes(1, 16, 0), 0)
    packed = hamming.pack_codes(_codes(2, 16, 1))
    np.testing.assert_array_equal(index.search(packed, 3)[1], index.search(_codes(2, 16, 1), 3)[1])
