"""Binary codes: sign outputs -> packed bits, Hamming distances, and ranking with a stated tie rule.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4 / docs/method.md §4: database and query codes are
``sign()`` of the network output and the database is ranked by Hamming distance. Distances are
integers 0..bits, so ties are frequent; the reference breaks them with numpy's unstable argsort,
i.e. arbitrarily. hhlib states one rule and holds it everywhere (``rank``, every metric, the
exact mode of :class:`hhlib.index.HammingIndex`):

    TIE_RULE: database items are ordered by the key (Hamming distance, database index): equal
    distances keep database order, which is exactly what a stable sort of the distances gives.

Codes are stored as packed bits (``np.packbits``, 8 bits per byte, big-endian bit order, the
layout faiss binary indexes use); the kernels view them as 64-bit words and use popcount. Ranking
is a counting sort over the bits + 1 possible distances (two linear passes over the database per
query, no comparison sort), which yields the tie rule by construction.
"""

from __future__ import annotations

import os

import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

ZERO_RULE = (
    "an output > 0 is +1 (bit 1); every other output, an exact 0 included, is -1 (bit 0): the same "
    "rule reads {-1, +1}, {0, 1} and bool codes"
)

TIE_RULE = (
    "database items are ranked by (Hamming distance, database index): equal distances keep "
    "database order, as a stable sort of the distances does"
)

try:
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's default OpenMP layer shares the OpenMP runtime with torch: its first parallel call
        # resets torch's thread count (measured: 1 -> 2), so a run that evaluates mid-training would
        # train on with other threads than a run resumed in a fresh process. The workqueue layer has
        # its own threads and leaves torch's alone (tests/test_determinism.py).
        numba.config.THREADING_LAYER = "workqueue"
    from llvmlite import ir as _llvm_ir
    from numba import njit, prange
    from numba.core import types as _nb_types
    from numba.extending import intrinsic as _intrinsic

    HAVE_NUMBA = True

    @_intrinsic
    def _ctpop64(typingctx: Any, value: Any) -> Any:
        """LLVM ``ctpop`` on a uint64: one POPCNT instruction on x86-64 / CNT on arm64."""
        signature = _nb_types.uint64(_nb_types.uint64)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return builder.ctpop(args[0])

        return signature, codegen

    @_intrinsic
    def _cttz64(typingctx: Any, value: Any) -> Any:
        """LLVM ``cttz`` on a non-zero uint64: one TZCNT/BSF instruction."""
        signature = _nb_types.uint64(_nb_types.uint64)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return builder.cttz(args[0], _llvm_ir.Constant(_llvm_ir.IntType(1), 1))

        return signature, codegen

    @njit(inline="always", cache=True)
    def popcount64(value: np.uint64) -> int:
        """Number of set bits of one uint64 (numba-compiled)."""
        return _ctpop64(value)

    @njit(inline="always", cache=True)
    def trailing_zeros64(value: np.uint64) -> int:
        """Index of the lowest set bit of a non-zero uint64 (numba-compiled)."""
        return _cttz64(value)

except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False
    numba = None
    prange = range
    warnings.warn(
        "numba is not installed: hhlib.hamming and hhlib.metrics run their kernels as plain Python, "
        "which is exact but orders of magnitude slower; install numba (see requirements.txt)",
        RuntimeWarning,
        stacklevel=2,
    )

    def njit(*args: Any, **kwargs: Any) -> Any:
        """No-op stand-in for ``numba.njit`` so the kernels stay importable and exact."""
        if args and callable(args[0]):
            return args[0]
        return lambda function: function

    def popcount64(value: Any) -> int:
        """Number of set bits of one 64-bit word (pure Python)."""
        return int(value).bit_count()

    def trailing_zeros64(value: Any) -> int:
        """Index of the lowest set bit of a non-zero 64-bit word (pure Python)."""
        value = int(value)
        return (value & -value).bit_length() - 1


SERIAL_WORK = 1 << 21  # below this many (query, item) pairs a kernel runs on the calling thread


@contextmanager
def kernel_threads(work: int) -> Iterator[None]:
    """Run small kernels single-threaded: waking the worker pool costs more than the work.

    On a loaded machine a parallel region waits for every worker to be scheduled (measured: tens
    of ms per call for a 2 x 4 problem), so below ``SERIAL_WORK`` pairs the numba pool is set to
    one thread for the calling thread only, and restored afterwards.
    """
    if not HAVE_NUMBA or work >= SERIAL_WORK:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _to_numpy(array: Any, name: str) -> np.ndarray:
    """Return a numpy view/copy of a numpy array, torch tensor or nested sequence."""
    if hasattr(array, "detach") and hasattr(array, "cpu"):  # torch.Tensor without importing torch
        tensor = array.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype.itemsize < 4:  # float16 / bfloat16
            tensor = tensor.float()
        return tensor.numpy()
    result = np.asarray(array)
    if result.dtype == object:
        raise ValueError(f"{name} has dtype object: pass a numeric numpy array or torch tensor")
    return result


def signs(outputs: Any) -> Any:
    """Binary codes of network outputs under ``ZERO_RULE``: +1 where > 0, -1 elsewhere (0 included).

    Args:
        outputs: (N, bits) float tensor or array (logits or tanh outputs).

    Returns:
        The same shape and type (torch or numpy), float32 values in {-1, +1}.
    """
    if isinstance(outputs, np.ndarray):
        return np.where(outputs > 0, 1.0, -1.0).astype(np.float32)
    import torch

    return torch.where(outputs > 0, 1.0, -1.0).to(torch.float32)


def n_bytes(bits: int) -> int:
    """Bytes per packed code of ``bits`` bits (``ceil(bits / 8)``)."""
    return (int(bits) + 7) // 8


def pack_codes(codes: Any, bits: int | None = None, *, name: str = "codes") -> np.ndarray:
    """Pack binary codes into bits, 8 per byte (the layout of ``np.packbits`` and faiss).

    A value becomes bit 1 when it is > 0 and bit 0 otherwise (``ZERO_RULE``), so network
    outputs, {-1, +1}, {0, 1} and bool codes all map the same way (an exact 0 reads as -1), as in
    :func:`signs`, which the encoders use.

    Args:
        codes: (N, bits) float/int/bool codes (numpy or torch), or (N, ceil(bits/8)) uint8 codes
            that are already packed, which is recognised only when ``bits`` is given and the
            width equals ``ceil(bits / 8)`` (a uint8 array of width ``bits`` is read as {0, 1}
            values). A 1-D array is one code.
        bits: code length; None = the width of ``codes``.
        name: what to call the argument in error messages.

    Returns:
        (N, ceil(bits/8)) uint8, big-endian bit order, padding bits of the last byte zero.

    Raises:
        ValueError: not 1-D/2-D, non-finite values, or a width that matches neither ``bits``
            nor ``ceil(bits/8)``.
    """
    array = _to_numpy(codes, name)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, bits); got shape {array.shape}: reshape to (N, bits)")
    width = array.shape[1]
    if bits is not None:
        bits = int(bits)
        if bits <= 0:
            raise ValueError(f"bits must be positive; got {bits}: pass the code length, e.g. bits=64")
        if array.dtype == np.uint8 and width == n_bytes(bits) and width != bits:
            packed = np.ascontiguousarray(array)
            if bits % 8:  # clear padding bits so they never add to a distance
                packed = packed.copy()
                packed[:, -1] &= np.uint8((0xFF << (8 - bits % 8)) & 0xFF)
            return packed
        if width != bits:
            raise ValueError(
                f"{name} have width {width} but bits={bits}: pass (N, {bits}) unpacked codes "
                f"or (N, {n_bytes(bits)}) packed uint8 codes"
            )
    if width == 0:
        raise ValueError(f"{name} have 0 bits: pass (N, bits) codes with bits >= 1")
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf: check the model outputs before encoding")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} have dtype {array.dtype}: pass float, int or bool codes")
    return np.packbits(array > 0, axis=1)


def unpack_codes(packed: np.ndarray, bits: int, *, signed: bool = True) -> np.ndarray:
    """Unpack codes made by :func:`pack_codes`.

    Args:
        packed: (N, ceil(bits/8)) uint8.
        bits: code length.
        signed: True -> float32 in {-1, +1}; False -> uint8 in {0, 1}.

    Returns:
        (N, bits) codes.

    Raises:
        ValueError: ``packed`` is not (N, ceil(bits/8)) uint8.
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != n_bytes(bits):
        raise ValueError(
            f"packed codes must be (N, {n_bytes(bits)}) uint8 for bits={bits}; got {packed.dtype} "
            f"{packed.shape}: pass the output of pack_codes(codes, bits={bits})"
        )
    unpacked = np.unpackbits(packed, axis=1, count=bits)
    if signed:
        return unpacked.astype(np.float32) * 2.0 - 1.0
    return unpacked


def as_words(packed: np.ndarray) -> np.ndarray:
    """View packed codes as 64-bit words for the popcount kernels (zero-padded to 8-byte rows).

    Args:
        packed: (N, B) uint8 packed codes (or any (N, B) uint8 bitset).

    Returns:
        (N, ceil(B/8)) uint64, C-contiguous; zero padding adds nothing to XOR popcounts.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n_rows, width = packed.shape
    n_words = max(1, (width + 7) // 8)
    if width == n_words * 8:
        return packed.view(np.uint64).reshape(n_rows, n_words)
    padded = np.zeros((n_rows, n_words * 8), dtype=np.uint8)
    padded[:, :width] = packed
    return padded.view(np.uint64).reshape(n_rows, n_words)


def pack_pair(
    query_codes: Any, database_codes: Any, bits: int | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pack query and database codes and check that they have the same length.

    Args:
        query_codes: (Q, bits) codes or (Q, ceil(bits/8)) packed uint8 (with ``bits``).
        database_codes: (N, bits) codes or (N, ceil(bits/8)) packed uint8 (with ``bits``).
        bits: code length; None = the width of the unpacked codes.

    Returns:
        (packed queries (Q, nb) uint8, packed database (N, nb) uint8, bits).

    Raises:
        ValueError: empty inputs or different code lengths.
    """
    query = _to_numpy(query_codes, "query_codes")
    database = _to_numpy(database_codes, "database_codes")
    if bits is None:
        query_bits = query.shape[-1] if query.ndim else 0
        database_bits = database.shape[-1] if database.ndim else 0
        if query_bits != database_bits:
            raise ValueError(
                f"query codes have {query_bits} bits but database codes have {database_bits}: encode both "
                "with the same model, or pass bits=... when one of them is already packed uint8"
            )
        bits = query_bits
    packed_query = pack_codes(query, bits, name="query_codes")
    packed_database = pack_codes(database, bits, name="database_codes")
    if packed_query.shape[0] == 0:
        raise ValueError("query_codes is empty: pass at least one query code")
    if packed_database.shape[0] == 0:
        raise ValueError("database_codes is empty: pass at least one database code")
    return packed_query, packed_database, int(bits)


@njit(parallel=True, cache=True)
def _distance_matrix(query_words: np.ndarray, database_words: np.ndarray) -> np.ndarray:
    n_query, n_words = query_words.shape
    n_database = database_words.shape[0]
    out = np.empty((n_query, n_database), dtype=np.int32)
    for qi in prange(n_query):
        for j in range(n_database):
            distance = 0
            for w in range(n_words):
                distance += popcount64(query_words[qi, w] ^ database_words[j, w])
            out[qi, j] = distance
    return out


def hamming_distances(query_codes: Any, database_codes: Any, bits: int | None = None) -> np.ndarray:
    """Dense Hamming distance matrix (for small inputs; the metrics never form it).

    Args:
        query_codes: (Q, bits) codes, or packed (Q, ceil(bits/8)) uint8 with ``bits``.
        database_codes: (N, bits) codes, or packed (N, ceil(bits/8)) uint8 with ``bits``.
        bits: code length; None = the width of the unpacked codes.

    Returns:
        (Q, N) int32 distances in 0..bits (memory: 4 * Q * N bytes).

    Raises:
        ValueError: empty inputs or different code lengths.
    """
    packed_query, packed_database, _ = pack_pair(query_codes, database_codes, bits)
    with kernel_threads(packed_query.shape[0] * packed_database.shape[0]):
        return _distance_matrix(as_words(packed_query), as_words(packed_database))


@njit(cache=True)
def _key_histogram(
    query_row: np.ndarray,
    database_words: np.ndarray,
    query_label_row: np.ndarray,
    database_labels: np.ndarray,
    keys: np.ndarray,
    n_keys: int,
) -> np.ndarray:
    """Pass 1 of the counting sort: every item's key and the histogram of the keys.

    keys[j] = 2 * Hamming distance + (1 if item j shares a label with the query, else 0); with
    0 label words (plain ranking) keys are 2 * distance.

    The key loops have no loop-carried dependency (so they pipeline); the histogram is then taken
    over the key bytes with eight interleaved sub-histograms, which breaks the store-to-load
    dependency between consecutive items in the same bin (the usual histogram bottleneck).
    """
    n_database = database_words.shape[0]
    if query_row.shape[0] == 1 and query_label_row.shape[0] == 1:
        # the common case (codes <= 64 bits, <= 64 classes) with the word loops unrolled
        code = query_row[0]
        label = query_label_row[0]
        for j in range(n_database):
            keys[j] = 2 * popcount64(code ^ database_words[j, 0]) + ((label & database_labels[j, 0]) != 0)
    else:
        # one simple loop per code word and per label word (loop interchange): each pipelines,
        # where a per-item loop over a few words does not; label words the query lacks are skipped
        code = query_row[0]
        for j in range(n_database):
            keys[j] = 2 * popcount64(code ^ database_words[j, 0])
        for w in range(1, query_row.shape[0]):
            code = query_row[w]
            for j in range(n_database):
                keys[j] += 2 * popcount64(code ^ database_words[j, w])
        for w in range(query_label_row.shape[0]):
            label = query_label_row[w]
            if label == 0:
                continue
            for j in range(n_database):
                keys[j] |= (label & database_labels[j, w]) != 0
    partial = np.zeros((8, n_keys), dtype=np.int64)
    n_unrolled = n_database - n_database % 8
    for j in range(0, n_unrolled, 8):
        for lane in range(8):
            partial[lane, keys[j + lane]] += 1
    for j in range(n_unrolled, n_database):
        partial[0, keys[j]] += 1
    histogram = np.zeros(n_keys, dtype=np.int64)
    for lane in range(8):
        for key in range(n_keys):
            histogram[key] += partial[lane, key]
    return histogram


@njit(cache=True)
def _scatter_top(keys: np.ndarray, counts: np.ndarray, needed: int, order: np.ndarray) -> None:
    """Pass 2 of the counting sort: order[p] = database index at 0-based rank p, for p < needed.

    counts[d] = items at distance d (keys >> 1 = distance). Walking the database in index order
    and placing item j at start[d] + (items of distance d seen so far) is the tie rule. Only
    items at distance <= the bin holding rank ``needed`` can be placed; they are found 64 keys at
    a time as a bit mask (a branch-free compare the compiler vectorises) and visited by
    trailing-zero count, which avoids a mispredicted branch per item.
    """
    n_bins = counts.shape[0]
    start = np.empty(n_bins, dtype=np.int64)
    total = 0
    last_bin = n_bins - 1
    for d in range(n_bins):
        start[d] = total
        total += counts[d]
        if total >= needed:
            last_bin = d
            break
    limit = 2 * last_bin + 1  # largest key (2 * distance + relevant) that can be placed
    n_database = keys.shape[0]
    n_blocks = n_database // 64
    placed = 0
    for block in range(n_blocks):
        base = block * 64
        mask = np.uint64(0)
        for lane in range(64):
            mask |= np.uint64(keys[base + lane] <= limit) << np.uint64(lane)
        while mask != 0:
            j = base + trailing_zeros64(mask)
            mask &= mask - np.uint64(1)
            distance = keys[j] >> 1
            position = start[distance]
            start[distance] += 1
            if position < needed:
                order[position] = j
                placed += 1
        if placed == needed:
            return
    for j in range(n_blocks * 64, n_database):
        distance = keys[j] >> 1
        if distance > last_bin:
            continue
        position = start[distance]
        start[distance] += 1
        if position < needed:
            order[position] = j


@njit(parallel=True, cache=True)
def _counting_sort_rank(
    query_words: np.ndarray, database_words: np.ndarray, n_bins: int, k: int, key_dtype_probe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_query = query_words.shape[0]
    n_database = database_words.shape[0]
    no_labels = np.zeros((1, 0), dtype=np.uint64)
    no_database_labels = np.zeros((n_database, 0), dtype=np.uint64)
    indices = np.empty((n_query, k), dtype=np.int64)
    distances = np.empty((n_query, k), dtype=np.int32)
    for qi in prange(n_query):
        keys = np.empty(n_database, dtype=key_dtype_probe.dtype)
        histogram = _key_histogram(query_words[qi], database_words, no_labels[0], no_database_labels, keys, 2 * n_bins)
        counts = histogram[0::2].copy()
        _scatter_top(keys, counts, k, indices[qi])
        for p in range(k):
            distances[qi, p] = keys[indices[qi, p]] >> 1
    return indices, distances


def key_dtype(bits: int) -> type:
    """Smallest unsigned dtype that holds 2 * bits + 1 (the per-item key of the counting sort)."""
    return np.uint8 if 2 * bits + 1 <= 255 else np.uint16 if 2 * bits + 1 <= 65535 else np.uint32


def rank(
    query_codes: Any, database_codes: Any, k: int | None = None, bits: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank the database for each query by (Hamming distance, database index): see ``TIE_RULE``.

    A counting sort over the bits + 1 distances: two passes over the database per query,
    parallel over queries, no comparison sort.

    Args:
        query_codes: (Q, bits) codes, or packed (Q, ceil(bits/8)) uint8 with ``bits``.
        database_codes: (N, bits) codes, or packed (N, ceil(bits/8)) uint8 with ``bits``.
        k: how many items to return per query; None = all N (memory: 12 * Q * k bytes).
        bits: code length; None = the width of the unpacked codes.

    Returns:
        (indices (Q, k) int64 database positions, distances (Q, k) int32), best first.

    Raises:
        ValueError: empty inputs, different code lengths, or k <= 0.
    """
    packed_query, packed_database, bits = pack_pair(query_codes, database_codes, bits)
    n_database = packed_database.shape[0]
    k = _check_k(k, n_database, "k")
    probe = np.zeros(1, dtype=key_dtype(bits))
    with kernel_threads(packed_query.shape[0] * n_database):
        return _counting_sort_rank(as_words(packed_query), as_words(packed_database), bits + 1, k, probe)


def _check_k(k: int | None, n_database: int, name: str) -> int:
    """Validate a cut-off: None -> n_database; an int in 1.. is clipped to n_database."""
    if k is None:
        return n_database
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        else:
            raise ValueError(f"{name} must be a positive int or None (= all); got {k!r}: pass e.g. {name}=5000")
    if k <= 0:
        raise ValueError(f"{name} must be a positive int or None (= all); got {k}: pass None for the whole database")
    return int(min(int(k), n_database))
