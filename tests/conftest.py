"""Shared test fixtures: tiny datasets written in the exact on-disk formats, and a seeded single-thread mode.

- ``seed_single_thread``: torch seed 0 and one intra-op thread for the test (tiny ops only lose time to
  thread hand-offs); modules opt in with ``pytestmark = pytest.mark.usefixtures("seed_single_thread")``.

- ``fashion_dir``: Fashion-MNIST IDX gz files (40 train + 20 test images, 28x28, 6 per class pooled).
- ``cifar_root``: CIFAR-10 python batches in torchvision's layout (6 batches x 10 images, 6 per class).
- ``make_list_dataset``: deep-hashing list files (train/test/database.txt) with real tiny JPEGs.
- ``make_nuswide_release``: the NUS-WIDE release files (image list, Labels_<concept>.txt, Concepts81.txt).
- ``write_idx``: the IDX gz writer itself (for corrupt-file tests).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def _write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = (2051 if array.ndim == 3 else 2049) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


@pytest.fixture
def write_idx():
    """Return the IDX gz writer ``write_idx(path, uint8 array, magic=None) -> path``."""
    return _write_idx


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    """Fashion-MNIST IDX files: 4 train + 2 test images per class; pixel [0, 0] holds the pooled position."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion"
    offset = 0
    for prefix, per_class in (("train", 4), ("t10k", 2)):
        classes = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = rng.integers(0, 256, size=(len(classes), 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(offset, offset + len(classes))
        offset += len(classes)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", classes)
    return folder


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """CIFAR-10 python batches (torchvision layout): 6 batches of 10 images, one per class; returns the root."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]):
        labels = rng.permutation(10).tolist()
        data = rng.integers(0, 256, size=(10, 3072), dtype=np.uint8)
        data[:, 0] = np.arange(10 * b, 10 * b + 10)
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(10)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder.parent


def _list_labels(n: int, n_classes: int, start: int, multi_label: bool) -> np.ndarray:
    labels = np.zeros((n, n_classes), dtype=np.int64)
    for i in range(n):
        labels[i, (start + i) % n_classes] = 1
        if multi_label and i % 3 == 0:
            labels[i, (start + i + 1) % n_classes] = 1
    return labels


@pytest.fixture
def make_list_dataset(tmp_path: Path):
    """Return ``make(n_classes=3, sizes=None, multi_label=True, name="lists") -> folder`` writing list files + JPEGs.

    Entry i of a list carries class ``i % C`` (plus the next class on every third entry when
    multi_label); every entry has its own 12x10 JPEG under ``images/<list>/``.
    """

    def make(n_classes: int = 3, sizes: dict | None = None, multi_label: bool = True, name: str = "lists") -> Path:
        sizes = sizes or {"train.txt": 2 * n_classes, "test.txt": 2 * n_classes, "database.txt": 4 * n_classes}
        folder = tmp_path / name
        start = 0
        for list_name, n in sizes.items():
            stem = list_name.split(".")[0]
            (folder / "images" / stem).mkdir(parents=True, exist_ok=True)
            labels = _list_labels(n, n_classes, start, multi_label)
            start += n
            lines = []
            for i in range(n):
                relative = f"images/{stem}/{i:04d}.jpg"
                colour = (i * 17 % 256, i * 31 % 256, i * 7 % 256)
                Image.new("RGB", (12, 10), colour).save(folder / relative, "JPEG")
                lines.append(relative + " " + " ".join(map(str, labels[i])))
            (folder / list_name).write_text("\n".join(lines) + "\n")
        return folder

    return make


NUSWIDE_CONCEPTS = ["animal", "beach", "clouds", "dog", "sky"]
# positives per concept over the 40 images below: animal 12, beach 4, clouds 12, dog 9, sky 20
NUSWIDE_POSITIVES = {
    "animal": range(0, 12),
    "beach": range(36, 40),
    "clouds": range(12, 24),
    "dog": range(3, 12),
    "sky": range(0, 40, 2),
}


@pytest.fixture
def make_nuswide_release(tmp_path: Path):
    """Return ``make(concepts_file=True) -> release_dir`` writing a 40-image NUS-WIDE release.

    Top 3 by frequency: sky 20, then animal 12 and clouds 12 (tie, by name) ahead of dog 9; images
    25, 27, ..., 39 carry none of those three (37 and 39 only beach), so 32 images are kept. The image
    list mixes Windows absolute (``C:\\ImageData\\Flickr\\...``) and relative (``actor\\...``) paths.
    """

    def make(concepts_file: bool = True) -> Path:
        release = tmp_path / "nuswide_release"
        (release / "ImageList").mkdir(parents=True)
        (release / "Groundtruth" / "AllLabels").mkdir(parents=True)
        paths = [
            (f"C:\\ImageData\\Flickr\\actor\\{i:04d}_{1000 + i}.jpg" if i % 2 else f"beach\\{i:04d}_{1000 + i}.jpg")
            for i in range(40)
        ]
        (release / "ImageList" / "Imagelist.txt").write_text("\r\n".join(paths) + "\r\n")
        for concept in NUSWIDE_CONCEPTS:
            values = np.zeros(40, dtype=np.int64)
            values[list(NUSWIDE_POSITIVES[concept])] = 1
            (release / "Groundtruth" / "AllLabels" / f"Labels_{concept}.txt").write_text(
                "\n".join(map(str, values)) + "\n"
            )
        if concepts_file:
            (release / "Concepts81.txt").write_text("\n".join(NUSWIDE_CONCEPTS) + "\n")
        return release

    return make


@pytest.fixture
def seed_single_thread():
    """Fixed torch seed and one intra-op thread for one test; the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
