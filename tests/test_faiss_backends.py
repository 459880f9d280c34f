"""Tests for hhlib.faiss_backends: sorted faiss search against exact Hamming distances, misses, file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from hhlib import hamming
from hhlib.faiss_backends import INDEX_MODES, MISSING_DISTANCE, build_index, read_index, sorted_search, write_index

SETTINGS = {"hnsw_neighbors": 8, "hnsw_ef_construction": 16, "multihash_tables": 2, "multihash_flips": 0}


def _packed(rows: int, bits: int, seed: int) -> np.ndarray:
    codes = np.sign(np.random.default_rng(seed).standard_normal((rows, bits)))
    return hamming.pack_codes(codes, None)


def test_flat_search_is_sorted_by_distance_then_position_like_rank() -> None:
    database, queries = _packed(40, 8, 0), _packed(5, 8, 1)  # 8 bits over 40 items: many ties
    distances, ids = sorted_search(build_index("flat", database, SETTINGS), queries, 40)
    expected_ids, expected_distances = hamming.rank(queries, database, 40, bits=8)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(distances, expected_distances)
    assert distances.dtype == np.int32


def test_multihash_misses_come_last_with_the_missing_distance() -> None:
    # 16 bits in 2 tables with no flips: only items sharing a whole 8-bit substring are candidates
    database, queries = _packed(30, 16, 2), _packed(4, 16, 3)
    distances, ids = sorted_search(build_index("multihash", database, SETTINGS), queries, 30)
    exact = hamming.hamming_distances(queries, database, bits=16)
    for row in range(len(queries)):
        found = ids[row] >= 0
        assert found.sum() < 30 and not found[np.argmin(found):].any()  # misses only at the end
        np.testing.assert_array_equal(distances[row][found], exact[row, ids[row][found]])
        assert np.all(distances[row][~found] == MISSING_DISTANCE)
        assert list(zip(distances[row][found], ids[row][found])) == sorted(zip(distances[row][found], ids[row][found]))


@pytest.mark.parametrize("mode", sorted(INDEX_MODES))
def test_write_read_round_trip(tmp_path, mode: str) -> None:
    database, queries = _packed(50, 32, 4), _packed(3, 32, 5)
    index = build_index(mode, database, SETTINGS)
    write_index(index, tmp_path / "index.faiss")
    ef_search = 16 if mode == "hnsw" else None
    for before, after in zip(sorted_search(index, queries, 10, ef_search),
                             sorted_search(read_index(tmp_path / "index.faiss"), queries, 10, ef_search)):
        np.testing.assert_array_equal(before, after)
