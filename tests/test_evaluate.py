"""Tests for hhlib.evaluate: the one-call report agrees with the individual metrics and is JSON-ready."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hhlib import evaluate as evaluate_module
from hhlib import metrics
from hhlib.evaluate import evaluate, mean_average_precision, tie_aware_map


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    bits, n_classes = 16, 4
    database_labels = (rng.random((60, n_classes)) < 0.3).astype(np.float32)
    query_labels = (rng.random((5, n_classes)) < 0.3).astype(np.float32)
    prototypes = rng.standard_normal((n_classes, bits))
    # codes correlated with labels (so relevant items rank high), quantised to few values -> ties
    database = np.sign(database_labels @ prototypes + 0.8 * rng.standard_normal((60, bits)))
    query = np.tanh(query_labels @ prototypes + 0.8 * rng.standard_normal((5, bits)))  # float outputs
    return query, database, query_labels, database_labels


def test_issue_api_names_are_exported() -> None:
    assert "mean_average_precision" in evaluate_module.__all__
    assert "tie_aware_map" in evaluate_module.__all__
    assert mean_average_precision is metrics.mean_average_precision
    assert tie_aware_map is metrics.tie_aware_map


@pytest.mark.parametrize("topk", [None, 7])
def test_report_matches_individual_metrics(topk) -> None:
    problem = _problem()
    report = evaluate(*problem, topk, precision_at=(1, 10, 100), chunk_size=2)  # chunks of 2 queries
    assert report["map"] == pytest.approx(metrics.mean_average_precision(*problem, topk), abs=1e-15)
    assert report["map_tie_aware"] == pytest.approx(metrics.tie_aware_map(*problem, topk), abs=1e-15)
    assert report["topk"] == (60 if topk is None else topk)
    np.testing.assert_allclose(report["precision_at_n"]["precision"], metrics.precision_at_n(*problem, [1, 10, 100]))
    assert report["precision_at_n"]["n"] == [1, 10, 100]
    precision, returned = metrics.precision_within_radius(*problem, 2)
    assert report["precision_within_radius"] == pytest.approx(precision)
    assert report["mean_returned_within_radius"] == pytest.approx(returned)
    curve = metrics.precision_recall_curve(*problem)
    np.testing.assert_allclose(
        [np.nan if v is None else v for v in report["pr_curve"]["precision"]], curve["precision"], equal_nan=True
    )
    np.testing.assert_allclose(report["pr_curve"]["recall"], curve["recall"])
    assert report["pr_curve"]["radius"] == list(range(17))
    assert (report["n_query"], report["n_database"], report["bits"]) == (5, 60, 16)


def test_report_is_json_serialisable_and_chunk_independent() -> None:
    problem = _problem(1)
    one_chunk = evaluate(*problem, 10)
    many_chunks = evaluate(*problem, 10, chunk_size=1)
    assert json.loads(json.dumps(one_chunk)) == one_chunk
    assert one_chunk["map"] == pytest.approx(many_chunks["map"], abs=1e-15)
    assert one_chunk["map_tie_aware"] == pytest.approx(many_chunks["map_tie_aware"], abs=1e-15)
    assert evaluate(*problem, 10, tie_aware=False)["map_tie_aware"] is None


def test_report_errors() -> None:
    problem = _problem()
    with pytest.raises(ValueError, match="topk must be a positive int"):
        evaluate(*problem, 0)
    with pytest.raises(ValueError, match="radius must be an int >= 0"):
        evaluate(*problem, radius=-1)
    with pytest.raises(ValueError, match="n must be positive"):
        evaluate(*problem, precision_at=(0,))
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        evaluate(*problem, chunk_size=0)
    with pytest.raises(ValueError, match="query_labels has 4 rows but query_codes has 5"):
        evaluate(problem[0], problem[1], problem[2][:4], problem[3])
