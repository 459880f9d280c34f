"""Training batches of an in-memory split, without a DataLoader: resized once, augmented per batch.

Fashion-MNIST and CIFAR-10 fit in memory (``hhlib.datasets.InMemoryImages``). For them the
deterministic half of the train transform (uint8 -> float, resize to the model's input) runs once
for the whole split, the split stays on the training device (on a GPU the images never cross the
bus again), and each step only gathers its rows and runs the random half (crop, flip, normalise)
on the whole batch at once. The batches are the ones a ``DataLoader`` over the same sampler gives,
value for value, with the same draws from the global torch RNG (``tests/test_batches.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch

from hhlib.datasets import InMemoryImages
from hhlib.transforms import TensorTransform

__all__ = ["RESIZED_CACHE_BYTES", "InMemoryBatches", "supports_in_memory"]

# Largest resized float split kept whole (ours: 5,000 Fashion-MNIST/CIFAR images at 32 px take
# 20-60 MB; at 224 px they would take 3 GB, so there the uint8 split is kept and each batch is resized).
RESIZED_CACHE_BYTES = 1 << 30


def supports_in_memory(dataset: object) -> bool:
    """Whether ``dataset`` is a split of an in-memory image pool with a batched tensor transform."""
    source = getattr(dataset, "source", None)
    return isinstance(source, InMemoryImages) and isinstance(getattr(dataset, "transform", None), TensorTransform)


class InMemoryBatches:
    """Iterate ``(images, labels, indices)`` batches of an in-memory split in a sampler's order.

    Args:
        dataset: a ``hhlib.data.SplitDataset`` over an :class:`InMemoryImages` pool with a
            :class:`TensorTransform` (check with :func:`supports_in_memory`).
        sampler: yields split positions (e.g. a ``DistributedSampler``); re-iterated every epoch.
        batch_size: images per batch (the last batch may be smaller, as ``drop_last=False``).
        device: where the split and the batches live.

    Raises:
        ValueError: the dataset is not in memory, or batch_size < 1.
    """

    def __init__(self, dataset: object, sampler: Sized, batch_size: int, device: torch.device) -> None:
        if not supports_in_memory(dataset):
            raise ValueError(
                f"{type(dataset).__name__} is not an in-memory split with a TensorTransform: "
                "use a torch DataLoader for image-list datasets"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.transform: TensorTransform = dataset.transform
        self.sampler = sampler
        self.batch_size = batch_size
        self.device = torch.device(device)
        images = dataset.source.images[torch.from_numpy(dataset.indices)]
        side = self.transform.img_size
        resized_bytes = images.shape[0] * images.shape[1] * side * side * 4
        self.resized = resized_bytes <= RESIZED_CACHE_BYTES
        self.images = (self.transform.resize(images) if self.resized else images).to(self.device)
        self.labels = torch.from_numpy(dataset.labels).to(self.device)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        for start in range(0, len(order), self.batch_size):
            positions = order[start : start + self.batch_size]
            rows = positions.to(self.device, non_blocking=True)
            images = self.images[rows]
            if not self.resized:
                images = self.transform.resize(images)
            yield self.transform.finish(images), self.labels[rows], rows
