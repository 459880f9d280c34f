"""The dataset registry and the one call that turns a dataset name into its three splits.

``DATASETS`` maps each name of HybridHash's evaluation (arXiv 2405.07524, Sec. 4.1; docs/method.md §5)
plus the offline default ``fashion_mnist`` to a :class:`DatasetSpec` (class count, class names,
default folder, reader, protocol, transform kind). :func:`load_splits` reads the files, draws the
protocol's query / train / database split with a seed (hhlib.splits) and wraps each split in a
torch ``Dataset`` yielding ``(image (3, S, S) float, label (C,) float32 multi-hot, index)``.
:func:`check_data` validates a dataset's files before any work, raising one clear error.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hhlib.datasets import DECODE_SAMPLE, ImageFileList, InMemoryImages, read_cifar10, read_fashion_mnist, read_list_splits
from hhlib.splits import PROTOCOLS, make_splits, random_order
from hhlib.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform, denormalize

REPO_ROOT = Path(__file__).resolve().parents[1]  # relative default folders (data/<name>) resolve against it
SPLIT_NAMES = ("query", "train", "database", "train_eval")
LIST_FILES = {"query": "test.txt", "train": "train.txt", "database": "database.txt"}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """What hhlib knows about one named dataset.

    Attributes:
        name: registry name.
        n_classes: C, the width of the multi-hot labels.
        class_names: C names; list-file sets read ``classes.txt`` from data_dir when present.
        default_data_dir: folder used when ``data_dir`` is None; a relative path resolves against
            the repository root.
        reader: ``reader(data_dir)`` -> an :class:`InMemoryImages` pool (pool protocols) or
            ``{list file name: ImageFileList}`` (list protocols).
        protocol: a ``hhlib.splits.PROTOCOLS`` name.
        transform: a ``hhlib.transforms.TRANSFORMS`` kind.
        layout: one line saying which files must be in data_dir (for messages and the README).
    """

    name: str
    n_classes: int
    class_names: tuple[str, ...]
    default_data_dir: str
    reader: Callable = field(repr=False)
    protocol: str
    transform: str
    layout: str

    @property
    def topk(self) -> int | None:
        """k of the protocol's mAP@k; None = the whole database."""
        return PROTOCOLS[self.protocol].topk


def _generic_names(n: int) -> tuple[str, ...]:
    return tuple(f"class_{i}" for i in range(n))


def _list_spec(name: str, n_classes: int) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        n_classes=n_classes,
        class_names=_generic_names(n_classes),
        default_data_dir=f"data/{name}",
        reader=functools.partial(read_list_splits, n_classes=n_classes),
        protocol=name,
        transform="resize_crop",
        layout=(
            f"train.txt, test.txt, database.txt (lines `relative/path.jpg` + {n_classes} labels in 0/1), "
            f"the images under the same folder, optional classes.txt ({n_classes} names)"
        ),
    )


_CIFAR_LAYOUT = "cifar-10-batches-py/data_batch_1..5 and test_batch (the CIFAR-10 python version)"

DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", 10, FASHION_MNIST_CLASSES, "/usr/share/datasets/fashion-mnist", read_fashion_mnist,
        "fashion_mnist", "direct",
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz (apt-get install dataset-fashion-mnist)",
    ),
    "cifar10": DatasetSpec("cifar10", 10, CIFAR10_CLASSES, "data/cifar10", read_cifar10, "cifar10", "direct",
                           _CIFAR_LAYOUT),
    "cifar10-1": DatasetSpec("cifar10-1", 10, CIFAR10_CLASSES, "data/cifar10", read_cifar10, "cifar10-1", "direct",
                             _CIFAR_LAYOUT),
    "cifar10-2": DatasetSpec("cifar10-2", 10, CIFAR10_CLASSES, "data/cifar10", read_cifar10, "cifar10-2", "direct",
                             _CIFAR_LAYOUT),
    "nuswide_21": _list_spec("nuswide_21", 21),
    "nuswide_81_m": _list_spec("nuswide_81_m", 81),
    "coco": _list_spec("coco", 80),
    "imagenet": _list_spec("imagenet", 100),
}


# Environment variables naming a dataset's folder: one setting reaches `make data` (the setup script)
# and every notebook, whose data_dir is None by default.
DATA_DIR_ENV = {"fashion_mnist": "FASHION_MNIST_DIR"}


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up in ``DATASETS``.

    Args:
        name: registry name.

    Returns:
        Its spec.

    Raises:
        KeyError: unknown name (lists the valid names).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}: valid names are {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Return the folder a dataset is read from.

    Args:
        name: registry name.
        data_dir: explicit folder; None = the folder in the dataset's environment variable
            (:data:`DATA_DIR_ENV`, e.g. ``FASHION_MNIST_DIR``, which the Makefile exports) when set,
            else the spec's default (relative defaults against the repository root).

    Returns:
        The folder (not checked for existence).

    Raises:
        KeyError: unknown name.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV.get(name, ""), "")
    if from_env:
        return Path(from_env).expanduser()
    default = Path(get_spec(name).default_data_dir)
    return default if default.is_absolute() else REPO_ROOT / default


def _class_names(spec: DatasetSpec, data_dir: Path) -> tuple[str, ...]:
    names_file = data_dir / "classes.txt"
    if PROTOCOLS[spec.protocol].source != "lists" or not names_file.is_file():
        return spec.class_names
    names = tuple(line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) != spec.n_classes:
        raise ValueError(
            f"{names_file} has {len(names)} names, but {spec.name} has {spec.n_classes} classes: "
            f"write one class name per line, in label order, or delete the file"
        )
    return names


class SplitDataset(Dataset):
    """One split: positions into a source, a transform, and the split's labels.

    Items are ``(image (3, S, S) float32, label (C,) float32 multi-hot, index int)``, where index is
    the item's position in this split. In-memory sources also serve whole batches through
    ``__getitems__`` (used by ``DataLoader``), transforming the batch in one tensor op.

    Args:
        source: the images (an :class:`InMemoryImages` pool or an :class:`ImageFileList`).
        indices: (N,) int64 positions into ``source``.
        transform: uint8 tensor batch -> float batch (in-memory) or PIL image -> float tensor (lists).
    """

    def __init__(self, source: InMemoryImages | ImageFileList, indices: np.ndarray, transform: Callable):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.labels = np.ascontiguousarray(source.labels[self.indices], dtype=np.float32)
        self._labels = torch.from_numpy(self.labels)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a split of {len(self)} items")
        i = int(i) % len(self)
        j = int(self.indices[i])
        if isinstance(self.source, InMemoryImages):
            image = self.transform(self.source.images[j])
        else:
            image = self.transform(self.source.load(j))
        return image, self._labels[i], i

    def __getitems__(self, positions: list[int]) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        if not isinstance(self.source, InMemoryImages):
            return [self[p] for p in positions]
        positions = [int(p) for p in positions]
        images = self.transform(self.source.images[torch.from_numpy(self.indices[positions])])
        labels = self._labels[positions]
        # unbind: one call making all per-item views (the default collate stacks them back)
        return list(zip(images.unbind(0), labels.unbind(0), positions))


@dataclass
class Splits:
    """The query / train / database splits of one dataset under its protocol.

    Attributes:
        name: dataset name.
        n_classes: C.
        class_names: C names.
        topk: k of the protocol's mAP@k; None = the whole database.
        query: eval-transform Dataset of the queries.
        train: train-transform Dataset of the training images.
        database: eval-transform Dataset of the database.
        train_eval: the training images with the eval transform (for encoding).
        params: every value used (dataset, data_dir, protocol, seed, per-class counts, database_limit, img_size, topk).
    """

    name: str
    n_classes: int
    class_names: tuple[str, ...]
    topk: int | None
    query: SplitDataset
    train: SplitDataset
    database: SplitDataset
    train_eval: SplitDataset
    params: dict = field(default_factory=dict)

    def split(self, split: str) -> SplitDataset:
        """Return a split's Dataset by name (``query``, ``train``, ``database``, ``train_eval``).

        Raises:
            KeyError: unknown split name (lists the valid names).
        """
        if split not in SPLIT_NAMES:
            raise KeyError(f"unknown split {split!r}: valid names are {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)

    def labels(self, split: str) -> np.ndarray:
        """Return a split's labels without decoding any image.

        Args:
            split: ``query``, ``train``, ``database`` or ``train_eval``.

        Returns:
            (N, C) float32 multi-hot labels, in the split's order.

        Raises:
            KeyError: unknown split name.
        """
        return self.split(split).labels

    def summary(self) -> dict:
        """Sizes and per-class counts of every split, plus the parameters used (for the data-prep notebook).

        Returns:
            ``{"name", "n_classes", "class_names", "topk", "sizes": {split: N},
            "per_class": {split: [count per class]}, "train_in_database": int, "params": {...}}``.
        """
        splits = ("query", "train", "database")
        same_source = self.train.source is self.database.source
        overlap = (
            int(np.intersect1d(self.train.indices, self.database.indices).size) if same_source else None
        )
        return {
            "name": self.name,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "topk": self.topk,
            "sizes": {s: len(self.split(s)) for s in splits},
            "per_class": {s: self.labels(s).sum(axis=0).astype(int).tolist() for s in splits},
            "train_in_database": overlap,
            "params": dict(self.params),
        }

    def sample_images(
        self, split: str = "database", per_class: int = 4, seed: int = 0
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Draw up to ``per_class`` images per class from a split, for a sample grid.

        Classes are visited in order; each takes the first images (seeded order) that carry it
        and were not taken by an earlier class. The eval transform is used (train -> train_eval).

        Args:
            split: split name.
            per_class: images per class (fewer if the split has fewer).
            seed: sampling seed.

        Returns:
            images (K, 3, S, S) float in [0, 1] (un-normalised), labels (K, C) float32, positions (K,) int64.
        """
        dataset = self.split("train_eval" if split == "train" else split)
        order = random_order(len(dataset), np.random.Generator(np.random.PCG64(seed)))
        taken = np.zeros(len(dataset), dtype=bool)
        chosen = []
        for c in range(self.n_classes):
            picked = order[(dataset.labels[order, c] > 0) & ~taken[order]][:per_class]
            taken[picked] = True
            chosen.append(picked)
        positions = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        if len(positions) == 0:
            return torch.zeros(0, 3, 1, 1), dataset.labels[:0], positions
        images = torch.stack([dataset[int(p)][0] for p in positions])
        return denormalize(images, IMAGENET_MEAN, IMAGENET_STD), dataset.labels[positions], positions


def _read(spec: DatasetSpec, data_dir: Path, decode: bool = False, decode_sample: int = 0):
    if PROTOCOLS[spec.protocol].source == "lists":
        return spec.reader(data_dir, decode=decode, decode_sample=decode_sample)
    return spec.reader(data_dir)


def load_splits(
    name: str,
    data_dir: str | Path | None = None,
    *,
    seed: int = 0,
    img_size: int | None = None,
    query_per_class: int | None = None,
    train_per_class: int | None = None,
    database_limit: int | None = None,
) -> Splits:
    """Read a dataset and split it under its protocol.

    Args:
        name: a ``DATASETS`` name.
        data_dir: folder with the dataset's files; None = the registry's default location.
        seed: split seed; the same seed gives the same split on any machine.
        img_size: side S of the images; None = 224 (docs/method.md §3). Use 32 for CPU runs.
        query_per_class: override of the protocol's query images per class (None = protocol value).
        train_per_class: override of the protocol's train images per class (None = protocol value).
        database_limit: keep a seeded class-stratified subset of this many database images (None = all).

    Returns:
        The splits; ``.params`` (and ``.summary()``) record every value used.

    Raises:
        KeyError: unknown dataset name (lists the valid names).
        FileNotFoundError: files missing (names them and how to get them).
        DataError: bad file content (every problem as file:line, with the fix).
        ValueError: a class too small for the requested per-class counts.
    """
    spec = get_spec(name)
    folder = resolve_data_dir(name, data_dir)
    protocol = PROTOCOLS[spec.protocol]
    data = _read(spec, folder)
    if protocol.source == "pool":
        sources = dict.fromkeys(("query", "train", "database"), data)
        labels = data.labels
    else:
        sources = {split: data[file] for split, file in LIST_FILES.items()}
        labels = {split: source.labels for split, source in sources.items()}
    indices = make_splits(
        protocol, labels, seed=seed, query_per_class=query_per_class, train_per_class=train_per_class,
        database_limit=database_limit,
    )
    train_transform = build_transform(spec.transform, True, img_size)
    eval_transform = build_transform(spec.transform, False, img_size)
    params = {"dataset": name, "data_dir": str(folder), **indices.params, "img_size": 224 if img_size is None else img_size}
    return Splits(
        name=name,
        n_classes=spec.n_classes,
        class_names=_class_names(spec, folder),
        topk=protocol.topk,
        query=SplitDataset(sources["query"], indices.query, eval_transform),
        train=SplitDataset(sources["train"], indices.train, train_transform),
        database=SplitDataset(sources["database"], indices.database, eval_transform),
        train_eval=SplitDataset(sources["train"], indices.train, eval_transform),
        params=params,
    )


def split_fingerprint(splits: Splits) -> str:
    """A hash of every split's indices and labels: equal fingerprints mean the same data in the same order.

    A checkpoint stores it, so that training refuses to resume on other data (changed files, another
    seed or split size) instead of silently continuing from weights fitted to something else.

    Args:
        splits: the result of :func:`load_splits`.

    Returns:
        16 hex digits of a SHA-256 over query, train and database indices and labels.
    """
    digest = hashlib.sha256()
    for part in (splits.query, splits.train, splits.database):
        digest.update(np.ascontiguousarray(part.indices, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(part.labels, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def check_data(
    name: str, data_dir: str | Path | None = None, *, decode: bool = False, split_options: Sequence[dict] = ()
) -> dict:
    """Validate a dataset's files before any work; raise one clear error listing every problem.

    Args:
        name: a ``DATASETS`` name.
        data_dir: folder with the files; None = the registry's default location.
        decode: list-file sets: fully decode every image (slow); otherwise every image's existence is
            checked and a sample of ``hhlib.datasets.DECODE_SAMPLE`` images per list is decoded.
        split_options: keyword sets of :func:`hhlib.splits.make_splits` (seed, query_per_class,
            train_per_class, database_limit) to draw on the data, so that a count larger than a
            class fails here rather than after the first notebook ran.

    Returns:
        ``{"name", "data_dir", "images": {part: count}, "per_class": {part: [count per class]}}``
        (part = ``"pool"`` or a list file name).

    Raises:
        KeyError: unknown dataset name.
        FileNotFoundError: files missing (names them and how to get them).
        DataError: bad content (every problem as file:line, with the fix).
        ValueError: a split that cannot be drawn (every one named, with its options).
    """
    spec = get_spec(name)
    folder = resolve_data_dir(name, data_dir)
    data = _read(spec, folder, decode=decode, decode_sample=DECODE_SAMPLE)
    parts = {"pool": data} if isinstance(data, InMemoryImages) else data
    _class_names(spec, folder)
    labels = data.labels if isinstance(data, InMemoryImages) else {s: data[f].labels for s, f in LIST_FILES.items()}
    problems = []
    for options in split_options:
        try:
            make_splits(spec.protocol, labels, **options)
        except ValueError as error:
            problems.append(f"split {options}: {error}")
    if problems:
        raise ValueError(f"{name} in {folder}: " + "; ".join(problems))
    return {
        "name": name,
        "data_dir": str(folder),
        "images": {part: len(source) for part, source in parts.items()},
        "per_class": {part: source.labels.sum(axis=0).astype(int).tolist() for part, source in parts.items()},
    }
