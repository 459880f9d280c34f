"""Figures of the executable paper: pure functions that return matplotlib Figures, plus t-SNE.

HybridHash (ICMR 2024, arXiv 2405.07524) reports mAP tables (Sec. 4.2), precision-recall and
precision@N curves, retrieval examples and t-SNE plots of the codes (Sec. 4.3-4.4); the notebooks
draw the same figures for every dataset through these functions. Every function takes plain arrays
(numpy or torch) or the dicts that :func:`hhlib.evaluate.evaluate` and the trainer's metrics.jsonl
produce, returns a new ``matplotlib.figure.Figure`` and never calls ``plt.show``; styling is
seaborn's (``whitegrid``), applied per figure so importing this module changes no global state.
:func:`save_figure` writes ``<out_dir>/figures/<name>.png``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hhlib.readings import configuration_pairs
from hhlib.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize

__all__ = [
    "AXIS_LABELS",
    "CORRECT_COLOUR",
    "WRONG_COLOUR",
    "display_table",
    "embedding_scatter",
    "embedding_separation",
    "label_cooccurrence",
    "longer_training",
    "pr_curves",
    "precision_at_n_curves",
    "results_bars",
    "retrieval_gallery",
    "sample_grid",
    "save_figure",
    "split_counts",
    "training_curves",
    "tsne_projection",
]

CORRECT_COLOUR = "#2ca02c"  # gallery frame of a relevant result (shares a label with the query)
WRONG_COLOUR = "#d62728"  # gallery frame of an irrelevant result
STYLE = "whitegrid"  # seaborn axes style of every figure
# what a metrics key is called on an axis (the keys stay short in metrics.json)
AXIS_LABELS = {"map": "mAP", "map_tie_aware": "tie-aware mAP", "loss": "training loss", "epoch": "epoch",
               "precision_within_radius": "precision within radius"}


def _axis_label(key: str) -> str:
    return AXIS_LABELS.get(key, key.replace("_", " "))


def _numpy(array: Any) -> np.ndarray:
    """Torch tensor or array-like -> numpy array (detached, on CPU)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    """(3, S, S) or (S, S, 3) or (S, S) float image -> (S, S, 3) or (S, S) in [0, 1] for imshow."""
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.transpose(image, (1, 2, 0))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return np.clip(image, 0.0, 1.0)


def _label_text(label_row: np.ndarray, class_names: Sequence[str], limit: int = 2) -> str:
    """Names of the classes a multi-hot row carries (first ``limit``, then '+n')."""
    idx = np.flatnonzero(label_row > 0)
    names = [str(class_names[i]) if i < len(class_names) else str(i) for i in idx[:limit]]
    extra = f" +{len(idx) - limit}" if len(idx) > limit else ""
    return ", ".join(names) + extra if names else "(none)"


def _primary_class(labels: np.ndarray) -> np.ndarray:
    """(N, C) multi-hot or (N,) class ids -> (N,) int: the first class each row carries."""
    labels = _numpy(labels)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    return np.argmax(labels > 0, axis=1).astype(np.int64)


def _bits_key(bits: Any) -> int:
    return int(bits)


def sample_grid(
    images: Any, labels: Any, class_names: Sequence[str], ncols: int = 8, title: str | None = None
) -> Figure:
    """Grid of sample images, each titled with its class name(s).

    Args:
        images: (K, 3, S, S) or (K, S, S, 3) float in [0, 1] (e.g. ``Splits.sample_images``).
        labels: (K, C) multi-hot labels of the images.
        class_names: C names.
        ncols: images per row.
        title: figure title (None = none).

    Returns:
        A Figure with ceil(K / ncols) x ncols axes (unused ones hidden).

    Raises:
        ValueError: no images, or images and labels of different lengths.
    """
    images, labels = _numpy(images), _numpy(labels)
    if len(images) == 0:
        raise ValueError("sample_grid needs at least one image: draw them with Splits.sample_images(per_class>=1)")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label rows: pass one label row per image")
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    with sns.axes_style("white"):
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.55 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(_as_hwc(images[k]), cmap="gray")
            ax.set_title(_label_text(labels[k], class_names), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def split_counts(per_class: Mapping[str, Sequence[int]], class_names: Sequence[str]) -> Figure:
    """Grouped bar chart of the images per class in each split.

    Args:
        per_class: split name -> C counts (``Splits.summary()["per_class"]``).
        class_names: C names.

    Returns:
        A Figure with one axes: one bar group per class, one hue per split (log y when counts
        differ by more than 20x).

    Raises:
        ValueError: a split's count list is not C long.
    """
    rows = []
    for split, counts in per_class.items():
        if len(counts) != len(class_names):
            raise ValueError(f"split {split!r} has {len(counts)} counts for {len(class_names)} classes: pass one count per class")
        rows += [{"class": str(name), "split": split, "images": int(c)} for name, c in zip(class_names, counts)]
    frame = pd.DataFrame(rows)
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(class_names) * max(1, len(per_class))), 3.6))
    sns.barplot(data=frame, x="class", y="images", hue="split", ax=ax)
    positive = frame["images"][frame["images"] > 0]
    if len(positive) and positive.max() > 20 * positive.min():
        ax.set_yscale("log")
    ax.set_xlabel("")
    ax.set_ylabel("images per class")
    ax.tick_params(axis="x", rotation=90 if len(class_names) > 12 else 30)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title="split", frameon=False)  # beside, not over, the bars
    fig.tight_layout()
    return fig


def label_cooccurrence(labels: Any, class_names: Sequence[str], normalize: bool = True) -> Figure:
    """Heatmap of how often two classes label the same image (multi-label sets).

    Args:
        labels: (N, C) multi-hot labels.
        class_names: C names.
        normalize: divide row i by the count of class i (P(class j | class i)); False = raw counts.

    Returns:
        A Figure with the heatmap axes and its colour-bar axes.

    Raises:
        ValueError: labels are not (N, C) with C = len(class_names).
    """
    labels = _numpy(labels).astype(np.float64)
    if labels.ndim != 2 or labels.shape[1] != len(class_names):
        raise ValueError(f"labels must be (N, {len(class_names)}) multi-hot, got shape {labels.shape}")
    counts = labels.T @ labels
    matrix = counts / np.maximum(np.diag(counts)[:, None], 1.0) if normalize else counts
    size = max(4.0, 0.3 * len(class_names) + 2.0)
    with sns.axes_style("white"):
        fig, ax = plt.subplots(figsize=(size + 1.0, size))
    sns.heatmap(
        matrix, ax=ax, xticklabels=list(class_names), yticklabels=list(class_names), cmap="viridis", square=True,
        cbar_kws={"label": "P(column | row)" if normalize else "images"},
    )
    ax.set_title("label co-occurrence")
    fig.tight_layout()
    return fig


def training_curves(
    histories: Mapping[Any, Sequence[Mapping[str, Any]]], x: str = "epoch", loss: str = "loss", metric: str = "map",
    metric_label: str | None = None,
) -> Figure:
    """Training loss and query mAP against the epoch, one line per code length.

    Args:
        histories: bits -> that run's metrics.jsonl rows (``RunResult.history``), or a list of them,
            one per seed (the lines are then means with a band of one std); a row counts for a
            panel when it has ``x`` and a finite ``loss`` / ``metric`` value (evaluations are periodic).
        x: key of the x axis.
        loss: key of the training loss.
        metric: key of the evaluation metric, plotted as one marker per evaluation (with a one-std
            bar over seeds) and no line: evaluations are sparse, and a line between them would
            suggest values nobody measured.
        metric_label: the metric's name on the axis (None = ``AXIS_LABELS``, e.g. "mAP"); say the
            cut-off here, e.g. "query mAP@all".

    Returns:
        A Figure with two axes: loss (left) and ``metric`` (right).

    Raises:
        ValueError: no row has ``x`` and a loss or metric value.
    """
    panels: dict[str, list[dict]] = {loss: [], metric: []}
    for bits, runs in histories.items():
        for row in (record for run in _per_seed(runs) for record in run):
            for key in panels:
                value = row.get(key)
                if x in row and value is not None and np.isfinite(float(value)):
                    panels[key].append({x: float(row[x]), key: float(value), "bits": str(_bits_key(bits))})
    if not panels[loss] and not panels[metric]:
        raise ValueError(f"no row has {x!r} with {loss!r} or {metric!r}: pass {{bits: RunResult.history}} (metrics.jsonl rows)")
    with sns.axes_style(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = {loss: _axis_label(loss), metric: metric_label or _axis_label(metric)}
    several_seeds = any(len(_per_seed(runs)) > 1 for runs in histories.values())
    for ax, key in zip(axes, (loss, metric)):
        frame = pd.DataFrame(panels[key], columns=[x, key, "bits"])
        if len(frame) and key == metric:
            sns.lineplot(data=frame, x=x, y=key, hue="bits", marker="o", linestyle="", err_style="bars", ax=ax,
                         errorbar="sd" if several_seeds else None)
        elif len(frame):
            sns.lineplot(data=frame, x=x, y=key, hue="bits", marker="o", ax=ax, errorbar="sd")
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel(labels[key])
        spread = "band" if key == loss else "bar"
        ax.set_title(f"{labels[key]} per {_axis_label(x)} (mean; {spread}: std over seeds)")
    fig.tight_layout()
    return fig


def _per_seed(runs: Sequence) -> list:
    """Histories per seed from one history (a list of row dicts) or a list of histories."""
    runs = list(runs)
    return [runs] if runs and isinstance(runs[0], Mapping) else runs


def _curve_frame(curves: Mapping[Any, Any], xkey: str, ykey: str) -> pd.DataFrame:
    rows = []
    for bits, per_seed in curves.items():
        for seed, curve in enumerate([per_seed] if isinstance(per_seed, Mapping) else per_seed):
            for xv, yv in zip(curve[xkey], curve[ykey]):
                if xv is not None and yv is not None:
                    rows.append({xkey: float(xv), ykey: float(yv), "bits": str(_bits_key(bits)), "seed": seed})
    return pd.DataFrame(rows, columns=[xkey, ykey, "bits", "seed"])


def pr_curves(curves: Mapping[Any, Mapping[str, Sequence]]) -> Figure:
    """Precision-recall curves of Hamming ranking, one line per code length.

    Args:
        curves: bits -> ``evaluate(...)["pr_curve"]`` (``{"radius", "precision", "recall"}``; points
            whose precision or recall is None are skipped), or a list of them, one per seed (one
            line per seed: the seeds' recalls differ, so there is no common x to average over).

    Returns:
        A Figure with one axes (recall on x, precision on y).

    Raises:
        ValueError: no curve given.
    """
    if not curves:
        raise ValueError("pr_curves needs at least one curve: pass {bits: evaluate(...)['pr_curve']}")
    frame = _curve_frame(curves, "recall", "precision")
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(5, 4))
    sns.lineplot(data=frame, x="recall", y="precision", hue="bits", units="seed", estimator=None, marker="o",
                 markersize=3, linewidth=1, sort=False, ax=ax)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall (Hamming radius sweep)")
    fig.tight_layout()
    return fig


def precision_at_n_curves(curves: Mapping[Any, Mapping[str, Sequence]]) -> Figure:
    """Precision@N against N, one line per code length.

    Args:
        curves: bits -> ``evaluate(...)["precision_at_n"]`` (``{"n": [...], "precision": [...]}``), or a
            list of them, one per seed (mean line, band of one std).

    Returns:
        A Figure with one axes (N on a log x axis).

    Raises:
        ValueError: no curve given.
    """
    if not curves:
        raise ValueError("precision_at_n_curves needs at least one curve: pass {bits: evaluate(...)['precision_at_n']}")
    frame = _curve_frame(curves, "n", "precision")
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(5, 4))
    sns.lineplot(data=frame, x="n", y="precision", hue="bits", marker="o", ax=ax, errorbar="sd")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("N (top returned)")
    ax.set_title("precision@N")
    fig.tight_layout()
    return fig


def _dataset_image(dataset: Any, position: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (3, S, S) in [0, 1] and label row of one dataset item (items are (image, label, index))."""
    image, label = dataset[int(position)][:2]
    if hasattr(image, "dim"):
        image = denormalize(image.float(), IMAGENET_MEAN, IMAGENET_STD)
    return _numpy(image), _numpy(label)


def retrieval_gallery(
    query_dataset: Any,
    database_dataset: Any,
    query_positions: Sequence[int],
    neighbours: Any,
    distances: Any,
    class_names: Sequence[str] | None = None,
    tie_counts: Sequence[int] | None = None,
) -> Figure:
    """Query images and their top-ranked database images, relevant ones framed green, others red.

    Each row says how many of its k results are relevant and, given ``tie_counts``, how many
    database items share the row's first distance: when more items tie than the row shows, the
    row shows the first of them in database order (hhlib.hamming.TIE_RULE), not a choice of the
    model. ``hhlib.retrieval.gallery_queries`` picks queries (a success and a failure) and
    computes these counts.

    Relevant = shares at least one label with the query (docs/method.md §4). Images are un-normalised
    with the ImageNet mean/std (hhlib.transforms) for display.

    Args:
        query_dataset: Dataset of the queries; items ``(image (3, S, S) normalised, label (C,), index)``.
        database_dataset: Dataset of the database, items as above.
        query_positions: Q positions into ``query_dataset``.
        neighbours: (Q, k) int database positions, best first (``hhlib.hamming.rank``).
        distances: (Q, k) int Hamming distances of ``neighbours``.
        class_names: names for the query titles (None = class ids).
        tie_counts: (Q,) number of database items at each row's first distance (None = not shown).

    Returns:
        A Figure with Q x (k + 1) axes: the query, then its k results titled with their distance.

    Raises:
        ValueError: neighbours/distances not (Q, k) with Q = len(query_positions), or tie_counts not (Q,).
    """
    neighbours, distances = _numpy(neighbours), _numpy(distances)
    n_query = len(query_positions)
    if neighbours.ndim != 2 or neighbours.shape[0] != n_query or distances.shape != neighbours.shape:
        raise ValueError(
            f"neighbours {neighbours.shape} and distances {distances.shape} must both be (Q={n_query}, k): "
            "pass hhlib.hamming.rank(query_codes[query_positions], database_codes, k)"
        )
    if tie_counts is not None and len(tie_counts) != n_query:
        raise ValueError(f"tie_counts has {len(tie_counts)} entries for {n_query} queries: pass one count per query")
    k = neighbours.shape[1]
    with sns.axes_style("white"):
        fig, axes = plt.subplots(n_query, k + 1, figsize=(1.3 * (k + 1), 1.5 * n_query), squeeze=False)
    for row, q in enumerate(query_positions):
        q_image, q_label = _dataset_image(query_dataset, q)
        names = class_names if class_names is not None else [str(i) for i in range(len(q_label))]
        axes[row, 0].imshow(_as_hwc(q_image), cmap="gray")
        axes[row, 0].set_title("query\n" + _label_text(q_label, names, limit=1), fontsize=7)
        hits = 0
        for col in range(k):
            image, label = _dataset_image(database_dataset, neighbours[row, col])
            correct = bool(np.any((label > 0) & (q_label > 0)))
            hits += correct
            ax = axes[row, col + 1]
            ax.imshow(_as_hwc(image), cmap="gray")
            height, width = _as_hwc(image).shape[:2]
            ax.add_patch(Rectangle((-0.5, -0.5), width, height, fill=False, linewidth=3,
                                   edgecolor=CORRECT_COLOUR if correct else WRONG_COLOUR))
            ax.set_title(f"d={int(distances[row, col])}", fontsize=7)
        axes[row, 0].set_xlabel(f"{hits}/{k} relevant", fontsize=7)
        if tie_counts is not None:
            axes[row, 1].set_xlabel(_tie_note(distances[row], int(tie_counts[row])), fontsize=7, loc="left")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout()
    return fig


def _tie_note(distances: np.ndarray, tie_count: int) -> str:
    """'all 3 items at d=0 shown' or '412 items at d=0: the first 10 in database order shown'."""
    first = int(distances[0])
    shown = int((distances == first).sum())
    if tie_count <= shown:
        return f"the only database item at d={first}" if tie_count == 1 else f"all {tie_count} database items at d={first} shown"
    return f"{tie_count} database items at d={first}: the first {shown} in database order shown (ties)"


def display_table(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A results table made narrow and readable for a notebook or its HTML page.

    Floats are rounded to ``digits`` decimals, lists (per-seed values) joined by " / ", missing
    values (None, NaN) shown as "–", and underscores in column names become spaces so that long
    names wrap.

    Args:
        frame: a table such as ``hhlib.report.results_table`` or a runs DataFrame.
        digits: decimals of float cells.

    Returns:
        A new DataFrame of strings (the input is unchanged).
    """
    def cell(value: Any) -> str:
        if isinstance(value, (list, tuple, np.ndarray)):
            return " / ".join(cell(v) for v in value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}f}"
        return str(value)

    shown = frame.map(cell) if hasattr(frame, "map") else frame.applymap(cell)
    shown.columns = [str(c).replace("_", " ") for c in frame.columns]
    return shown


def tsne_projection(
    x: Any, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000, init: str = "pca"
) -> np.ndarray:
    """Project points to 2-D with scikit-learn's t-SNE, deterministically for a seed.

    Args:
        x: (N, D) float features or codes (N >= 2).
        seed: ``random_state`` of the embedding.
        perplexity: t-SNE perplexity; clipped to (N - 1) / 3 for small N (scikit-learn needs it < N).
        max_iter: optimisation iterations (scikit-learn's minimum is 250).
        init: ``"pca"`` (deterministic) or ``"random"``.

    Returns:
        (N, 2) float32 coordinates.

    Raises:
        ValueError: fewer than 2 points or not 2-D.
    """
    from sklearn.manifold import TSNE  # imported here: scikit-learn is slow to import and only t-SNE needs it
    from threadpoolctl import threadpool_limits

    x = _numpy(x).astype(np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"tsne_projection needs an (N>=2, D) array, got shape {x.shape}")
    perplexity = float(min(perplexity, max(1.0, (len(x) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max(250, int(max_iter)), init=init,
                random_state=seed, n_jobs=1)
    # one OpenMP thread: next to torch's own OpenMP pool, sklearn's Barnes-Hut threads slow down tenfold on few cores
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(x).astype(np.float32)


def embedding_separation(points: Any, labels: Any) -> float:
    """How well classes separate in an embedding: the silhouette of the points by (first) class.

    Args:
        points: (N, D) coordinates, e.g. a t-SNE map.
        labels: (N, C) multi-hot or (N,) class ids; multi-label points take their first class.

    Returns:
        The mean silhouette in [-1, 1]: 1 = classes apart, 0 = overlapping (scikit-learn's definition).

    Raises:
        ValueError: fewer than two classes present.
    """
    from sklearn.metrics import silhouette_score

    classes = _primary_class(labels)
    if len(set(classes.tolist())) < 2:
        raise ValueError("embedding_separation needs points of at least two classes")
    return float(silhouette_score(_numpy(points).astype(np.float64), classes))


def embedding_scatter(
    panels: Mapping[str, Any], labels: Any, class_names: Sequence[str], point_size: float = 8.0
) -> Figure:
    """Side-by-side scatter plots of 2-D embeddings, coloured by (first) class.

    Args:
        panels: title -> (N, 2) coordinates (e.g. ``{"continuous outputs": ..., "binary codes": ...}``).
        labels: (N, C) multi-hot or (N,) class ids; multi-label points take their first class.
        class_names: C names (legend).
        point_size: marker size.

    Returns:
        A Figure with one axes per panel (legend on the last).

    Raises:
        ValueError: no panel, or a panel whose length differs from the labels'.
    """
    if not panels:
        raise ValueError("embedding_scatter needs at least one panel: pass {title: (N, 2) coordinates}")
    classes = _primary_class(labels)
    hue = [str(class_names[c]) if c < len(class_names) else str(c) for c in classes]
    order = [str(n) for n in class_names if str(n) in set(hue)]
    with sns.axes_style(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels) + 1.5, 4.6), squeeze=False)
    for i, (ax, (title, points)) in enumerate(zip(axes[0], panels.items())):
        points = _numpy(points)
        if points.shape != (len(classes), 2):
            raise ValueError(f"panel {title!r} has shape {points.shape}, expected ({len(classes)}, 2)")
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=hue, hue_order=order, s=point_size, linewidth=0,
                        palette="tab10" if len(order) <= 10 else "husl", ax=ax, legend=i == len(panels) - 1)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    legend = axes[0, -1].get_legend()
    if legend is not None:
        legend.set_bbox_to_anchor((1.02, 1.0))
        legend.set_loc("upper left")
        legend.set_title("class")
    fig.tight_layout()
    return fig


def results_bars(table: pd.DataFrame, category: str, value: str = "map", hue: str | None = None) -> Figure:
    """One bar chart per code length comparing rows of a results table (ablations, methods, backbones).

    Args:
        table: rows with columns ``bits``, ``category``, ``value`` (and ``hue`` if given); with one
            row per seed (notebook 05's ``seed_rows``) each bar is the mean with a one-std error bar.
        category: column on the x axis (e.g. ``"variant"``, ``"loss"``, ``"backbone"``).
        value: column on the y axis (mAP).
        hue: optional column splitting each bar (e.g. ``"study"``).

    Returns:
        A Figure with one axes per distinct ``bits`` (ascending), bars labelled with their value.

    Raises:
        ValueError: empty table or missing columns.
    """
    needed = {"bits", category, value} | ({hue} if hue else set())
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"results table lacks columns {sorted(missing)}: it has {list(table.columns)}")
    if table.empty:
        raise ValueError("results table is empty: run at least one configuration before plotting")
    bit_values = sorted({int(b) for b in table["bits"]})
    with sns.axes_style(STYLE):
        fig, axes = plt.subplots(1, len(bit_values), figsize=(max(4.0, 0.7 * table[category].nunique() + 2) * len(bit_values), 4.2),
                                 squeeze=False, sharey=True)
    for ax, bits in zip(axes[0], bit_values):
        part = table[table["bits"].astype(int) == bits]
        sns.barplot(data=part, x=category, y=value, hue=hue, ax=ax, errorbar="sd", capsize=0.2, err_kws={"linewidth": 1})
        for container in ax.containers:
            if hasattr(container, "datavalues"):
                ax.bar_label(container, fmt="%.3f", fontsize=7, padding=6)
        ax.set_title(f"{bits} bits")
        ax.set_ylabel(_axis_label(value))
        ax.set_ylim(0, min(1.05, max(0.1, float(part[value].max()) * 1.15)))
        ax.tick_params(axis="x", rotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_xlabel("")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if hue:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, title=hue, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False)
    fig.tight_layout()
    return fig


def longer_training(longer: Sequence[Mapping[str, Any]], shorter: Sequence[Mapping[str, Any]]) -> Figure:
    """Each configuration's mAP after the shorter and the longer training, one panel per code length.

    Two points per configuration (mean over seeds, one-std error bars), joined by a line: a long line
    is a configuration that was still improving, two overlapping bars one that had stopped.

    Args:
        longer: aggregated ablation rows of the longer study (``name``, ``bits``, ``epochs``, ``map``, ``map_std``).
        shorter: the same rows of the shorter study; configurations in only one of the two are left out.

    Returns:
        A Figure, configurations sorted by their longer mAP (best on top).

    Raises:
        ValueError: no configuration is in both.
    """
    pairs = configuration_pairs(longer, shorter)
    if not pairs:
        raise ValueError("no configuration of the longer study is in the shorter one: nothing to compare")
    bit_values = sorted({int(row["bits"]) for _, row in pairs})
    most = max(sum(int(row["bits"]) == bits for _, row in pairs) for bits in bit_values)
    with sns.axes_style(STYLE):
        fig, axes = plt.subplots(1, len(bit_values), figsize=(6.5 * len(bit_values), 0.35 * most + 1.6), squeeze=False)
    for ax, bits in zip(axes[0], bit_values):
        part = sorted((pair for pair in pairs if int(pair[1]["bits"]) == bits), key=lambda pair: pair[1]["map"])
        y = np.arange(len(part))
        for (old, new), height in zip(part, y):
            ax.plot([old["map"], new["map"]], [height, height], color="0.75", linewidth=2, zorder=1)
        for index, colour in ((0, "0.45"), (1, "tab:blue")):
            rows = [pair[index] for pair in part]
            ax.errorbar([r["map"] for r in rows], y, xerr=[r.get("map_std") or 0.0 for r in rows], fmt="o",
                        color=colour, capsize=3, zorder=2, label=f"{rows[0]['epochs']} epochs")
        ax.set_yticks(y, [new["name"] for _, new in part])
        ax.set_xlabel(f"{_axis_label('map')} (mean ± std over seeds)")
        ax.set_title(f"{bits} bits")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True)  # beside the panel: it covers no point
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, out_dir: str | Path, name: str, dpi: int = 110) -> Path:
    """Write a figure to ``<out_dir>/figures/<name>.png``.

    Args:
        fig: the figure.
        out_dir: the run's output folder.
        name: file stem (no extension).
        dpi: resolution.

    Returns:
        The written path.
    """
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
