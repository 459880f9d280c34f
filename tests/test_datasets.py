"""Tests for hhlib.datasets: IDX, CIFAR-10 batch and list-file readers, on generated fixtures."""

from __future__ import annotations

import gzip
import pickle
import re

import numpy as np
import pytest
import torchvision
from PIL import Image

from hhlib.datasets import (
    DataError,
    ImageFileList,
    parse_list_file,
    read_cifar10,
    read_fashion_mnist,
    read_idx,
    read_list_splits,
    verify_images,
)


def test_read_idx_round_trip(tmp_path, write_idx):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1, 0], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i.gz", images), 2051), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l.gz", labels)), labels)


def test_read_idx_bad_magic(tmp_path, write_idx):
    path = write_idx(tmp_path / "bad.gz", np.zeros((2, 2, 2), np.uint8), magic=1234)
    with pytest.raises(DataError, match="magic number 1234"):
        read_idx(path)


def test_read_idx_wrong_kind(tmp_path, write_idx):
    path = write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="does not hold images"):
        read_idx(path, expect_magic=2051)


def test_read_idx_truncated(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as f:
        f.write((2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (5, 28, 28)) + b"\0" * 100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_read_fashion_mnist_pools_train_then_test(fashion_dir):
    pool = read_fashion_mnist(fashion_dir, download=False)
    assert pool.images.shape == (60, 1, 28, 28) and str(pool.images.dtype) == "torch.uint8"
    assert pool.labels.shape == (60, 10) and pool.labels.dtype == np.float32
    np.testing.assert_array_equal(pool.labels.sum(axis=1), 1.0)
    np.testing.assert_array_equal(pool.labels.sum(axis=0), 6.0)
    # pixel [0, 0] of each fixture image holds its pooled position: train (40) first, then test (20)
    np.testing.assert_array_equal(pool.images[:, 0, 0, 0].numpy(), np.arange(60))


def test_read_fashion_mnist_torchvision_layout(fashion_dir, tmp_path):
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in fashion_dir.iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    assert len(read_fashion_mnist(tmp_path / "tv", download=False)) == 60


def test_read_fashion_mnist_offline_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(FileNotFoundError, match=r"(?s)train-images-idx3-ubyte.gz.*no network.*apt-get install dataset-fashion-mnist"):
        (tmp_path / "empty").mkdir()
        read_fashion_mnist(tmp_path / "empty")


def test_read_cifar10_root_or_batches_folder(cifar_root):
    pool = read_cifar10(cifar_root)
    assert pool.images.shape == (60, 3, 32, 32) and pool.labels.shape == (60, 10)
    np.testing.assert_array_equal(pool.labels.sum(axis=0), 6.0)
    np.testing.assert_array_equal(pool.images[:, 0, 0, 0].numpy(), np.arange(60))  # batches 1..5 then test
    same = read_cifar10(cifar_root / "cifar-10-batches-py")
    np.testing.assert_array_equal(same.labels, pool.labels)


def test_read_cifar10_missing_batch(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no data_batch_3.*CIFAR-10 python version"):
        read_cifar10(cifar_root)


def test_read_cifar10_corrupt_batch(cifar_root):
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 python batch \(KeyError"):
        read_cifar10(cifar_root)


def test_parse_list_file(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    entries, problems = parse_list_file(folder / "test.txt", folder, 3)
    assert problems == []
    assert len(entries) == 6 and entries.labels.shape == (6, 3) and entries.labels.dtype == np.float32
    np.testing.assert_array_equal(entries.labels[0], [1, 1, 0])  # class 0, plus class 1 on every third entry
    assert entries.paths[1] == "images/test/0001.jpg" and entries.where(1).endswith("test.txt:2")
    assert entries.load(1).mode == "RGB"


def _corrupt(folder):
    """Append every kind of bad line to test.txt; return the expected problem patterns."""
    with open(folder / "test.txt", "a") as f:
        f.write("images/test/0000.jpg 1 0\n")  # line 7: 2 labels, 3 classes
        f.write("images/test/0001.jpg\n")  # line 8: no labels
        f.write("images/test/0002.jpg 1 2 0\n")  # line 9: not 0/1
        f.write("images/test/missing.jpg 1 0 0\n")  # line 10: missing image
    return ["test.txt:7: 2 labels, but the dataset has 3 classes", "test.txt:8: no labels",
            "test.txt:9: label '2' is not 0 or 1", "test.txt:10: image .*missing.jpg not found"]


def test_read_list_splits_reports_all_problems_at_once(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    expected = _corrupt(folder)
    (folder / "images" / "train" / "0003.jpg").unlink()
    with pytest.raises(DataError, match="5 problem") as info:
        read_list_splits(folder, 3)
    message = str(info.value)
    for pattern in expected + [r"train.txt:4: image .*0003.jpg not found"]:
        assert any(re.search(pattern, p) for p in info.value.problems), pattern
    assert "build_nuswide21_lists" in message and "3 labels in 0/1" in message


def test_read_list_splits_missing_root_and_lists(make_list_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder .*nowhere does not exist"):
        read_list_splits(tmp_path / "nowhere", 3)
    folder = make_list_dataset(n_classes=3)
    (folder / "database.txt").unlink()
    (folder / "train.txt").unlink()
    with pytest.raises(FileNotFoundError, match="has no train.txt, database.txt: put the deep-hashing list files"):
        read_list_splits(folder, 3)
    with pytest.raises(FileNotFoundError, match="image root .*gone does not exist"):
        read_list_splits(folder, 3, image_root=tmp_path / "gone")


def test_verify_images_decode_finds_corrupt_file(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    (folder / "images" / "test" / "0002.jpg").write_bytes(b"not a jpeg")
    entries, _ = parse_list_file(folder / "test.txt", folder, 3)
    assert verify_images(entries) == []  # existence only
    problems = verify_images(entries, decode=True)
    assert len(problems) == 1 and "test.txt:3: image" in problems[0] and "unreadable" in problems[0]
    with pytest.raises(DataError, match=r"(?s)cannot be read.*test.txt:3: UnidentifiedImageError"):
        entries.load(2)
    with pytest.raises(DataError, match="unreadable"):
        read_list_splits(folder, 3, decode=True)


def test_empty_list_file_is_a_problem(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    (folder / "train.txt").write_text("\n")
    with pytest.raises(DataError, match="train.txt: no entries"):
        read_list_splits(folder, 3)


def test_data_error_lists_at_most_100_but_keeps_all():
    error = DataError("bad", [f"f:{i}: x" for i in range(150)])
    assert len(error.problems) == 150 and "and 50 more" in str(error) and "f:99: x" in str(error)
    assert "f:100: x" not in str(error)


def test_image_file_list_loads_png_as_rgb(tmp_path):
    Image.new("L", (5, 4), 128).save(tmp_path / "g.png")
    entries = ImageFileList(tmp_path, ["g.png"], np.ones((1, 2), np.float32), tmp_path / "l.txt", np.array([1]))
    image = entries.load(0)
    assert image.mode == "RGB" and image.size == (5, 4)
