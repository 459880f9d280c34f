"""One-call retrieval report: every metric of docs/method.md §4 from one pass over the queries.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4.1: mAP@k over the Hamming ranking (k = all for
CIFAR-10, 5000 for NUS-WIDE and MS-COCO, 1000 for ImageNet-100), precision-recall curves,
precision@N and precision within Hamming radius 2. The trainer and the notebooks call
:func:`evaluate`; the issue-6 API names :func:`mean_average_precision` and :func:`tie_aware_map`
are importable from here too. The metric definitions, the tie rule and the memory bound are in
:mod:`hhlib.metrics` and :mod:`hhlib.hamming`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hhlib.hamming import TIE_RULE
from hhlib.metrics import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RADIUS,
    _check_radius,
    compute_ranking_summary,
    mean_average_precision,
    precision_at_n,
    precision_recall_curve,
    precision_within_radius,
    prepare_inputs,
    tie_aware_map,
)

__all__ = [
    "DEFAULT_PRECISION_AT_N",
    "evaluate",
    "mean_average_precision",
    "precision_at_n",
    "precision_recall_curve",
    "precision_within_radius",
    "tie_aware_map",
]

# P@N points of the usual precision@N curves (HashNet/DPSH figures go 100..1000; 5000 = NUS-WIDE's k)
DEFAULT_PRECISION_AT_N = (1, 10, 100, 500, 1000, 2000, 5000)


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON-ready list: NaN -> None."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def evaluate(
    query_codes: Any,
    database_codes: Any,
    query_labels: Any,
    database_labels: Any,
    topk: int | None = None,
    *,
    bits: int | None = None,
    precision_at: Sequence[int] = DEFAULT_PRECISION_AT_N,
    radius: int = DEFAULT_RADIUS,
    tie_aware: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Compute mAP@k, tie-aware mAP@k, P@N, precision within a radius and the PR curve at once.

    Args:
        query_codes: (Q, bits) codes: float sign outputs, {-1,+1}, {0,1} or bool (numpy or
            torch), or (Q, ceil(bits/8)) packed uint8 together with ``bits``.
        database_codes: (N, bits) codes in any of the same forms.
        query_labels: (Q, C) multi-hot; relevant = shares at least one label.
        database_labels: (N, C) multi-hot.
        topk: mAP cut-off k; None = all N (CIFAR-10's mAP@all); clipped to N.
        bits: code length; needed only for packed uint8 codes.
        precision_at: the N of precision@N; each is clipped to the database size.
        radius: Hamming radius of the hash-lookup precision, default 2 (docs/method.md §4).
        tie_aware: also compute the tie-aware mAP (cheap: from the distance histograms).
        chunk_size: queries per kernel call (memory per chunk: chunk x (bits+1) x 16 bytes).

    Returns:
        A JSON-serialisable dict::

            map                        mAP@k, ties by database index (hhlib.hamming.TIE_RULE)
            map_tie_aware              expected mAP@k over orderings of tied items (None if not asked)
            topk                       the k used (int, N for "all")
            precision_at_n             {"n": [...], "precision": [...]} (n as given, clipped to N)
            precision_within_radius    mean precision within ``radius`` (empty result = 0)
            mean_returned_within_radius
            radius
            pr_curve                   {"radius": [0..bits], "precision": [...], "recall": [...],
                                        "mean_returned": [...]} (precision None where no query
                                        retrieves anything)
            n_query, n_database, bits, tie_rule

    Raises:
        ValueError: empty inputs, code length mismatch, label rows != code rows, label widths
            differ, topk <= 0, a precision_at N <= 0 or a negative radius.
    """
    inputs = prepare_inputs(query_codes, database_codes, query_labels, database_labels, bits)
    radius = _check_radius(radius, inputs.bits)
    summary = compute_ranking_summary(
        inputs, topk, precision_at=tuple(precision_at), exact=True, tie_aware=tie_aware, chunk_size=chunk_size
    )
    tie_aware_value = None
    if summary.tie_aware_average_precision is not None:
        tie_aware_value = float(np.mean(summary.tie_aware_average_precision))
    return {
        "map": float(np.mean(summary.average_precision)),
        "map_tie_aware": tie_aware_value,
        "topk": int(summary.topk),
        "precision_at_n": {
            "n": [int(n) for n in np.atleast_1d(np.asarray(precision_at))],
            "precision": _floats(summary.precision_at_n),
        },
        "precision_within_radius": float(summary.radius_precision_or_zero[radius]),
        "mean_returned_within_radius": float(summary.radius_mean_returned[radius]),
        "radius": radius,
        "pr_curve": {
            "radius": list(range(inputs.bits + 1)),
            "precision": _floats(summary.radius_precision),
            "recall": _floats(summary.radius_recall),
            "mean_returned": _floats(summary.radius_mean_returned),
        },
        "n_query": inputs.n_query,
        "n_database": inputs.n_database,
        "bits": inputs.bits,
        "tie_rule": TIE_RULE,
    }
