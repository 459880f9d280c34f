"""The JPEG list-file data path at the paper's image size: decoding in workers, and streaming encodes.

- encoding a list-file split with decoding in 2 worker processes gives exactly the codes of the
  main-process path, in the same order;
- ``encode`` holds only codes: it reads images batch by batch, each batch after the previous one
  was encoded, never the whole split at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hhlib.data import load_splits
from hhlib.model import build
from hhlib.train import encode

pytestmark = pytest.mark.usefixtures("seed_single_thread")


def test_encode_with_decoding_workers_matches_the_main_process(make_list_dataset):
    folder = make_list_dataset(n_classes=21, sizes={"train.txt": 4, "test.txt": 4, "database.txt": 10})
    splits = load_splits("nuswide_21", folder, img_size=64)
    model = build("tiny32", bits=16, img_size=64).eval()
    codes, labels = encode(model, splits.database, "cpu", batch_size=4)
    codes_workers, labels_workers = encode(model, splits.database, "cpu", batch_size=4, num_workers=2)
    assert codes.shape == (10, 16)
    np.testing.assert_array_equal(codes_workers, codes)
    np.testing.assert_array_equal(labels_workers, labels)
    np.testing.assert_array_equal(labels, splits.labels("database"))


class _LoggedImages(torch.utils.data.Dataset):
    """Images made on demand; logs, per image read, how many images the model had encoded by then."""

    def __init__(self, n: int, size: int, model: torch.nn.Module) -> None:
        self.n, self.size, self.model, self.log = n, size, model, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        self.log.append((i, self.model.encoded))
        return torch.full((3, self.size, self.size), float(i % 5)), torch.zeros(2), i


def test_encode_streams_batch_by_batch():
    model = build("tiny32", bits=16).eval()
    model.encoded = 0
    model.register_forward_hook(lambda module, args, out: setattr(module, "encoded", module.encoded + len(out)))
    dataset = _LoggedImages(n=48, size=32, model=model)
    codes, _ = encode(model, dataset, "cpu", batch_size=8)
    assert codes.shape == (48, 16) and len(dataset.log) == 48
    # image i is read only once every image before its batch is encoded: one batch in memory at a time
    assert all(encoded == i // 8 * 8 for i, encoded in dataset.log), dataset.log
