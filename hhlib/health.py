"""Health of a trained run's codes: does the model still tell images apart?

A run can end with finite losses yet useless codes: every image mapped to the same code (a
collapsed hash layer, or NaN outputs, whose sign reads as -1 everywhere), or most bits stuck at
one value. Such a run's mAP is not a result: HybridHash (ICMR 2024, arXiv 2405.07524, Sec. 4.2)
ranks the database by Hamming distance, and equal codes give every item the same rank. The
trainer records :func:`code_health` in result.json and metrics.json; the notebooks show it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["code_health"]


def code_health(codes: np.ndarray) -> dict[str, int | bool]:
    """Count the constant bits and the distinct codes of a set of binary codes.

    Args:
        codes: (N, bits) codes in {-1, +1} (any integer or float dtype).

    Returns:
        ``{"constant_bits": bit positions equal over all N codes, "distinct_codes": distinct rows,
        "collapsed": True when all N codes are equal, or when more than half of the bits are
        constant}``. Both thresholds are ours: the first is the failure the trainer must never report
        as a result; the second flags a hash layer that has stopped using most of its bits, which
        no run of the study showed while training normally (a constant bit carries no information).

    Raises:
        ValueError: ``codes`` is not 2-D or empty.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty (N, bits) array, got shape {codes.shape}")
    positive = codes > 0
    constant_bits = int(np.sum(positive.all(axis=0) | (~positive).all(axis=0)))
    distinct_codes = int(len(np.unique(np.packbits(positive, axis=1), axis=0)))
    collapsed = distinct_codes <= 1 or 2 * constant_bits > codes.shape[1]
    return {"constant_bits": constant_bits, "distinct_codes": distinct_codes, "collapsed": collapsed}
