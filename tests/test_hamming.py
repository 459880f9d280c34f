"""Tests for hhlib.hamming: packing round trips, distances, and rank() with the stated tie rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hhlib import hamming


def _random_signs(rows: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random((rows, bits)) < 0.5, -1.0, 1.0).astype(np.float32)


def _oracle_distances(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    return (query[:, None, :] != database[None, :, :]).sum(axis=2)


@pytest.mark.parametrize("bits", [1, 7, 16, 64, 70, 130])
def test_pack_unpack_round_trip(bits: int) -> None:
    signs = _random_signs(5, bits)
    packed = hamming.pack_codes(signs)
    assert packed.dtype == np.uint8 and packed.shape == (5, (bits + 7) // 8)
    np.testing.assert_array_equal(hamming.unpack_codes(packed, bits), signs)
    np.testing.assert_array_equal(hamming.unpack_codes(packed, bits, signed=False), (signs > 0).astype(np.uint8))
    np.testing.assert_array_equal(hamming.pack_codes(packed, bits), packed)  # packed input passes through


def test_all_code_forms_pack_alike() -> None:
    signs = _random_signs(4, 16, seed=1)
    expected = hamming.pack_codes(signs)
    tanh_like = signs * np.float32(0.3)
    forms = [
        tanh_like,
        signs.astype(np.int8),
        (signs > 0).astype(np.uint8),  # {0, 1} uint8 of width bits = unpacked
        signs > 0,
        torch.from_numpy(tanh_like),
        torch.from_numpy(signs).to(torch.bfloat16),
        torch.from_numpy(signs > 0),
    ]
    for form in forms:
        np.testing.assert_array_equal(hamming.pack_codes(form), expected)
    assert hamming.pack_codes(np.zeros((1, 8)))[0, 0] == 0  # sign() = 0 reads as -1
    assert hamming.pack_codes(signs[0]).shape == (1, 2)  # 1-D = one code


def test_pack_clears_padding_bits_of_packed_input() -> None:
    packed = np.full((2, 2), 0xFF, dtype=np.uint8)
    cleared = hamming.pack_codes(packed, 12)
    assert cleared[0, 1] == 0xF0 and cleared[0, 0] == 0xFF


def test_pack_errors() -> None:
    with pytest.raises(ValueError, match="width 16 but bits=8"):
        hamming.pack_codes(np.ones((2, 16)), 8)
    with pytest.raises(ValueError, match="NaN or inf"):
        hamming.pack_codes(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="must be 2-D"):
        hamming.pack_codes(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="bits must be positive"):
        hamming.pack_codes(np.ones((2, 2)), 0)
    with pytest.raises(ValueError, match="packed codes must be"):
        hamming.unpack_codes(np.ones((2, 3), np.uint8), 16)


def test_pair_errors() -> None:
    with pytest.raises(ValueError, match="query codes have 16 bits but database codes have 8"):
        hamming.pack_pair(np.ones((2, 16)), np.ones((3, 8)))
    with pytest.raises(ValueError, match="pass bits="):  # packed database without bits
        hamming.pack_pair(np.ones((2, 16)), np.ones((3, 2), np.uint8))
    with pytest.raises(ValueError, match="query_codes is empty"):
        hamming.pack_pair(np.ones((0, 16)), np.ones((3, 16)))
    with pytest.raises(ValueError, match="database_codes is empty"):
        hamming.pack_pair(np.ones((2, 16)), np.ones((0, 16)))
    packed_query, packed_database, bits = hamming.pack_pair(np.ones((2, 16)), np.ones((3, 2), np.uint8), bits=16)
    assert bits == 16 and packed_query.shape == (2, 2) and packed_database.shape == (3, 2)


@pytest.mark.parametrize("bits", [12, 64, 100])
def test_distances_match_bit_comparison(bits: int) -> None:
    query, database = _random_signs(3, bits, 2), _random_signs(9, bits, 3)
    np.testing.assert_array_equal(hamming.hamming_distances(query, database), _oracle_distances(query, database))
    packed = hamming.pack_codes(database)
    np.testing.assert_array_equal(
        hamming.hamming_distances(hamming.pack_codes(query), packed, bits=bits), _oracle_distances(query, database)
    )


@pytest.mark.parametrize("bits", [4, 16, 72])
@pytest.mark.parametrize("k", [None, 1, 5, 40])
def test_rank_equals_stable_argsort(bits: int, k: int | None) -> None:
    """TIE_RULE: (distance, database index) = numpy's stable argsort of the distances."""
    query, database = _random_signs(4, bits, 4), _random_signs(40, bits, 5)
    database[10:20] = database[0]  # force large tie groups
    indices, distances = hamming.rank(query, database, k)
    oracle = _oracle_distances(query, database)
    cut = 40 if k is None else k
    expected = np.argsort(oracle, axis=1, kind="stable")[:, :cut]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(distances, np.take_along_axis(oracle, expected, axis=1))


def test_rank_hand_example_ties_by_index() -> None:
    # distances to the query 0000: items 0..4 -> 2, 1, 2, 0, 1 ; rule -> 3, 1, 4, 0, 2
    query = np.array([[0, 0, 0, 0]])
    database = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    indices, distances = hamming.rank(query, database)
    assert indices.tolist() == [[3, 1, 4, 0, 2]]
    assert distances.tolist() == [[0, 1, 1, 2, 2]]
    assert hamming.rank(query, database, k=100)[0].shape == (1, 5)  # k clipped to N


def test_rank_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be a positive int"):
        hamming.rank(np.ones((1, 8)), np.ones((2, 8)), 0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        hamming.rank(np.ones((1, 8)), np.ones((2, 8)), "all")


def test_key_dtype_grows_with_bits() -> None:
    assert hamming.key_dtype(64) == np.uint8
    assert hamming.key_dtype(127) == np.uint8
    assert hamming.key_dtype(128) == np.uint16
