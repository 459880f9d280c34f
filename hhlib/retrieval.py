"""Image retrieval with a trained run: build a Hamming index of images, search it with an image file.

HybridHash (ICMR 2024, arXiv 2405.07524), Sec. 4: retrieval ranks a database by the Hamming
distance of binary codes. This module connects a trained run (its checkpoint) to
:class:`hhlib.index.HammingIndex`: it encodes a folder of image files, or takes the database codes
of the run's own dataset, saves the index with a note of the run that made it, and answers a query
image with the top k, exact under :data:`hhlib.hamming.TIE_RULE`. Because codes tie often (16 bits
give 17 possible distances), every answer says, for each distance it shows, how many database
items share that distance and how many of them made the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hhlib import artifacts
from hhlib.hamming import TIE_RULE, hamming_distances, rank
from hhlib.index import HammingIndex

__all__ = [
    "IMAGE_SUFFIXES", "RUN_FILE", "Gallery", "SearchResult", "gallery_queries", "build_dataset_index", "build_folder_index", "encode_images",
    "list_images", "load_index", "load_run", "save_index", "search_image",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
RUN_FILE = "run.json"  # written next to the index files: which run's network encodes queries


def _checkpoint_path(run: str | Path) -> Path:
    path = Path(run)
    checkpoint = path / artifacts.CHECKPOINT_FILE if path.is_dir() else path
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{run} is not a trained run: expected a run folder holding {artifacts.CHECKPOINT_FILE} "
            f"(<out_dir>/<dataset>/checkpoints/<run name>/, written by `hhlib train`) or the checkpoint file"
        )
    return checkpoint


def load_run(run: str | Path, device: str = "auto") -> tuple[torch.nn.Module, Any]:
    """The trained network of a run and its TrainConfig.

    Args:
        run: a run folder (holding checkpoint.pt) or its checkpoint file.
        device: where to put the network (hhlib.runtime.resolve_device).

    Returns:
        (network in eval mode, TrainConfig of the run).

    Raises:
        FileNotFoundError: no checkpoint there.
    """
    from hhlib.train import TrainConfig, load_trained_model

    checkpoint = _checkpoint_path(run)
    config = TrainConfig.from_dict(artifacts.load_checkpoint(checkpoint)["config"])
    return load_trained_model(checkpoint, device), config


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix), sorted by path.

    Raises:
        FileNotFoundError: the folder does not exist or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass a folder of image files or a dataset name")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder} holds no image file (suffixes {', '.join(IMAGE_SUFFIXES)})")
    return paths


def _image_reader(config: Any):
    """path -> (3, S, S) float tensor, transformed as the run's evaluation images."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    from hhlib.data import get_spec
    from hhlib.train import _image_size
    from hhlib.transforms import build_transform

    kind = get_spec(config.dataset).transform
    transform = build_transform(kind, False, _image_size(config))

    def read(path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        # "direct" transforms take uint8 tensors (in-memory datasets), the others PIL images
        return transform(pil_to_tensor(rgb) if kind == "direct" else rgb)

    return read


@torch.no_grad()
def encode_images(network: torch.nn.Module, config: Any, paths: list[Path], batch_size: int = 64) -> np.ndarray:
    """Binary codes of image files, transformed as the run's evaluation images.

    Returns:
        (N, bits) int8 in {-1, +1} (hhlib.hamming.ZERO_RULE).
    """
    from hhlib.train import encode

    read = _image_reader(config)
    dummy_label = torch.zeros(1)
    items = [(read(path), dummy_label, i) for i, path in enumerate(paths)]
    device = next(network.parameters()).device
    codes, _ = encode(network, items, device, batch_size)
    return codes


def build_folder_index(folder: str | Path, run: str | Path, device: str = "auto") -> HammingIndex:
    """An exact index of every image under ``folder``, encoded by the run's network.

    Image ids are the paths relative to ``folder``; there are no labels.
    """
    _checkpoint_path(run)  # a missing run is reported before the folder is read
    paths = list_images(folder)
    network, config = load_run(run, device)
    codes = encode_images(network, config, paths)
    ids = np.array([p.relative_to(folder).as_posix() for p in paths])
    return HammingIndex(codes, None, ids, bits=config.bits)


def build_dataset_index(dataset: str, run: str | Path) -> HammingIndex:
    """An exact index of the database split the run was evaluated on, from its saved codes.

    Image ids are positions in the run's database split; the labels come along.

    Raises:
        ValueError: the run was trained on another dataset.
        FileNotFoundError: the run has no codes.npz (it has not finished).
    """
    from hhlib.train import TrainConfig

    config = TrainConfig.from_dict(artifacts.load_checkpoint(_checkpoint_path(run))["config"])
    if dataset != config.dataset:
        raise ValueError(f"the run was trained on {config.dataset!r}, not {dataset!r}: "
                         f"index {config.dataset!r}, or a folder of images")
    codes = artifacts.load_codes(_checkpoint_path(run).parent / artifacts.CODES_FILE)
    return HammingIndex(codes["database_codes"], codes["database_labels"], bits=config.bits)


def save_index(index: HammingIndex, folder: str | Path, run: str | Path) -> Path:
    """Write the index and a note of the run whose network encodes its queries (``run.json``)."""
    folder = index.save(folder)
    note = {"checkpoint": str(_checkpoint_path(run).resolve()), "bits": index.bits, "tie_rule": TIE_RULE}
    (folder / RUN_FILE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return folder


def load_index(folder: str | Path) -> tuple[HammingIndex, Path]:
    """An index written by :func:`save_index` and the checkpoint of its run.

    Raises:
        FileNotFoundError: a file of the index is missing.
    """
    note_path = Path(folder) / RUN_FILE
    if not note_path.is_file():
        raise FileNotFoundError(f"{note_path} does not exist: build the index with `hhlib index build ... --model <run>`")
    index = HammingIndex.load(folder)
    return index, Path(json.loads(note_path.read_text(encoding="utf-8"))["checkpoint"])


@dataclass
class SearchResult:
    """The top k of one query, and the tie groups they come from.

    Attributes:
        ids: (k,) image ids, best first.
        distances: (k,) Hamming distances.
        ties: one row per distance shown: ``{"distance", "shown", "total"}``, where ``total``
            counts every database item at that distance (``shown < total``: the list cut a tie
            group, and the shown items are the first ones in database order).
    """

    ids: np.ndarray
    distances: np.ndarray
    ties: list[dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the tie rule stated."""
        return {"results": [{"id": artifacts.json_ready(i), "distance": int(d)} for i, d in zip(self.ids, self.distances)],
                "ties": self.ties, "tie_rule": TIE_RULE}

    def describe(self) -> list[str]:
        """Human-readable lines: one per result, then one per distance group."""
        lines = [f"{rank:>3}  {distance:>3}  {image_id}" for rank, (image_id, distance)
                 in enumerate(zip(self.ids, self.distances), start=1)]
        lines.insert(0, "rank dist  id")
        for group in self.ties:
            cut = ("all of them" if group["shown"] == group["total"]
                   else f"the first {group['shown']} in database order")
            lines.append(f"distance {group['distance']}: {group['total']} database items, shown {cut}")
        lines.append(f"tie rule: {TIE_RULE}")
        return lines


def search_image(folder: str | Path, image: str | Path, k: int = 10, device: str = "auto") -> SearchResult:
    """Encode ``image`` with the index's run and return its exact top k (ties by database index).

    Raises:
        FileNotFoundError: no index or no image at the path.
        ValueError: k <= 0.
    """
    image = Path(image)
    if not image.is_file():
        raise FileNotFoundError(f"{image} does not exist: pass an image file")
    index, checkpoint = load_index(folder)
    network, config = load_run(checkpoint, device)
    code = encode_images(network, config, [image])
    distances, positions = index.search(code, k)
    distances, positions = distances[0], positions[0]
    every = hamming_distances(code, index.codes, bits=index.bits)[0]
    ties = [{"distance": int(d), "shown": int((distances == d).sum()), "total": int((every == d).sum())}
            for d in np.unique(distances)]
    return SearchResult(index.image_ids[positions], distances, ties)


@dataclass
class Gallery:
    """Queries chosen for a retrieval gallery, with their exact top k and tie counts.

    Attributes:
        query_positions: (Q,) positions in the query split, the best query first, then the worst,
            alternating.
        neighbours: (Q, k) database positions, best first (TIE_RULE).
        distances: (Q, k) Hamming distances.
        tie_counts: (Q,) database items at each query's first distance (often more than k).
        relevant: (Q,) relevant items among the k shown.
    """

    query_positions: np.ndarray
    neighbours: np.ndarray
    distances: np.ndarray
    tie_counts: np.ndarray
    relevant: np.ndarray


def gallery_queries(query_codes: Any, database_codes: Any, query_labels: Any, database_labels: Any,
                    k: int = 10, count: int = 2) -> Gallery:
    """Pick gallery queries that show both a success and a failure of retrieval.

    Every query is ranked (exactly, TIE_RULE); the queries are ordered by how many of their top k
    are relevant (sharing a label), and the gallery alternates the best and the worst of them
    (ties between queries go to the lower position), so a figure of ``count >= 2`` rows always
    holds the best and the worst query instead of the first few, which may look alike.

    Args:
        query_codes: (Q, bits) codes of the query split.
        database_codes: (N, bits) codes of the database.
        query_labels: (Q, C) multi-hot labels.
        database_labels: (N, C) multi-hot labels.
        k: results per query.
        count: number of queries to show (at most Q).

    Returns:
        A :class:`Gallery` for ``hhlib.visualize.retrieval_gallery``.

    Raises:
        ValueError: count < 1 or k < 1.
    """
    if count < 1 or k < 1:
        raise ValueError(f"count={count} and k={k} must be >= 1: show at least one query and one result")
    query_labels, database_labels = np.asarray(query_labels) > 0, np.asarray(database_labels) > 0
    neighbours, distances = rank(query_codes, database_codes, k)
    relevant = (query_labels[:, None, :] & database_labels[neighbours]).any(axis=2).sum(axis=1)
    best = np.lexsort((np.arange(len(relevant)), -relevant))
    worst = np.lexsort((np.arange(len(relevant)), relevant))
    chosen: list[int] = []
    for pair in zip(best, worst):
        chosen += [int(q) for q in pair if int(q) not in chosen]
    chosen = np.array(chosen[: min(count, len(relevant))])
    every = hamming_distances(np.asarray(query_codes)[chosen], database_codes)
    tie_counts = (every == distances[chosen, :1]).sum(axis=1)
    return Gallery(chosen, neighbours[chosen], distances[chosen], tie_counts, relevant[chosen])
