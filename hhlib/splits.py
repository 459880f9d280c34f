"""Retrieval protocols: which images are query, train and database, as index arrays.

The protocols are those of the deep-hashing literature that HybridHash (arXiv 2405.07524,
Sec. 4.1) evaluates on; docs/method.md §5 gives the sizes. ``PROTOCOLS`` maps a name to a
:class:`Protocol`; :func:`make_splits` turns labels into a :class:`SplitIndices`.

Determinism: every draw comes from one ``numpy.random.Generator(PCG64(seed))``. A random order
is ``argsort(rng.random(n), kind="stable")``: it depends only on PCG64's bit stream and IEEE
doubles, so the same seed gives the same split on every machine and numpy version.

Per-class sampling rule (:func:`draw_per_class`), the same for single- and multi-label sets:
draw one random order of all candidates; then for each class c = 0, 1, ..., C-1 in turn, take
the first ``n`` images in that order that carry label c and were not taken before (by an
earlier class or an earlier split). A multi-label image is therefore counted for the first of
its classes that reaches it, so every class gets exactly ``n`` images that carry it, and the
split has exactly ``n * C`` images. For single-label sets this is plain sampling without
replacement within each class.

``database_limit`` (a smoke/CPU override) keeps a seeded, class-stratified subset of the
database (:func:`stratified_subset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Protocol:
    """How one dataset is split (docs/method.md §5).

    Attributes:
        name: protocol name.
        source: ``"pool"`` (one labelled pool drawn per class) or ``"lists"`` (train/test/database list files).
        query_per_class: query images per class drawn from the pool; None = the whole test list.
        train_per_class: train images per class; None = the whole train list.
        database: ``"rest"`` (pool minus query minus train), ``"rest_with_train"`` (pool minus query;
            train drawn from it), ``"train"`` (database = train), or ``"list"`` (database.txt).
        topk: k of mAP@k; None = the whole database.
    """

    name: str
    source: str
    query_per_class: int | None
    train_per_class: int | None
    database: str
    topk: int | None


PROTOCOLS: dict[str, Protocol] = {
    # docs/method.md §5: per class 100 query + 500 train, the rest (54,000) database, mAP over all.
    "cifar10": Protocol("cifar10", "pool", 100, 500, "rest", None),
    # docs/method.md §5: per class 100 query, the other 59,000 database, 500 per class of it as train.
    "cifar10-1": Protocol("cifar10-1", "pool", 100, 500, "rest_with_train", None),
    # docs/method.md §5: per class 1,000 query, 5,000 train; database = train (50,000).
    "cifar10-2": Protocol("cifar10-2", "pool", 1000, 5000, "train", None),
    # issue 3: the CIFAR-10 protocol on all 70,000 pooled images: 1,000 / 5,000 / 64,000.
    "fashion_mnist": Protocol("fashion_mnist", "pool", 100, 500, "rest", None),
    # docs/method.md §5: 2,100 query, 10,500 train, ~193,000 database, mAP@5000.
    "nuswide_21": Protocol("nuswide_21", "lists", None, None, "list", 5000),
    # docs/method.md §5 (HashNet's NUS-WIDE-m): 5,000 query, 10,000 train, mAP@5000.
    "nuswide_81_m": Protocol("nuswide_81_m", "lists", None, None, "list", 5000),
    # docs/method.md §5: 5,000 query, 10,000 train, the rest database, mAP@5000.
    "coco": Protocol("coco", "lists", None, None, "list", 5000),
    # docs/method.md §5 (HashNet's ImageNet-100): 5,000 query, 13,000 train, ~128,500 database, mAP@1000.
    "imagenet": Protocol("imagenet", "lists", None, None, "list", 1000),
}


@dataclass
class SplitIndices:
    """Index arrays of the three splits and the parameters that produced them.

    Attributes:
        query: (Nq,) int64 sorted positions (into the pool, or into test.txt for list protocols).
        train: (Nt,) int64 sorted positions (into the pool, or into train.txt).
        database: (Nd,) int64 sorted positions (into the pool, or into database.txt).
        params: what was used: protocol, seed, query_per_class, train_per_class, database_limit, topk.
    """

    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    params: dict = field(default_factory=dict)


def random_order(n: int, rng: np.random.Generator) -> np.ndarray:
    """Return a seeded random permutation of ``range(n)``, identical on every machine.

    Args:
        n: how many items.
        rng: the generator (``Generator(PCG64(seed))``); advanced by ``n`` doubles.

    Returns:
        (n,) int64 permutation.
    """
    return np.argsort(rng.random(n), kind="stable").astype(np.int64)


def draw_per_class(labels: np.ndarray, per_class: int, order: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Take ``per_class`` untaken images carrying each class, class by class (module docstring rule).

    Args:
        labels: (N, C) float32 multi-hot labels.
        per_class: images per class.
        order: (M,) int64 candidate positions in random order (only these can be drawn).
        taken: (N,) bool, updated in place: True for every image drawn here.

    Returns:
        (per_class * C,) int64 sorted positions.

    Raises:
        ValueError: a class has fewer than ``per_class`` untaken images (names it and the fix).
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    chosen = []
    positive = labels[order] > 0
    for c in range(labels.shape[1]):
        candidates = order[positive[:, c] & ~taken[order]]
        if len(candidates) < per_class:
            raise ValueError(
                f"class {c} has only {len(candidates)} images left to draw, {per_class} asked: "
                f"pass a smaller query_per_class/train_per_class"
            )
        picked = candidates[:per_class]
        taken[picked] = True
        chosen.append(picked)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def stratified_subset(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``limit`` rows, class-stratified, seeded.

    Each row's stratum is its first positive class; all-zero rows form one last stratum. Quotas
    are proportional to stratum sizes (largest remainder, ties to the lower class index); within
    a stratum the first rows of a seeded random order are kept.

    Args:
        labels: (N, C) float32 multi-hot labels.
        limit: how many rows to keep; >= N keeps all.
        rng: the generator.

    Returns:
        (min(limit, N),) int64 sorted row positions.

    Raises:
        ValueError: ``limit`` is negative.
    """
    n = len(labels)
    if limit < 0:
        raise ValueError(f"database_limit must be >= 0, got {limit}")
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    positive = labels > 0
    stratum = np.where(positive.any(axis=1), positive.argmax(axis=1), labels.shape[1])
    groups, sizes = np.unique(stratum, return_counts=True)
    exact = sizes * limit / n
    quota = np.floor(exact).astype(np.int64)
    extra = limit - int(quota.sum())
    by_remainder = np.lexsort((np.arange(len(groups)), -(exact - quota)))
    quota[by_remainder[:extra]] += 1
    order = random_order(n, rng)
    ordered_stratum = stratum[order]
    chosen = [order[ordered_stratum == g][:q] for g, q in zip(groups, quota)]
    return np.sort(np.concatenate(chosen))


def _check_count(name: str, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{name} must be >= 0 or None, got {value}")


def make_splits(
    protocol: str | Protocol,
    labels: np.ndarray | dict[str, np.ndarray],
    *,
    seed: int = 0,
    query_per_class: int | None = None,
    train_per_class: int | None = None,
    database_limit: int | None = None,
) -> SplitIndices:
    """Draw the query / train / database indices of a protocol.

    Args:
        protocol: a ``PROTOCOLS`` name or a :class:`Protocol`.
        labels: for pool protocols, (N, C) float32 multi-hot labels of the pool; for list
            protocols, ``{"query": (Nq, C), "train": (Nt, C), "database": (Nd, C)}`` (the test,
            train and database lists).
        seed: the split seed (``Generator(PCG64(seed))``).
        query_per_class: override of the protocol's query images per class; for list protocols,
            subsamples the test list per class with the same rule. None = the protocol's value.
        train_per_class: same for train.
        database_limit: keep a seeded class-stratified subset of this many database images
            (applied after the query/train draw). None = the whole database.

    Returns:
        The indices, with ``params`` recording every value used.

    Raises:
        KeyError: unknown protocol name (lists the valid names).
        ValueError: negative override, or a class too small for the counts asked.
    """
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise KeyError(f"unknown protocol {protocol!r}: valid names are {', '.join(PROTOCOLS)}")
        protocol = PROTOCOLS[protocol]
    for name, value in (("query_per_class", query_per_class), ("train_per_class", train_per_class)):
        _check_count(name, value)
    _check_count("database_limit", database_limit)
    rng = np.random.Generator(np.random.PCG64(seed))
    q_per_class = protocol.query_per_class if query_per_class is None else query_per_class
    t_per_class = protocol.train_per_class if train_per_class is None else train_per_class

    if protocol.source == "pool":
        labels = np.asarray(labels, dtype=np.float32)
        order = random_order(len(labels), rng)
        taken = np.zeros(len(labels), dtype=bool)
        query = draw_per_class(labels, q_per_class, order, taken)
        if protocol.database == "rest":
            train = draw_per_class(labels, t_per_class, order, taken)
            database = np.flatnonzero(~taken)
        elif protocol.database == "rest_with_train":
            database = np.flatnonzero(~taken)
            train = draw_per_class(labels, t_per_class, order, taken.copy())
        elif protocol.database == "train":
            train = draw_per_class(labels, t_per_class, order, taken)
            database = train.copy()
        else:
            raise ValueError(f"protocol {protocol.name}: unknown database rule {protocol.database!r}")
        database_labels = labels[database]
    else:
        query, train, database = (np.arange(len(labels[s]), dtype=np.int64) for s in ("query", "train", "database"))
        for split, per_class in (("query", q_per_class), ("train", t_per_class)):
            if per_class is not None:
                split_labels = np.asarray(labels[split], dtype=np.float32)
                picked = draw_per_class(
                    split_labels, per_class, random_order(len(split_labels), rng), np.zeros(len(split_labels), bool)
                )
                query, train = (picked, train) if split == "query" else (query, picked)
        database_labels = np.asarray(labels["database"], dtype=np.float32)
    if database_limit is not None:
        database = database[stratified_subset(database_labels, database_limit, rng)]
    params = {
        "protocol": protocol.name,
        "seed": seed,
        "query_per_class": q_per_class,
        "train_per_class": t_per_class,
        "database_limit": database_limit,
        "topk": protocol.topk,
        "overrides": {
            k: v
            for k, v in (
                ("query_per_class", query_per_class),
                ("train_per_class", train_per_class),
                ("database_limit", database_limit),
            )
            if v is not None
        },
    }
    return SplitIndices(query.astype(np.int64), train.astype(np.int64), database.astype(np.int64), params)
