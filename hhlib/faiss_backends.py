"""The faiss binary indexes behind :class:`hhlib.index.HammingIndex`: one builder per mode, sorted search, file I/O.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4 ranks the database by Hamming distance; this module
holds the faiss side of that ranking (the modes are described in :mod:`hhlib.index`): ``IndexBinaryFlat``
(the on-disk/interop index of the exact mode), ``IndexBinaryHNSW`` and ``IndexBinaryMultiHash``
(Norouzi et al. 2012). faiss is imported on first use: exact search and the metrics do not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

MISSING_DISTANCE = np.iinfo(np.int32).max  # faiss's distance for "no result"


def import_faiss() -> Any:
    """The faiss module, imported lazily.

    Raises:
        ImportError: faiss is not installed (names the package to install).
    """
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - faiss-cpu is a requirement
        raise ImportError("faiss is not installed: pip install faiss-cpu (see requirements.txt)") from error
    return faiss


def _build_flat(dimension: int, settings: dict[str, int]) -> Any:
    return import_faiss().IndexBinaryFlat(dimension)


def _build_hnsw(dimension: int, settings: dict[str, int]) -> Any:
    index = import_faiss().IndexBinaryHNSW(dimension, settings["hnsw_neighbors"])
    index.hnsw.efConstruction = settings["hnsw_ef_construction"]
    return index


def _build_multihash(dimension: int, settings: dict[str, int]) -> Any:
    tables = settings["multihash_tables"]
    index = import_faiss().IndexBinaryMultiHash(dimension, tables, dimension // tables)
    index.nflip = settings["multihash_flips"]
    return index


# mode -> builder(dimension in bits, settings) of an empty faiss binary index
INDEX_MODES: dict[str, Callable[[int, dict[str, int]], Any]] = {
    "flat": _build_flat,
    "hnsw": _build_hnsw,
    "multihash": _build_multihash,
}


def build_index(mode: str, packed_codes: np.ndarray, settings: dict[str, int]) -> Any:
    """A faiss binary index of ``mode`` holding the codes.

    Args:
        mode: a key of :data:`INDEX_MODES`.
        packed_codes: (N, n_bytes) uint8 packed codes (faiss indexes whole bytes: dimension = 8 * n_bytes).
        settings: the HammingIndex settings (hnsw_neighbors, hnsw_ef_construction, multihash_tables, multihash_flips).

    Returns:
        The filled faiss index.
    """
    index = INDEX_MODES[mode](8 * packed_codes.shape[1], settings)
    index.add(packed_codes)
    return index


def sorted_search(
    index: Any, packed_queries: np.ndarray, k: int, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """faiss top-k search with each row sorted by (distance, database position), misses last.

    Args:
        index: a faiss binary index.
        packed_queries: (Q, n_bytes) uint8.
        k: results per query.
        ef_search: HNSW search beam width, raised to k when smaller; None for the other indexes.

    Returns:
        (distances (Q, k) int32, ids (Q, k) int64); a missing result is id -1 with distance
        :data:`MISSING_DISTANCE`.
    """
    if ef_search is not None:
        index.hnsw.efSearch = max(ef_search, k)
    distances, ids = index.search(packed_queries, k)
    distances = np.where(ids < 0, MISSING_DISTANCE, distances).astype(np.int32)
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), distances), axis=1)
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(ids, order, axis=1)


def write_index(index: Any, path: str | Path) -> None:
    """Write a faiss binary index to ``path``."""
    import_faiss().write_index_binary(index, str(path))


def read_index(path: str | Path) -> Any:
    """Read a faiss binary index written by :func:`write_index`."""
    return import_faiss().read_index_binary(str(path))
