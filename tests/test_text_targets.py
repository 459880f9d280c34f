"""Tests of hhlib.text_targets: tokenisation, the heat-kernel kNN graph and the Laplacian-eigenmap target codes."""

from __future__ import annotations

import numpy as np
import pytest

from hhlib import text_targets


def test_tokenize_lowercase_words():
    assert text_targets.tokenize("Python 3.x module, for GTK+!") == ["python", "3", "x", "module", "for", "gtk"]


def test_heat_kernel_graph_against_hand_computation():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    graph = text_targets.heat_kernel_graph(points, num_neighbors=1, sigma=2.0).toarray()
    # 0<->1 (distance 1) are mutual nearest; 2's nearest is 1 (distance 2): symmetrised
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 0] = np.exp(-1 / 8)
    expected[1, 2] = expected[2, 1] = np.exp(-4 / 8)
    np.testing.assert_allclose(graph, expected)


def test_supervised_graph_has_no_edge_across_classes():
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(12, 3)), np.array([0, 1] * 6)
    graph = text_targets.heat_kernel_graph(points, num_neighbors=2, labels=labels).toarray()
    assert np.all(graph[labels[:, None] != labels[None, :]] == 0)
    assert np.all((graph > 0).sum(axis=1) >= 2)


def test_two_clear_clusters_get_opposite_first_bits():
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (10, 2))])
    graph = text_targets.heat_kernel_graph(points, num_neighbors=3)
    codes = text_targets.laplacian_target_codes(graph, bits=2)
    assert codes.shape == (20, 2) and set(np.unique(codes)) == {-1.0, 1.0}
    first = codes[:, 0]
    assert len(set(first[:10])) == 1 and len(set(first[10:])) == 1 and first[0] != first[10]
    assert np.all(codes.sum(axis=0) == 0)  # the median threshold splits every bit in half


def test_tfidf_rows_are_unit_length_and_the_vocabulary_is_the_training_words():
    vectorizer, features = text_targets.tfidf_features(["chess game", "disk tool", "chess tool"])
    assert sorted(vectorizer.vocabulary_) == ["chess", "disk", "game", "tool"]
    np.testing.assert_allclose(np.sqrt(features.multiply(features).sum(axis=1)).A1, 1.0)


def test_errors_name_the_fix():
    points = np.eye(4)
    with pytest.raises(ValueError, match="num_neighbors must be in \\[1, 3\\]"):
        text_targets.heat_kernel_graph(points, num_neighbors=4)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        text_targets.heat_kernel_graph(points, num_neighbors=1, sigma=0)
    with pytest.raises(ValueError, match="one class per row"):
        text_targets.heat_kernel_graph(points, num_neighbors=1, labels=np.zeros(3))
    with pytest.raises(ValueError, match="bits must be in \\[1, 2\\]"):
        text_targets.laplacian_target_codes(text_targets.heat_kernel_graph(points, 1), bits=3)
