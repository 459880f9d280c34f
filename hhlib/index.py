"""Retrieval database of binary codes: exact and approximate Hamming search, disk format, re-ranking.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4: retrieval = rank the database by the Hamming
distance of sign() codes. :class:`HammingIndex` holds packed codes with their labels and image ids,
answers top-k queries, saves/loads itself, and offers the DLBHC coarse-to-fine mode (Lin et al.,
"Deep Learning of Binary Hash Codes for Fast Image Retrieval", CVPRW 2015): a Hamming shortlist
re-ranked by the Euclidean distance of real-valued features.

Modes (``INDEX_MODES``):
- ``"flat"`` (default): exact. Results follow :data:`hhlib.hamming.TIE_RULE` (distance, then
  database index) exactly as :func:`hhlib.hamming.rank`, because they ARE ``rank()``: a counting
  sort over the bits + 1 distances. faiss's ``IndexBinaryFlat`` returns the same distances, but
  its heap leaves the order (and, at the k-th distance, the membership) of tied items
  unspecified, so it is kept only as the on-disk/interop index (``faiss_index``).
- ``"hnsw"``: faiss ``IndexBinaryHNSW`` graph search, approximate, for large databases.
- ``"multihash"``: faiss ``IndexBinaryMultiHash`` (multi-index hashing, Norouzi et al. 2012):
  the code is cut into ``multihash_tables`` substrings, each a hash table probed with up to
  ``multihash_flips`` flipped bits, so every item within distance
  tables x (flips + 1) - 1 is a candidate (pigeonhole); farther items may be missed.
Approximate modes return each query's results sorted by (distance, database index); ids of
missing results are -1 with distance ``MISSING_DISTANCE`` (faiss's convention).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hhlib.faiss_backends import INDEX_MODES, MISSING_DISTANCE, build_index, read_index, sorted_search, write_index
from hhlib.hamming import _check_k, _to_numpy, n_bytes, pack_codes, rank

__all__ = ["ARRAYS_FILE", "INDEX_FILE", "INDEX_MODES", "MISSING_DISTANCE", "SETTINGS_FILE", "HammingIndex"]

INDEX_FILE = "index.faiss"
ARRAYS_FILE = "arrays.npz"
SETTINGS_FILE = "index.json"


class HammingIndex:
    """Packed binary codes of a database with labels and image ids, searchable by Hamming distance.

    Args:
        codes: (N, bits) codes (float sign outputs, {-1,+1}, {0,1}, bool; numpy or torch), or
            (N, ceil(bits/8)) packed uint8 together with ``bits``.
        labels: (N, C) multi-hot labels or None.
        image_ids: (N,) ids (ints or strings, e.g. file names); None = 0..N-1.
        bits: code length; None = the width of ``codes``.
        mode: a key of ``INDEX_MODES``: "flat" (exact, tie rule), "hnsw" or "multihash".
        hnsw_neighbors: HNSW graph degree M ("hnsw").
        hnsw_ef_construction: HNSW build beam width ("hnsw").
        hnsw_ef_search: HNSW search beam width, raised to k when smaller ("hnsw").
        multihash_tables: number of substrings/hash tables; None = ceil(bits/8)*8 // 16 ("multihash").
        multihash_flips: bits flipped when probing each table ("multihash").

    Raises:
        KeyError: unknown mode (lists the valid ones).
        ValueError: empty codes, rows of labels/image_ids != rows of codes, bad multihash_tables.
    """

    def __init__(
        self,
        codes: Any,
        labels: Any = None,
        image_ids: Any = None,
        *,
        bits: int | None = None,
        mode: str = "flat",
        hnsw_neighbors: int = 32,
        hnsw_ef_construction: int = 64,
        hnsw_ef_search: int = 128,
        multihash_tables: int | None = None,
        multihash_flips: int = 1,
    ) -> None:
        if mode not in INDEX_MODES:
            raise KeyError(f"unknown index mode {mode!r}: valid modes are {sorted(INDEX_MODES)}")
        array = _to_numpy(codes, "codes")
        if bits is None:
            bits = array.shape[-1] if array.ndim == 2 else 0
        self.codes = pack_codes(array, bits, name="codes")
        self.bits = int(bits)
        n_items = self.codes.shape[0]
        if n_items == 0:
            raise ValueError("codes is empty: build the index from at least one database code")
        self.labels = _checked_labels(labels, n_items)
        self.image_ids = _checked_image_ids(image_ids, n_items)
        multihash_tables = _checked_multihash_tables(multihash_tables, 8 * n_bytes(self.bits))
        self.mode = mode
        self.settings = {
            "hnsw_neighbors": int(hnsw_neighbors),
            "hnsw_ef_construction": int(hnsw_ef_construction),
            "hnsw_ef_search": int(hnsw_ef_search),
            "multihash_tables": int(multihash_tables),
            "multihash_flips": int(multihash_flips),
        }
        self._faiss_index: Any = None

    def __len__(self) -> int:
        """Number of database items."""
        return int(self.codes.shape[0])

    @property
    def faiss_index(self) -> Any:
        """The faiss binary index of this mode, built on first use (codes padded to whole bytes)."""
        if self._faiss_index is None:
            self._faiss_index = build_index(self.mode, self.codes, self.settings)
        return self._faiss_index

    def _pack_queries(self, query_codes: Any) -> np.ndarray:
        array = _to_numpy(query_codes, "query_codes")
        if array.ndim == 1:
            array = array[None, :]
        width = array.shape[-1]
        packed_width = n_bytes(self.bits)
        if array.dtype == np.uint8 and width == packed_width and width != self.bits:
            packed = pack_codes(array, self.bits, name="query_codes")
        elif width == self.bits:
            packed = pack_codes(array, None, name="query_codes")
        else:
            raise ValueError(
                f"query codes have width {width} but the index holds {self.bits}-bit codes: pass (Q, {self.bits}) "
                f"codes or (Q, {packed_width}) packed uint8 from the same model"
            )
        if packed.shape[0] == 0:
            raise ValueError("query_codes is empty: pass at least one query code")
        return packed

    def search(self, query_codes: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k database items per query by Hamming distance.

        Args:
            query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8; a 1-D code is one query.
            k: results per query; clipped to the database size.

        Returns:
            (distances (Q, k) int32, ids (Q, k) int64 database positions), best first. "flat":
            exactly ``hhlib.hamming.rank`` (ties by database index). "hnsw"/"multihash":
            approximate, each row sorted by (distance, position), misses as id -1.

        Raises:
            ValueError: query width differs from the index's, empty queries, or k <= 0.
        """
        packed = self._pack_queries(query_codes)
        k = _check_k(k, len(self), "k")
        if self.mode == "flat":
            ids, distances = rank(packed, self.codes, k, bits=self.bits)
            return distances, ids
        ef_search = self.settings["hnsw_ef_search"] if self.mode == "hnsw" else None
        return sorted_search(self.faiss_index, packed, k, ef_search)

    def retrieve(self, query_code: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k image ids for one query, for retrieval gallery figures.

        Args:
            query_code: (bits,) or (1, bits) code, or packed uint8 of width ceil(bits/8).
            k: number of results; clipped to the database size.

        Returns:
            (image_ids (k,) as given at build time, Hamming distances (k,) int32), best first;
            in approximate modes, misses are dropped.

        Raises:
            ValueError: more than one query, a width mismatch, or k <= 0.
        """
        packed = self._pack_queries(query_code)
        if packed.shape[0] != 1:
            raise ValueError(f"retrieve takes one query code; got {packed.shape[0]}: use search() for a batch")
        distances, ids = self.search(packed, k)
        found = ids[0] >= 0
        return self.image_ids[ids[0][found]], distances[0][found]

    def coarse_to_fine(
        self,
        query_codes: Any,
        query_features: Any,
        database_features: Any,
        shortlist: int,
        k: int,
        *,
        chunk_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """DLBHC search: a Hamming shortlist per query, re-ranked by Euclidean feature distance.

        Args:
            query_codes: (Q, bits) codes or packed uint8.
            query_features: (Q, D) float features of the queries (e.g. ``model.features``).
            database_features: (N, D) float features, rows in the index's order.
            shortlist: candidates taken from the Hamming ranking (this index's mode); clipped to N.
            k: results per query, k <= shortlist.
            chunk_size: queries per step (memory: chunk x shortlist x D x 4 bytes).

        Returns:
            (Euclidean distances (Q, k) float32, ids (Q, k) int64 database positions), nearest
            first; equal feature distances keep the Hamming order.

        Raises:
            ValueError: feature rows/widths that do not match, k > shortlist, or k <= 0.
        """
        query_features = np.asarray(_to_numpy(query_features, "query_features"), dtype=np.float32)
        database_features = np.asarray(_to_numpy(database_features, "database_features"), dtype=np.float32)
        packed = self._pack_queries(query_codes)
        query_features = _checked_features(query_features, database_features, packed.shape[0], len(self))
        shortlist = _check_k(shortlist, len(self), "shortlist")
        k = _check_k(k, len(self), "k")
        if k > shortlist:
            raise ValueError(f"k={k} exceeds shortlist={shortlist}: pass shortlist >= k")
        _, candidates = self.search(packed, shortlist)
        return _rerank_by_features(candidates, query_features, database_features, k, chunk_size)

    def save(self, folder: str | Path) -> Path:
        """Write the index to ``folder``: index.faiss (faiss binary index), arrays.npz, index.json.

        Args:
            folder: directory, created if missing.

        Returns:
            The folder path.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_index(self.faiss_index, folder / INDEX_FILE)
        image_ids = self.image_ids
        if image_ids.dtype == object:
            image_ids = image_ids.astype(str)
        np.savez(
            folder / ARRAYS_FILE,
            codes=self.codes,
            labels=np.zeros((0, 0), np.float32) if self.labels is None else self.labels,
            has_labels=np.array(self.labels is not None),
            image_ids=image_ids,
        )
        (folder / SETTINGS_FILE).write_text(
            json.dumps({"bits": self.bits, "mode": self.mode, **self.settings}, indent=2) + "\n"
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "HammingIndex":
        """Read an index written by :meth:`save`.

        Args:
            folder: the directory given to :meth:`save`.

        Returns:
            The index, with its faiss index read back from index.faiss.

        Raises:
            FileNotFoundError: a file of the folder is missing.
        """
        folder = Path(folder)
        for name in (INDEX_FILE, ARRAYS_FILE, SETTINGS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name} does not exist: save the index with HammingIndex.save({str(folder)!r}) first"
                )
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        with np.load(folder / ARRAYS_FILE) as arrays:
            labels = arrays["labels"] if bool(arrays["has_labels"]) else None
            index = cls(
                arrays["codes"],
                labels,
                arrays["image_ids"],
                bits=settings.pop("bits"),
                mode=settings.pop("mode"),
                **settings,
            )
        index._faiss_index = read_index(folder / INDEX_FILE)
        return index


def _checked_labels(labels: Any, n_items: int) -> np.ndarray | None:
    """``labels`` as (N, C) float32 (None stays None); raises when it has not one row per code."""
    if labels is None:
        return None
    array = np.asarray(_to_numpy(labels, "labels"), dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_items:
        raise ValueError(
            f"labels must be (N, C) with N = {n_items} codes; got shape {array.shape}: "
            "pass one multi-hot row per code"
        )
    return array


def _checked_image_ids(image_ids: Any, n_items: int) -> np.ndarray:
    """``image_ids`` as an (N,) array (None = 0..N-1); raises when it has not one id per code."""
    array = np.arange(n_items) if image_ids is None else np.asarray(_to_numpy(image_ids, "image_ids"))
    if array.ndim != 1 or array.shape[0] != n_items:
        raise ValueError(
            f"image_ids must be (N,) with N = {n_items} codes; got shape {array.shape}: "
            "pass one id per code"
        )
    return array


def _checked_multihash_tables(multihash_tables: int | None, dimension: int) -> int:
    """The number of multihash substrings (None = dimension // 16); each substring must be 1 to 64 bits wide.

    Args:
        multihash_tables: the requested number, or None.
        dimension: the faiss code width in bits (the code length padded to whole bytes).
    """
    if multihash_tables is None:
        multihash_tables = max(1, dimension // 16)
    if not 1 <= multihash_tables <= dimension or dimension // multihash_tables > 64:
        raise ValueError(
            f"multihash_tables={multihash_tables} must lie in [{-(-dimension // 64)}, {dimension}] for "
            f"{dimension}-bit faiss codes: use e.g. {max(1, dimension // 16)}"
        )
    return multihash_tables


def _checked_features(query_features: np.ndarray, database_features: np.ndarray, n_queries: int,
                      n_items: int) -> np.ndarray:
    """The query features as (Q, D) (a 1-D row is one query), checked with the database's (N, D) against Q and N.

    Raises:
        ValueError: rows or widths that do not match (the message names which).
    """
    if query_features.ndim == 1:
        query_features = query_features[None, :]
    if query_features.ndim != 2 or query_features.shape[0] != n_queries:
        raise ValueError(
            f"query_features must be (Q, D) with Q = {n_queries} query codes; got {query_features.shape}: "
            "pass one feature row per query code"
        )
    if database_features.ndim != 2 or database_features.shape[0] != n_items:
        raise ValueError(
            f"database_features must be (N, D) with N = {n_items} indexed items; got "
            f"{database_features.shape}: pass the features of the indexed database, in its order"
        )
    if database_features.shape[1] != query_features.shape[1]:
        raise ValueError(
            f"query features have {query_features.shape[1]} dims but database features have "
            f"{database_features.shape[1]}: extract both with the same model"
        )
    return query_features


def _rerank_by_features(
    candidates: np.ndarray, query_features: np.ndarray, database_features: np.ndarray, k: int, chunk_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's candidates by the Euclidean distance of their features (DLBHC's fine step).

    Args:
        candidates: (Q, S) int64 database positions per query (e.g. a Hamming shortlist), -1 = no candidate.
        query_features: (Q, D) float32.
        database_features: (N, D) float32, rows indexed by the positions in ``candidates``.
        k: results per query, k <= S.
        chunk_size: queries per step (memory: chunk x S x D x 4 bytes).

    Returns:
        (Euclidean distances (Q, k) float32, ids (Q, k) int64), nearest first; equal distances keep
        the candidates' order; missing candidates come last as id -1 with distance inf.
    """
    n_query = candidates.shape[0]
    out_distances = np.empty((n_query, k), dtype=np.float32)
    out_ids = np.empty((n_query, k), dtype=np.int64)
    for begin in range(0, n_query, chunk_size):
        end = min(begin + chunk_size, n_query)
        chunk_ids = candidates[begin:end]
        valid = chunk_ids >= 0
        gathered = database_features[np.where(valid, chunk_ids, 0)]
        differences = gathered - query_features[begin:end, None, :]
        distances = np.sqrt(np.einsum("qsd,qsd->qs", differences, differences))
        distances = np.where(valid, distances, np.inf)
        order = np.argsort(distances, axis=1, kind="stable")[:, :k]
        out_distances[begin:end] = np.take_along_axis(distances, order, axis=1)
        out_ids[begin:end] = np.where(
            np.isfinite(out_distances[begin:end]), np.take_along_axis(chunk_ids, order, axis=1), -1
        )
    return out_distances, out_ids
