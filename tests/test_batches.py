"""Tests for hhlib.batches: the in-memory training batches equal a DataLoader's, value for value."""

import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from hhlib import batches
from hhlib.batches import InMemoryBatches, supports_in_memory
from hhlib.data import load_splits
from hhlib.transforms import build_transform


def _train_split(fashion_dir, img_size=32):
    splits = load_splits("fashion_mnist", fashion_dir, img_size=img_size, query_per_class=1, train_per_class=3)
    splits.train.transform = build_transform("direct", True, img_size, pad=2, flip=True)
    return splits.train


def _epochs(loader, sampler, seed, epochs=2):
    torch.manual_seed(seed)
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out += [(images.clone(), labels.clone(), torch.as_tensor(indices)) for images, labels, indices in loader]
    return out


@pytest.mark.parametrize("cache_bytes", [batches.RESIZED_CACHE_BYTES, 0])  # resized once / resized per batch
def test_in_memory_batches_equal_dataloader(fashion_dir, monkeypatch, cache_bytes):
    monkeypatch.setattr(batches, "RESIZED_CACHE_BYTES", cache_bytes)
    train = _train_split(fashion_dir)
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=5)
    loader = DataLoader(train, batch_size=4, sampler=sampler, generator=torch.Generator())  # as fit() builds it
    reference = _epochs(loader, sampler, seed=1)
    fast = InMemoryBatches(train, sampler, 4, torch.device("cpu"))
    assert fast.resized == (cache_bytes > 0)
    assert len(fast) == len(reference) // 2 == 8  # 30 images in batches of 4: 7 full + 1 of 2
    got = _epochs(fast, sampler, seed=1)
    for (images, labels, indices), (ref_images, ref_labels, ref_indices) in zip(got, reference, strict=True):
        assert torch.equal(indices, ref_indices)
        assert torch.equal(labels, ref_labels)
        assert torch.equal(images, ref_images)  # same crops and flips: same draws from the global RNG


def test_in_memory_batches_refuse_other_datasets(fashion_dir):
    train = _train_split(fashion_dir)
    assert supports_in_memory(train)
    with pytest.raises(ValueError, match="not an in-memory split"):
        InMemoryBatches(list(range(4)), range(4), 2, torch.device("cpu"))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        InMemoryBatches(train, range(4), 0, torch.device("cpu"))
