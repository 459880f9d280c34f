"""Tests of hhlib.visualize: each function returns a Figure with the expected axes/artists on tiny inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from pathlib import Path  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from hhlib import visualize  # noqa: E402

NAMES = ["a", "b", "c"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _one_hot(classes, n=3):
    return np.eye(n, dtype=np.float32)[classes]


class _TinyDataset:
    """Items (image (3, 4, 4) normalised, label (C,), index), as hhlib.data.SplitDataset yields."""

    def __init__(self, classes):
        self.labels = _one_hot(classes)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i) / 10), torch.from_numpy(self.labels[i]), i


def test_sample_grid_axes_and_titles():
    images = np.random.default_rng(0).random((5, 3, 8, 8)).astype(np.float32)
    fig = visualize.sample_grid(images, _one_hot([0, 1, 2, 0, 1]), NAMES, ncols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, last one hidden
    assert [ax.get_title() for ax in fig.axes[:5]] == ["a", "b", "c", "a", "b"]
    assert sum(len(ax.images) for ax in fig.axes) == 5


def test_sample_grid_multilabel_title_and_errors():
    labels = np.array([[1, 1, 1]], dtype=np.float32)
    fig = visualize.sample_grid(np.zeros((1, 8, 8, 3)), labels, NAMES)
    assert fig.axes[0].get_title() == "a, b +1"
    with pytest.raises(ValueError, match="one label row per image"):
        visualize.sample_grid(np.zeros((2, 3, 8, 8)), labels, NAMES)
    with pytest.raises(ValueError, match="at least one image"):
        visualize.sample_grid(np.zeros((0, 3, 8, 8)), labels[:0], NAMES)


def test_split_counts_one_bar_per_class_and_split():
    fig = visualize.split_counts({"query": [1, 2, 3], "train": [4, 5, 6]}, NAMES)
    (ax,) = fig.axes
    assert len(ax.patches) >= 6
    heights = sorted(p.get_height() for p in ax.patches if p.get_height() > 0)
    assert heights == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="one count per class"):
        visualize.split_counts({"query": [1, 2]}, NAMES)


def test_label_cooccurrence_values():
    labels = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    fig = visualize.label_cooccurrence(labels, NAMES, normalize=False)
    assert len(fig.axes) == 2  # heatmap + colour bar
    mesh = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 3), [[2, 1, 0], [1, 1, 0], [0, 0, 1]])
    fig = visualize.label_cooccurrence(labels, NAMES)
    np.testing.assert_allclose(np.asarray(fig.axes[0].collections[0].get_array()).reshape(3, 3)[0], [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"\(N, 3\) multi-hot"):
        visualize.label_cooccurrence(labels[:, :2], NAMES)


def test_training_curves_two_panels_one_line_per_bits():
    histories = {
        16: [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.7, "map": 0.4}],
        32: [{"epoch": 1, "loss": 0.8}, {"epoch": 2, "loss": 0.6, "map": 0.5},
             {"epoch": 3, "loss": None, "map": float("nan")}],
    }
    fig = visualize.training_curves(histories)
    loss_ax, map_ax = fig.axes
    assert len([line for line in loss_ax.lines if len(line.get_xdata()) == 2]) == 2
    assert sorted(float(line.get_ydata()[0]) for line in map_ax.lines if len(line.get_xdata())) == [0.4, 0.5]
    with pytest.raises(ValueError, match="metrics.jsonl"):
        visualize.training_curves({16: [{"loss": 1.0}]})


def test_pr_and_precision_at_n_curves():
    curve = {"radius": [0, 1, 2], "precision": [1.0, 0.8, None], "recall": [0.1, 0.5, 1.0]}
    fig = visualize.pr_curves({16: curve, 32: curve})
    (ax,) = fig.axes
    data_lines = [line for line in ax.lines if len(line.get_xdata())]
    assert len(data_lines) == 2
    assert list(data_lines[0].get_xdata()) == [0.1, 0.5]  # the None point is skipped
    fig = visualize.precision_at_n_curves({16: {"n": [1, 10, 100], "precision": [1.0, 0.9, 0.7]}})
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [len(line.get_xdata()) for line in ax.lines if len(line.get_xdata())] == [3]
    with pytest.raises(ValueError, match="at least one curve"):
        visualize.pr_curves({})


def test_retrieval_gallery_frames_and_distances():
    query, database = _TinyDataset([0, 1]), _TinyDataset([0, 1, 1, 2])
    neighbours = np.array([[0, 1, 3], [2, 1, 0]])
    distances = np.array([[0, 1, 2], [0, 0, 3]])
    fig = visualize.retrieval_gallery(query, database, [0, 1], neighbours, distances, NAMES)
    assert len(fig.axes) == 2 * 4
    colours = [
        matplotlib.colors.to_hex(p.get_edgecolor())
        for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)
    ]
    c, w = visualize.CORRECT_COLOUR, visualize.WRONG_COLOUR
    assert colours == [c, w, w, c, c, w]
    assert fig.axes[3].get_title() == "d=2"
    assert fig.axes[0].get_title() == "query\na"
    with pytest.raises(ValueError, match="hhlib.hamming.rank"):
        visualize.retrieval_gallery(query, database, [0], neighbours, distances)


def test_tsne_projection_deterministic_for_a_seed():
    x = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    a = visualize.tsne_projection(x, seed=3, perplexity=5.0, max_iter=250)
    b = visualize.tsne_projection(torch.from_numpy(x), seed=3, perplexity=5.0, max_iter=250)
    assert a.shape == (20, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert visualize.tsne_projection(x[:4], seed=0, max_iter=250).shape == (4, 2)  # perplexity clipped
    with pytest.raises(ValueError, match=r"\(N>=2, D\)"):
        visualize.tsne_projection(x[:1])


def test_embedding_scatter_panels_and_legend():
    points = np.random.default_rng(1).normal(size=(6, 2))
    labels = _one_hot([0, 1, 2, 0, 1, 2])
    fig = visualize.embedding_scatter({"continuous": points, "binary": points * 2}, labels, NAMES)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["continuous", "binary"]
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
    assert len(fig.axes[0].collections[0].get_offsets()) == 6
    with pytest.raises(ValueError, match=r"expected \(6, 2\)"):
        visualize.embedding_scatter({"x": points[:3]}, labels, NAMES)


def test_results_bars_one_axes_per_bits():
    table = pd.DataFrame(
        {"bits": [16, 16, 32, 32], "variant": ["hybrid", "local_only"] * 2, "map": [0.5, 0.4, 0.6, 0.55]}
    )
    fig = visualize.results_bars(table, "variant")
    assert [ax.get_title() for ax in fig.axes] == ["16 bits", "32 bits"]
    assert sorted(round(p.get_height(), 3) for p in fig.axes[1].patches) == [0.55, 0.6]
    with pytest.raises(ValueError, match="lacks columns"):
        visualize.results_bars(table, "loss")


def test_longer_training_draws_both_lengths_of_every_shared_configuration():
    def row(name, epochs, value, std):
        return {"name": name, "bits": 16, "epochs": epochs, "map": value, "map_std": std}

    shorter = [row("hybridhash (paper)", 48, 0.78, 0.008), row("backbone=nest", 48, 0.764, 0.004), row("loss=dpsh", 48, 0.62, 0.05)]
    longer = [row("hybridhash (paper)", 96, 0.79, 0.004), row("backbone=nest", 96, 0.785, 0.005)]
    fig = visualize.longer_training(longer, shorter)
    (ax,) = fig.axes
    assert ax.get_title() == "16 bits"
    assert [label.get_text() for label in ax.get_yticklabels()] == ["backbone=nest", "hybridhash (paper)"]  # best on top
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["48 epochs", "96 epochs"]
    fig.canvas.draw()
    legend, panel = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= panel.x1, "the legend stands beside the panel, where it can cover no point"
    joins = [line for line in ax.get_lines() if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]]
    assert sorted(tuple(np.round(line.get_xdata(), 3)) for line in joins) == [(0.764, 0.785), (0.78, 0.79)]
    with pytest.raises(ValueError, match="nothing to compare"):
        visualize.longer_training(longer, [row("loss=dpsh", 48, 0.62, 0.05)])


def test_save_figure_writes_png(tmp_path):
    fig = visualize.split_counts({"query": [1, 2, 3]}, NAMES)
    path = visualize.save_figure(fig, tmp_path, "counts")
    assert path == tmp_path / "figures" / "counts.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_tsne_maps_projects_a_trained_runs_outputs_and_codes(tmp_path):
    from hhlib import embedding
    from hhlib.train import TrainConfig, fit

    fashion = "/usr/share/datasets/fashion-mnist"
    if not Path(fashion).is_dir():
        pytest.skip("Fashion-MNIST files absent (make setup)")
    config = TrainConfig.from_dict(dict(
        dataset="fashion_mnist", data_dir=fashion, preset="tiny32", bits=16, img_size=32, query_per_class=3,
        train_per_class=4, database_limit=40, batch_size=20, epochs=1, optimizer="adamw", lr=1e-3,
        out_dir=str(tmp_path), progress=False, device="cpu", num_threads=1))
    result = fit(config)
    from hhlib.data import load_splits

    splits = load_splits("fashion_mnist", fashion, seed=0, img_size=32, query_per_class=3, train_per_class=4,
                         database_limit=40)
    tsne = embedding.run_tsne_maps(result.run_dir, splits.query, 16, "cpu", 64, points=30, seed=0, perplexity=5)
    assert list(tsne["maps"]) == ["continuous outputs, 16 bits", "binary codes, 16 bits"]
    assert all(points.shape == (30, 2) for points in tsne["maps"].values())
    assert tsne["labels"].shape == (30, 10)
    assert set(tsne["separation"]) == {"continuous", "codes"}
    assert all(-1 <= s <= 1 for s in tsne["separation"].values())


def test_embedding_separation_is_one_for_far_apart_classes_and_rejects_one_class():
    points = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1]], dtype=float)
    labels = np.eye(2)[[0, 0, 1, 1]]
    assert visualize.embedding_separation(points, labels) > 0.95
    with pytest.raises(ValueError, match="at least two classes"):
        visualize.embedding_separation(points, np.eye(2)[[0, 0, 0, 0]])
