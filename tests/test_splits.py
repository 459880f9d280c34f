"""Tests for hhlib.splits: protocol sizes, per-class counts, disjointness, seeds, the multi-label rule."""

from __future__ import annotations

import numpy as np
import pytest

from hhlib.splits import PROTOCOLS, Protocol, draw_per_class, make_splits, random_order, stratified_subset


def one_hot(per_class: int, n_classes: int = 10) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[np.arange(per_class * n_classes) % n_classes]


CIFAR_POOL = one_hot(6000)  # 60,000 images, 10 classes


def per_class(labels: np.ndarray, indices: np.ndarray) -> list[int]:
    return labels[indices].sum(axis=0).astype(int).tolist()


def test_cifar10_protocol_sizes():
    s = make_splits("cifar10", CIFAR_POOL, seed=0)
    assert (len(s.query), len(s.train), len(s.database)) == (1000, 5000, 54000)
    assert per_class(CIFAR_POOL, s.query) == [100] * 10 and per_class(CIFAR_POOL, s.train) == [500] * 10
    everything = np.concatenate([s.query, s.train, s.database])
    assert len(np.unique(everything)) == 60000  # disjoint and covering the pool
    assert all(np.all(np.diff(a) > 0) for a in (s.query, s.train, s.database))  # sorted


def test_cifar10_1_train_inside_database():
    s = make_splits("cifar10-1", CIFAR_POOL, seed=0)
    assert (len(s.query), len(s.train), len(s.database)) == (1000, 5000, 59000)
    assert np.intersect1d(s.query, s.database).size == 0
    assert np.isin(s.train, s.database).all() and per_class(CIFAR_POOL, s.train) == [500] * 10
    # same seed: cifar10 and cifar10-1 draw the same queries and the same train images
    t = make_splits("cifar10", CIFAR_POOL, seed=0)
    np.testing.assert_array_equal(s.query, t.query)
    np.testing.assert_array_equal(s.train, t.train)


def test_cifar10_2_database_is_train():
    s = make_splits("cifar10-2", CIFAR_POOL, seed=0)
    assert (len(s.query), len(s.train), len(s.database)) == (10000, 50000, 50000)
    np.testing.assert_array_equal(s.database, s.train)
    assert np.intersect1d(s.query, s.train).size == 0 and per_class(CIFAR_POOL, s.query) == [1000] * 10


def test_fashion_mnist_protocol_sizes():
    labels = one_hot(7000)
    s = make_splits("fashion_mnist", labels, seed=3)
    assert (len(s.query), len(s.train), len(s.database)) == (1000, 5000, 64000)
    assert per_class(labels, s.database) == [6400] * 10 and s.params["topk"] is None


def test_seed_determinism():
    labels = one_hot(50)
    a = make_splits("cifar10", labels, seed=7, query_per_class=5, train_per_class=10)
    b = make_splits("cifar10", labels, seed=7, query_per_class=5, train_per_class=10)
    c = make_splits("cifar10", labels, seed=8, query_per_class=5, train_per_class=10)
    for split in ("query", "train", "database"):
        np.testing.assert_array_equal(getattr(a, split), getattr(b, split))
    assert not np.array_equal(a.query, c.query)


def test_split_is_pinned_across_machines():
    # Golden values: argsort of PCG64(0) doubles; a change here means splits moved between versions.
    np.testing.assert_array_equal(random_order(8, np.random.Generator(np.random.PCG64(0))), [3, 2, 1, 6, 0, 7, 4, 5])
    s = make_splits("cifar10", one_hot(10, 3), seed=0, query_per_class=2, train_per_class=3)
    assert s.query.tolist() == [1, 3, 11, 13, 20, 21]
    assert s.train.tolist() == [2, 6, 8, 15, 17, 18, 19, 22, 25]


def test_multi_label_rule_by_hand():
    labels = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    taken = np.zeros(4, dtype=bool)
    # class 0 takes image 0 (first in order); class 1's first candidate, image 0, is taken -> image 2
    np.testing.assert_array_equal(draw_per_class(labels, 1, np.array([0, 1, 2, 3]), taken), [0, 2])
    np.testing.assert_array_equal(taken, [True, False, True, False])
    # second draw in order 3, 1, 2, 0: class 0 takes image 3, which also carries class 1; class 1 has
    # nothing left (0, 2, 3 taken, 1 lacks it), so the rule raises rather than return fewer
    with pytest.raises(ValueError, match="class 1 has only 0 images left"):
        draw_per_class(labels, 1, np.array([3, 1, 2, 0]), taken)


def test_draw_per_class_too_few_raises():
    labels = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    with pytest.raises(ValueError, match="class 1 has only 1 images left to draw, 2 asked"):
        draw_per_class(labels, 2, np.arange(3), np.zeros(3, dtype=bool))


def test_multi_label_pool_counts():
    rng = np.random.default_rng(0)
    labels = (rng.random((500, 4)) < 0.4).astype(np.float32)
    labels[labels.sum(axis=1) == 0, 0] = 1
    protocol = Protocol("ml", "pool", 5, 10, "rest_with_train", None)
    s = make_splits(protocol, labels, seed=1)
    assert len(s.query) == 20 and len(s.train) == 40  # each image counted once: exactly n * C
    assert (labels[s.query].sum(axis=0) >= 5).all() and (labels[s.train].sum(axis=0) >= 10).all()
    assert np.isin(s.train, s.database).all() and np.intersect1d(s.query, s.database).size == 0


def test_stratified_subset_by_hand():
    # strata sizes 6, 3, 1 (class 0, class 1, all-zero) -> limit 5: exact 3, 1.5, 0.5 -> 3, 2, 0 (tie 0.5 to lower)
    labels = np.zeros((10, 2), dtype=np.float32)
    labels[:6, 0] = 1
    labels[6:9, 1] = 1
    labels[0, 1] = 1  # multi-label row: stratum = first positive class (0)
    rows = stratified_subset(labels, 5, np.random.Generator(np.random.PCG64(0)))
    assert len(rows) == 5 and (rows < 6).sum() == 3 and ((rows >= 6) & (rows < 9)).sum() == 2
    assert len(stratified_subset(labels, 50, np.random.Generator(np.random.PCG64(0)))) == 10


def test_database_limit_is_recorded_and_stratified():
    s = make_splits("fashion_mnist", one_hot(100), seed=0, query_per_class=2, train_per_class=3, database_limit=200)
    assert len(s.database) == 200 and per_class(one_hot(100), s.database) == [20] * 10
    assert len(s.query) == 20 and len(s.train) == 30
    assert np.intersect1d(s.database, np.concatenate([s.query, s.train])).size == 0
    assert s.params["overrides"] == {"query_per_class": 2, "train_per_class": 3, "database_limit": 200}
    assert s.params["query_per_class"] == 2 and s.params["seed"] == 0 and s.params["protocol"] == "fashion_mnist"


def test_list_protocol_uses_lists_and_overrides():
    labels = {"query": one_hot(4, 3), "train": one_hot(5, 3), "database": one_hot(20, 3)}
    s = make_splits("nuswide_21", labels, seed=0)
    assert (len(s.query), len(s.train), len(s.database)) == (12, 15, 60) and s.params["topk"] == 5000
    s = make_splits("nuswide_21", labels, seed=0, query_per_class=1, train_per_class=2, database_limit=30)
    assert (len(s.query), len(s.train), len(s.database)) == (3, 6, 30)
    assert per_class(labels["query"], s.query) == [1, 1, 1] and per_class(labels["database"], s.database) == [10] * 3


def test_protocol_registry_and_errors():
    assert set(PROTOCOLS) == {"cifar10", "cifar10-1", "cifar10-2", "fashion_mnist", "nuswide_21", "nuswide_81_m",
                              "coco", "imagenet"}
    assert [PROTOCOLS[n].topk for n in ("nuswide_21", "nuswide_81_m", "coco", "imagenet")] == [5000, 5000, 5000, 1000]
    with pytest.raises(KeyError, match="unknown protocol 'cifar100': valid names are cifar10, cifar10-1"):
        make_splits("cifar100", CIFAR_POOL)
    with pytest.raises(ValueError, match="query_per_class must be >= 0"):
        make_splits("cifar10", CIFAR_POOL, query_per_class=-1)
    with pytest.raises(ValueError, match="database_limit must be >= 0"):
        make_splits("cifar10", CIFAR_POOL, database_limit=-5)
