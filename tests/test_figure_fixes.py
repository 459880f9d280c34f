"""The figures and tables as a reader sees them: gallery queries and tie notes, evaluations drawn as
points, axis names, the split-count legend beside the bars, and the narrow display table."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from hhlib import retrieval, visualize

# 4 queries, 6 database items, 4-bit codes; labels of 3 classes
QUERY_CODES = np.array([[1, 1, 1, 1], [1, 1, -1, -1], [-1, -1, -1, -1], [1, -1, 1, -1]])
DATABASE_CODES = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, -1, -1], [-1, -1, -1, 1], [1, 1, 1, 1]])
QUERY_LABELS = np.eye(3)[[0, 1, 2, 0]]
DATABASE_LABELS = np.eye(3)[[0, 0, 0, 1, 1, 0]]


def brute_force_top(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    distances = (QUERY_CODES[q] != DATABASE_CODES).sum(axis=1)
    order = np.lexsort((np.arange(len(distances)), distances))[:k]
    return order, distances[order]


def test_gallery_queries_alternate_best_and_worst_with_exact_ties():
    gallery = retrieval.gallery_queries(QUERY_CODES, DATABASE_CODES, QUERY_LABELS, DATABASE_LABELS, k=2, count=3)
    # top 2 and relevant among them: q0 -> items 0, 1 (class 0, like q0): 2; q1 -> items 2 (d=1), 0 (d=2): 0;
    # q2 -> items 3, 4 (class 1, q2 is class 2): 0; q3 -> items 2 (d=1), 0 (d=2): 2. Best q0, worst q1, then q3.
    assert gallery.query_positions.tolist() == [0, 1, 3]
    assert gallery.relevant.tolist() == [2, 0, 2]
    for row, q in enumerate(gallery.query_positions):
        neighbours, distances = brute_force_top(q, 2)
        assert gallery.neighbours[row].tolist() == neighbours.tolist()
        assert gallery.distances[row].tolist() == distances.tolist()
        every = (QUERY_CODES[q] != DATABASE_CODES).sum(axis=1)
        assert gallery.tie_counts[row] == (every == distances[0]).sum()
    assert gallery.tie_counts.tolist() == [3, 1, 1]  # q0: items 0, 1, 5 at d=0; q1 and q3: item 2 alone at d=1


def test_gallery_queries_errors():
    with pytest.raises(ValueError, match="count=0 and k=2 must be >= 1"):
        retrieval.gallery_queries(QUERY_CODES, DATABASE_CODES, QUERY_LABELS, DATABASE_LABELS, k=2, count=0)


def _items(labels):
    return [(torch.zeros(3, 8, 8), torch.tensor(row, dtype=torch.float32), i) for i, row in enumerate(labels)]


def test_gallery_rows_say_relevant_count_and_ties():
    gallery = retrieval.gallery_queries(QUERY_CODES, DATABASE_CODES, QUERY_LABELS, DATABASE_LABELS, k=2, count=2)
    fig = visualize.retrieval_gallery(_items(QUERY_LABELS), _items(DATABASE_LABELS), gallery.query_positions,
                                      gallery.neighbours, gallery.distances, ["a", "b", "c"], gallery.tie_counts)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [axes[r, 0].get_xlabel() for r in range(2)] == ["2/2 relevant", "0/2 relevant"]
    assert axes[0, 1].get_xlabel() == "3 database items at d=0: the first 2 in database order shown (ties)"
    assert [axes[0, c].get_title() for c in (1, 2)] == ["d=0", "d=0"]
    with pytest.raises(ValueError, match="tie_counts has 1 entries for 2 queries"):
        visualize.retrieval_gallery(_items(QUERY_LABELS), _items(DATABASE_LABELS), [0, 1], gallery.neighbours,
                                    gallery.distances, tie_counts=[3])


def test_tie_note_when_every_tied_item_is_shown():
    assert visualize._tie_note(np.array([1, 1, 3]), 2) == "all 2 database items at d=1 shown"
    assert visualize._tie_note(np.array([1, 3, 3]), 1) == "the only database item at d=1"


def test_training_curves_draw_evaluations_as_points_with_named_axes():
    history = [{"epoch": e, "loss": 1.0 / e} for e in range(1, 5)]
    history[1]["map"], history[3]["map"] = 0.4, 0.6
    fig = visualize.training_curves({16: [history, history]}, metric_label="query mAP@all")
    loss_ax, map_ax = fig.axes
    assert (loss_ax.get_ylabel(), map_ax.get_ylabel()) == ("training loss", "query mAP@all")
    evaluated = [line for line in map_ax.lines if len(line.get_xdata()) == 2]
    assert evaluated and all(line.get_linestyle() == "None" for line in evaluated)  # no line joins evaluations
    assert evaluated[0].get_xdata().tolist() == [2.0, 4.0] and evaluated[0].get_ydata().tolist() == [0.4, 0.6]
    assert visualize.training_curves({16: history}).axes[1].get_ylabel() == "mAP"


def test_results_bars_and_split_counts_labels_and_legend():
    table = pd.DataFrame({"bits": [16, 16], "loss": ["wml", "dpsh"], "map": [0.5, 0.4]})
    assert visualize.results_bars(table, "loss").axes[0].get_ylabel() == "mAP"
    fig = visualize.split_counts({"query": [10, 10], "train": [50, 50], "database": [500, 500]}, ["x", "y"])
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "split"
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1 - 1  # beside the axes, over no bar


def test_display_table_is_narrow_and_readable():
    frame = pd.DataFrame({"bits": [16, 32], "map": [0.77123, 0.5], "map_per_seed": [[0.7712, 0.7756], [0.5, 0.5]],
                          "paper_map": [None, float("nan")]})
    shown = visualize.display_table(frame)
    assert list(shown.columns) == ["bits", "map", "map per seed", "paper map"]
    assert shown.iloc[0].tolist() == ["16", "0.771", "0.771 / 0.776", "–"]
    assert shown.iloc[1, 3] == "–" and frame.iloc[0, 1] == 0.77123  # input unchanged
