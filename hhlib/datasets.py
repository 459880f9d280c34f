"""Readers for the on-disk dataset formats: images plus multi-hot labels.

One reader per format (HybridHash paper, Sec. 4.1 and docs/method.md §5 name the datasets):

- Fashion-MNIST IDX gz files (``train-images-idx3-ubyte.gz`` ...), all 70,000 images pooled;
- CIFAR-10 python batches (torchvision layout ``cifar-10-batches-py/data_batch_1..5, test_batch``),
  all 60,000 images pooled as the deep-hashing protocols (DeepHash-pytorch) do;
- list files, the format every deep-hashing codebase uses: one line per image,
  ``relative/path.jpg 0 1 0 ...`` (C labels in 0/1), with a root folder for the images.

Small sets are held in memory as uint8 tensors (:class:`InMemoryImages`) so that batches are
produced by tensor ops, not PIL; list-file sets (:class:`ImageFileList`) decode one image per item.
Bad input never ends in a bare ``KeyError`` or a PIL traceback: list files are validated before
any work and every problem (file:line) is reported at once in one :class:`DataError`.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import pickle
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
MAX_LISTED_PROBLEMS = 100  # an error message lists this many problems; DataError.problems holds all

FASHION_MNIST_FIX = (
    "install Debian's package (`apt-get install dataset-fashion-mnist`, files land in "
    "/usr/share/datasets/fashion-mnist), or put the four files {files} into {data_dir}, or pass a "
    "writable data_dir on a machine with internet so torchvision can download them"
)


class DataError(ValueError):
    """Dataset files exist but their content is wrong; ``problems`` lists every one found.

    Args:
        summary: one sentence saying what was checked and how to fix it.
        problems: every problem, each ``"file:line: what is wrong"``.
    """

    def __init__(self, summary: str, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(shown)
        lines = [f"{summary} ({len(self.problems)} problem(s)):"] + [f"  {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more} more (all of them are in this error's .problems)")
        super().__init__("\n".join(lines))


# The only globals a CIFAR-10 python batch (or any pickle hhlib reads) may name: numpy's array
# reconstruction helpers (under numpy 1 and numpy 2 module names) and the bytes codec of protocol-2
# pickles. Everything else (os.system, builtins.eval, ...) is refused, so a crafted file cannot run code.
SAFE_PICKLE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, bytes, str, numbers and numpy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: a data pickle may hold only dicts, lists, bytes, "
                "str, numbers and numpy arrays (a file naming anything else is not a dataset file)"
            )
        return super().find_class(module, name)


def safe_pickle_load(handle, encoding: str = "ASCII") -> object:
    """Unpickle a data file without running code from it (only :data:`SAFE_PICKLE_GLOBALS` are admitted).

    Args:
        handle: binary file object.
        encoding: how Python 2 ``str`` objects are decoded (``"bytes"`` keeps them as bytes, as CIFAR needs).

    Returns:
        The unpickled object.

    Raises:
        pickle.UnpicklingError: the pickle names a global outside the allowed set, or is malformed.
    """
    return _SafeUnpickler(handle, encoding=encoding).load()


@dataclass
class InMemoryImages:
    """A small image set held in memory.

    Attributes:
        images: (N, C, H, W) uint8 tensor, C = 1 (grayscale) or 3 (RGB).
        labels: (N, n_classes) float32 multi-hot labels.
        source: where the images were read from (for messages).
    """

    images: torch.Tensor
    labels: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageFileList:
    """One list file: image paths relative to ``root`` and their multi-hot labels.

    Attributes:
        root: folder the paths are relative to.
        paths: N paths as written in the list file.
        labels: (N, n_classes) float32 multi-hot labels.
        list_file: the list file read.
        line_numbers: (N,) int, 1-based line of each entry in ``list_file`` (for messages).
    """

    root: Path
    paths: list[str]
    labels: np.ndarray
    list_file: Path
    line_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, i: int) -> str:
        """Return ``"list_file:line"`` of entry ``i``, for messages."""
        return f"{self.list_file}:{int(self.line_numbers[i])}"

    def load(self, i: int) -> Image.Image:
        """Decode entry ``i`` as an RGB PIL image.

        Args:
            i: position in this list.

        Returns:
            The RGB image.

        Raises:
            DataError: the file is missing or cannot be decoded (names file, line and fix).
        """
        path = self.root / self.paths[i]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(
                f"image {path} cannot be read: replace or remove it, then check all images with "
                f"hhlib.data.check_data(name, data_dir, decode=True)",
                [f"{self.where(i)}: {type(error).__name__}: {error}"],
            ) from error


def _one_hot(classes: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.zeros((len(classes), n_classes), dtype=np.float32)
    labels[np.arange(len(classes)), classes] = 1.0
    return labels


def _gzip_problem(path: str, error: BaseException) -> str:
    """Say in words why a .gz file could not be read."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:2] != b"\x1f\x8b":
        looks_html = head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml"))
        return "not gzip data" + (" (it is an HTML page, e.g. a login or error page)" if looks_html else "")
    if isinstance(error, EOFError):
        return "truncated (the gzip stream ends early)"
    return f"corrupt gzip data ({type(error).__name__}: {error})"


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise DataError(
            f"{path} is not a readable gzip file: re-download it (an HTML page saved as .gz, an interrupted "
            "download or a damaged disk all end here)",
            [f"{path}: {_gzip_problem(path, error)}"],
        ) from error
    if len(data) < 8:
        raise DataError(f"{path} is not an IDX file: re-download it", [f"{path}: only {len(data)} bytes"])
    magic = int.from_bytes(data[0:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise DataError(
            f"{path} is not an IDX ubyte file: re-download it",
            [f"{path}: magic number {magic} is neither {IDX_IMAGES_MAGIC} (images) nor {IDX_LABELS_MAGIC} (labels)"],
        )
    n_dims = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * d : 8 + 4 * d], "big") for d in range(n_dims)]
    offset = 4 + 4 * n_dims
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataError(
            f"{path} is truncated or corrupt: re-download it",
            [f"{path}: header says {dims} = {expected} bytes, file holds {len(data) - offset}"],
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)
    array.flags.writeable = False
    return array


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Read one gzipped IDX ubyte file (the MNIST / Fashion-MNIST format).

    Args:
        path: the ``*-ubyte.gz`` file.
        expect_magic: 2051 for images, 2049 for labels; None accepts either.

    Returns:
        Read-only uint8 array, (N, H, W) for images or (N,) for labels.

    Raises:
        FileNotFoundError: no such file.
        DataError: wrong magic number, or the payload size disagrees with the header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    stat = path.stat()
    array = _read_idx_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    if expect_magic is not None and magic != expect_magic:
        kind = "images" if expect_magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(
            f"{path} does not hold {kind}: check the file names",
            [f"{path}: magic number {magic}, expected {expect_magic}"],
        )
    return array


def _find_fashion_mnist(data_dir: Path) -> Path | None:
    # Debian puts the files directly in the folder; torchvision under FashionMNIST/raw.
    for folder in (data_dir, data_dir / "FashionMNIST" / "raw"):
        if all((folder / name).is_file() for name in FASHION_MNIST_FILES):
            return folder
    return None


# Folders a reader never writes into: a download there needs root and would mix hhlib's files with the system's.
SYSTEM_DATA_PREFIXES = ("/usr", "/etc", "/opt", "/var", "/lib", "/bin", "/sbin", "/boot", "/proc", "/sys")


def _no_download_reason(data_dir: Path) -> str:
    """Why a download into ``data_dir`` is not tried ("" = it may be): reading never creates folders."""
    resolved = data_dir.expanduser().resolve()
    if str(resolved) == "/" or str(resolved).startswith(SYSTEM_DATA_PREFIXES):
        return f"no download into the system folder {resolved}"
    if not data_dir.is_dir():
        return f"{data_dir} does not exist and reading does not create folders"
    if not os.access(data_dir, os.W_OK):
        return f"{data_dir} is not writable"
    return ""


def read_fashion_mnist(data_dir: str | Path, *, download: bool = True) -> InMemoryImages:
    """Read Fashion-MNIST's four IDX gz files and pool train + test (70,000 images).

    Args:
        data_dir: folder holding the files (or torchvision's ``FashionMNIST/raw`` below it).
        download: when the files are missing, try ``torchvision.datasets.FashionMNIST(data_dir,
            download=True)`` (needs internet and an existing, writable ``data_dir`` outside the
            system folders such as /usr; otherwise no download is tried and nothing is created).

    Returns:
        Images (70000, 1, 28, 28) uint8, train images first then test; one-hot labels (70000, 10).

    Raises:
        FileNotFoundError: files missing and no download possible; says where files must be.
        DataError: files are corrupt (not gzip, truncated, bad CRC, wrong header) or the counts
            disagree; all four files are checked and every bad one is named.
    """
    data_dir = Path(data_dir)
    folder = _find_fashion_mnist(data_dir)
    if folder is None:
        missing = [name for name in FASHION_MNIST_FILES if not (data_dir / name).is_file()]
        reason = "download=False" if not download else _no_download_reason(data_dir)
        if not reason:
            try:
                import torchvision

                torchvision.datasets.FashionMNIST(str(data_dir), train=True, download=True)
                torchvision.datasets.FashionMNIST(str(data_dir), train=False, download=True)
                reason = ""
            except Exception as error:  # offline, read-only folder, mirror down: all end in the same advice
                reason = f"torchvision download failed: {type(error).__name__}: {error}"
            folder = _find_fashion_mnist(data_dir)
        if folder is None:
            raise FileNotFoundError(
                f"Fashion-MNIST files missing in {data_dir}: {', '.join(missing)} ({reason}). Fix: "
                + FASHION_MNIST_FIX.format(files=", ".join(FASHION_MNIST_FILES), data_dir=data_dir)
            )
    parts, problems = [], []
    for prefix in ("train", "t10k"):
        pair = []
        for kind, magic in (("images-idx3", IDX_IMAGES_MAGIC), ("labels-idx1", IDX_LABELS_MAGIC)):
            try:
                pair.append(read_idx(folder / f"{prefix}-{kind}-ubyte.gz", magic))
            except DataError as error:  # read all four files: every bad one is reported at once
                problems += error.problems
        if len(pair) < 2:
            continue
        images, classes = pair
        if len(images) != len(classes) or (len(classes) and classes.max() >= 10):
            problems.append(f"{folder}/{prefix}-*: {len(images)} images, {len(classes)} labels, max label {classes.max()}")
            continue
        parts.append((images, classes))
    if problems:
        raise DataError(
            f"Fashion-MNIST files in {folder} are damaged: delete the files named below and get them again ("
            + FASHION_MNIST_FIX.format(files=", ".join(FASHION_MNIST_FILES), data_dir=folder) + ")",
            problems,
        )
    images = np.concatenate([p[0] for p in parts])[:, None]
    classes = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return InMemoryImages(torch.from_numpy(images), _one_hot(classes, 10), source=str(folder))


def _cifar_folder(root: Path) -> Path:
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
            return folder
    return root / "cifar-10-batches-py"


def read_cifar10(root: str | Path) -> InMemoryImages:
    """Read the CIFAR-10 python batches and pool the 50,000 train and 10,000 test images.

    Args:
        root: torchvision's root (holding ``cifar-10-batches-py/``) or that batches folder itself.

    Returns:
        Images (60000, 3, 32, 32) uint8, data_batch_1..5 then test_batch; one-hot labels (60000, 10).

    Raises:
        FileNotFoundError: a batch file is missing (names it and the fix).
        DataError: a batch is not a CIFAR-10 pickle (missing keys, wrong shape).
    """
    folder = _cifar_folder(Path(root))
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 folder {folder} has no {', '.join(missing)}: download the 'CIFAR-10 python version' "
            f"(cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html) and extract it into "
            f"{Path(root)}, or where online run torchvision.datasets.CIFAR10({str(root)!r}, download=True)"
        )
    images, classes, problems = [], [], []
    for name in CIFAR10_FILES:
        path = folder / name
        try:
            with open(path, "rb") as f:
                batch = safe_pickle_load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except (KeyError, TypeError, ValueError, AttributeError, pickle.UnpicklingError, EOFError) as error:
            problems.append(f"{path}: not a CIFAR-10 python batch ({type(error).__name__}: {error})")
            continue
        if len(data) != len(labels) or (len(labels) and (labels.min() < 0 or labels.max() >= 10)):
            problems.append(f"{path}: {len(data)} images but {len(labels)} labels in 0..{labels.max()}")
            continue
        images.append(data)
        classes.append(labels)
    if problems:
        raise DataError(f"CIFAR-10 batches in {folder} are corrupt: re-download the CIFAR-10 python version", problems)
    return InMemoryImages(
        torch.from_numpy(np.concatenate(images)), _one_hot(np.concatenate(classes), 10), source=str(folder)
    )


def _parse_labels(tokens: list[str]) -> list[float] | None:
    if all(t == "0" or t == "1" for t in tokens):
        return [1.0 if t == "1" else 0.0 for t in tokens]
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return None
    return values if all(v in (0.0, 1.0) for v in values) else None


class DataWarning(UserWarning):
    """Dataset files that load but hold something a user should know about (duplicates, unlabelled images...)."""


def _warn_list(summary: str, where: list[str]) -> None:
    if where:
        shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        warnings.warn(f"{summary}: {shown}", DataWarning, stacklevel=3)


def parse_list_file(list_file: str | Path, root: str | Path, n_classes: int) -> tuple[ImageFileList, list[str]]:
    """Parse one list file without touching the images; collect every line problem.

    Each non-blank line is ``relative/path.jpg`` followed by ``n_classes`` labels in 0/1.
    Problems (errors): a wrong label count, a label not 0/1, a path containing whitespace, one path
    listed with two label sets. Warnings (:class:`DataWarning`, the line is used once): a repeated
    line, an image with no label at all.

    Args:
        list_file: the ``train.txt`` / ``test.txt`` / ``database.txt`` file.
        root: folder the image paths are relative to.
        n_classes: the dataset's class count C.

    Returns:
        The parsed entries (bad lines dropped) and the problems, each ``"file:line: ..."``.

    Raises:
        FileNotFoundError: the list file does not exist.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"list file {list_file} does not exist")
    paths, rows, lines, problems = [], [], [], []
    first_seen: dict[str, tuple[int, list[float]]] = {}
    duplicates, unlabelled = [], []
    with open(list_file, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{list_file}:{number}"
            labels = tokens[1:]
            if not labels:
                problems.append(f"{where}: no labels after the path (expected {n_classes} labels in 0/1)")
                continue
            path_words = tokens[: len(tokens) - n_classes]  # the path, when the last n_classes tokens are labels
            if len(path_words) > 1 and _parse_labels(tokens[-n_classes:]) and _parse_labels(path_words[1:]) is None:
                path = " ".join(tokens[: len(tokens) - n_classes])
                problems.append(f"{where}: the path {path!r} contains whitespace, which list files use between "
                                "fields: rename the image (e.g. spaces -> '_') and its line")
                continue
            if len(labels) != n_classes:
                problems.append(f"{where}: {len(labels)} labels, but the dataset has {n_classes} classes")
                continue
            values = _parse_labels(labels)
            if values is None:
                bad = next(t for t in labels if _parse_labels([t]) is None)
                problems.append(f"{where}: label {bad!r} is not 0 or 1")
                continue
            if tokens[0] in first_seen:
                earlier, earlier_values = first_seen[tokens[0]]
                if earlier_values != values:
                    problems.append(f"{where}: {tokens[0]} is listed at line {earlier} with other labels: "
                                    "one image has one label set; keep the right line")
                else:
                    duplicates.append(f"{where} repeats line {earlier}")
                continue
            first_seen[tokens[0]] = (number, values)
            if not any(values):
                unlabelled.append(where)
            paths.append(tokens[0])
            rows.append(values)
            lines.append(number)
    if not paths and not problems:
        problems.append(f"{list_file}: no entries")
    _warn_list(f"{list_file}: {len(duplicates)} duplicate line(s) (each image is kept once)", duplicates)
    _warn_list(f"{list_file}: {len(unlabelled)} image(s) with no label at all (as queries they have no relevant "
               "database item and score AP 0)", unlabelled)
    labels = np.array(rows, dtype=np.float32).reshape(len(rows), n_classes)
    entries = ImageFileList(Path(root), paths, labels, list_file, np.array(lines, dtype=np.int64))
    return entries, problems


# Images per list file decoded by the pre-run check without --decode: enough to catch a folder of
# corrupt or non-image files in seconds (ours; decode=True checks them all).
DECODE_SAMPLE = 32


def verify_images(entries: ImageFileList, *, decode: bool = False, decode_sample: int = 0) -> list[str]:
    """Check that every image of a list exists and that the chosen ones decode.

    Args:
        entries: a parsed list file.
        decode: fully decode every image with PIL (slow: minutes for 200,000 images).
        decode_sample: without ``decode``, fully decode this many images, evenly spread over the list
            (0 = existence only).

    Returns:
        Every problem found, each ``"file:line: ..."``; empty when all is well.
    """
    n = len(entries.paths)
    to_decode = set(range(n)) if decode else set(np.linspace(0, n - 1, min(decode_sample, n)).astype(int).tolist())
    problems = []
    for i, relative in enumerate(entries.paths):
        path = entries.root / relative
        if not path.is_file():
            problems.append(f"{entries.where(i)}: image {path} not found")
            continue
        if i in to_decode:
            try:
                with Image.open(path) as image:
                    image.convert("RGB").load()
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                problems.append(f"{entries.where(i)}: image {path} is unreadable ({type(error).__name__}: {error})")
    return problems


def _warn_overlap(lists: dict[str, ImageFileList], query_list: str) -> None:
    """Warn when a query image is also in another list (it would find itself: mAP is inflated)."""
    if query_list not in lists:
        return
    queries = set(lists[query_list].paths)
    for name, entries in lists.items():
        shared = sorted(queries.intersection(entries.paths)) if name != query_list else []
        _warn_list(f"{len(shared)} image(s) of {query_list} are also in {name} (a query that is in the database "
                   "finds itself and inflates mAP; remove them from one list)", shared)


LIST_FIX = (
    "fix or remove those lines/images; the lists must hold `relative/path.jpg` then {n_classes} labels "
    "in 0/1 per line, with paths relative to {root} (nuswide_21 lists can be built with "
    "hhlib.nuswide.build_nuswide21_lists)"
)


def read_list_splits(
    data_dir: str | Path,
    n_classes: int,
    *,
    list_names: tuple[str, ...] = ("train.txt", "test.txt", "database.txt"),
    image_root: str | Path | None = None,
    decode: bool = False,
    decode_sample: int = 0,
    query_list: str = "test.txt",
) -> dict[str, ImageFileList]:
    """Read and validate a list-file dataset: every problem of every list is reported at once.

    Args:
        data_dir: folder holding the list files.
        n_classes: the dataset's class count C.
        list_names: the list files to read, relative to ``data_dir``.
        image_root: folder the image paths are relative to; None = ``data_dir``.
        decode: also fully decode every image (see :func:`verify_images`).
        decode_sample: without ``decode``, decode this many images per list (the pre-run check uses
            :data:`DECODE_SAMPLE`).
        query_list: the list whose images are the queries; one also found in another list is warned about.

    Returns:
        List file name -> parsed entries.

    Raises:
        FileNotFoundError: ``data_dir``, the image root or a list file is missing (all named).
        DataError: bad lines or missing/unreadable images, each as ``file:line``.
    """
    data_dir = Path(data_dir)
    root = Path(image_root) if image_root is not None else data_dir
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"dataset folder {data_dir} does not exist: put {', '.join(list_names)} and the images there, "
            f"or pass data_dir= pointing at them"
        )
    if not root.is_dir():
        raise FileNotFoundError(f"image root {root} does not exist: pass the folder the list paths are relative to")
    missing = [name for name in list_names if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir} has no {', '.join(missing)}: put the deep-hashing list files there "
            f"(one line per image: relative/path.jpg then {n_classes} labels in 0/1); "
            f"nuswide_21 lists can be built with hhlib.nuswide.build_nuswide21_lists"
        )
    lists, problems = {}, []
    for name in list_names:
        entries, line_problems = parse_list_file(data_dir / name, root, n_classes)
        problems += line_problems
        problems += verify_images(entries, decode=decode, decode_sample=decode_sample)
        lists[name] = entries
    _warn_overlap(lists, query_list)
    if problems:
        raise DataError(
            f"dataset in {data_dir} has bad list lines or images: " + LIST_FIX.format(n_classes=n_classes, root=root),
            problems,
        )
    return lists
