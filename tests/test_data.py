"""Tests for hhlib.data: the registry, load_splits on every reader, check_data, and the real Fashion-MNIST protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hhlib.data import DATASETS, Splits, check_data, load_splits, resolve_data_dir
from hhlib.datasets import DataError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_registry_covers_every_protocol():
    assert set(DATASETS) == {"fashion_mnist", "cifar10", "cifar10-1", "cifar10-2", "nuswide_21", "nuswide_81_m",
                             "imagenet", "coco"}
    widths = {name: spec.n_classes for name, spec in DATASETS.items()}
    assert widths == {"fashion_mnist": 10, "cifar10": 10, "cifar10-1": 10, "cifar10-2": 10, "nuswide_21": 21,
                      "nuswide_81_m": 81, "imagenet": 100, "coco": 80}
    assert all(len(spec.class_names) == spec.n_classes for spec in DATASETS.values())
    assert DATASETS["imagenet"].topk == 1000 and DATASETS["cifar10"].topk is None
    assert resolve_data_dir("fashion_mnist") == REAL_FASHION


def test_unknown_dataset():
    with pytest.raises(KeyError, match="unknown dataset 'mnist': valid names are fashion_mnist, cifar10"):
        load_splits("mnist")
    with pytest.raises(KeyError, match="valid names are"):
        check_data("svhn")


def test_fashion_mnist_fixture_splits(fashion_dir):
    splits = load_splits("fashion_mnist", fashion_dir, seed=0, img_size=32, query_per_class=1, train_per_class=2)
    assert isinstance(splits, Splits) and splits.n_classes == 10 and splits.class_names[0] == "T-shirt/top"
    assert (len(splits.query), len(splits.train), len(splits.database), len(splits.train_eval)) == (10, 20, 30, 20)
    image, label, index = splits.database[3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert label.shape == (10,) and label.dtype == torch.float32 and label.sum() == 1 and index == 3
    labels = splits.labels("query")
    assert labels.shape == (10, 10) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels.sum(axis=0), 1)
    summary = splits.summary()
    assert summary["sizes"] == {"query": 10, "train": 20, "database": 30}
    assert summary["per_class"]["train"] == [2] * 10 and summary["train_in_database"] == 0
    assert summary["params"]["query_per_class"] == 1 and summary["params"]["img_size"] == 32
    assert summary["params"]["overrides"] == {"query_per_class": 1, "train_per_class": 2}
    with pytest.raises(KeyError, match="unknown split 'test': valid names are query, train, database"):
        splits.labels("test")
    with pytest.raises(IndexError):
        splits.query[10]


def test_dataloader_batches_equal_items(fashion_dir):
    splits = load_splits("fashion_mnist", fashion_dir, img_size=16, query_per_class=1, train_per_class=1)
    images, labels, indices = next(iter(DataLoader(splits.database, batch_size=8, shuffle=False)))
    assert images.shape == (8, 3, 16, 16) and labels.shape == (8, 10) and indices.tolist() == list(range(8))
    torch.testing.assert_close(images[5], splits.database[5][0])
    torch.testing.assert_close(labels, torch.from_numpy(splits.labels("database")[:8]))
    # the train split (train transform: no augmentation by default for small sets) matches train_eval
    torch.testing.assert_close(splits.train[0][0], splits.train_eval[0][0])


def test_sample_images(fashion_dir):
    splits = load_splits("fashion_mnist", fashion_dir, img_size=16, query_per_class=1, train_per_class=1)
    images, labels, positions = splits.sample_images("database", per_class=2, seed=1)
    assert images.shape == (20, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(labels.sum(axis=0), 2)
    np.testing.assert_array_equal(labels, splits.labels("database")[positions])


@pytest.mark.parametrize("name, sizes", [("cifar10", (10, 20, 30)), ("cifar10-1", (10, 20, 50)),
                                         ("cifar10-2", (10, 50, 50))])
def test_cifar_protocols_on_fixture(cifar_root, name, sizes):
    train_per_class = 5 if name == "cifar10-2" else 2
    splits = load_splits(name, cifar_root, img_size=32, query_per_class=1, train_per_class=train_per_class)
    assert (len(splits.query), len(splits.train), len(splits.database)) == sizes
    assert splits.train[0][0].shape == (3, 32, 32) and splits.class_names[-1] == "truck"


def test_cifar_missing_default_dir_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no data_batch_1.*CIFAR-10 python version"):
        load_splits("cifar10", tmp_path / "nothing")


def test_list_dataset_splits(make_list_dataset):
    folder = make_list_dataset(n_classes=21, sizes={"train.txt": 21, "test.txt": 21, "database.txt": 42})
    splits = load_splits("nuswide_21", folder, img_size=32, database_limit=21)
    assert (len(splits.query), len(splits.train), len(splits.database)) == (21, 21, 21)
    assert splits.topk == 5000 and splits.class_names[0] == "class_0"
    for dataset in (splits.train, splits.query):
        image, label, index = dataset[2]
        assert image.shape == (3, 32, 32) and label.shape == (21,) and index == 2
    assert splits.labels("database").shape == (21, 21)
    assert splits.summary()["train_in_database"] is None  # different list files
    (folder / "classes.txt").write_text("\n".join(f"concept{i}" for i in range(21)))
    assert load_splits("nuswide_21", folder).class_names[20] == "concept20"
    (folder / "classes.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="classes.txt has 2 names, but nuswide_21 has 21 classes"):
        load_splits("nuswide_21", folder)


def test_list_dataset_errors_before_any_work(make_list_dataset):
    folder = make_list_dataset(n_classes=3, name="wrong_width")
    with pytest.raises(DataError, match="test.txt:1: 3 labels, but the dataset has 21 classes"):
        load_splits("nuswide_21", folder)
    with pytest.raises(FileNotFoundError, match="dataset folder .*missing does not exist"):
        load_splits("coco", folder / "missing")


def test_check_data(make_list_dataset, fashion_dir):
    report = check_data("fashion_mnist", fashion_dir)
    assert report["images"] == {"pool": 60} and report["per_class"]["pool"] == [6] * 10
    folder = make_list_dataset(n_classes=80, sizes={"train.txt": 2, "test.txt": 2, "database.txt": 3})
    assert check_data("coco", folder)["images"] == {"train.txt": 2, "test.txt": 2, "database.txt": 3}
    (folder / "images" / "database" / "0001.jpg").write_bytes(b"\xff\xd8 truncated")
    (folder / "images" / "test" / "0000.jpg").unlink()
    with pytest.raises(DataError, match=r"(?s)2 problem.*test.txt:1: image .* not found.*database.txt:2: image .*unreadable"):
        check_data("coco", folder, decode=True)


@pytest.fixture(scope="module")
def real_fashion_splits():
    if not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real Fashion-MNIST absent from {REAL_FASHION}: apt-get install dataset-fashion-mnist")
    return load_splits("fashion_mnist", seed=0, img_size=32)


def test_real_fashion_mnist_protocol(real_fashion_splits):
    summary = real_fashion_splits.summary()
    assert summary["sizes"] == {"query": 1000, "train": 5000, "database": 64000}
    assert summary["per_class"] == {"query": [100] * 10, "train": [500] * 10, "database": [6400] * 10}
    assert real_fashion_splits.topk is None and summary["train_in_database"] == 0
    image, label, _ = real_fashion_splits.database[63999]
    assert image.shape == (3, 32, 32) and label.sum() == 1
