"""Build the ``nuswide_21`` list files from the official NUS-WIDE release.

NUS-WIDE-21 (HybridHash arXiv 2405.07524, Sec. 4.1; docs/method.md §5) keeps the images tagged with
at least one of the 21 most frequent of the 81 ground-truth concepts (195,834 images), labels
them over those 21 concepts, and splits them per class: 100 query per class (2,100), the rest
database (~193,700), 500 per class of the database as train (10,500).

Inputs (the official release, as unzipped):

- the image list ``ImageList/Imagelist.txt``: one path per line, e.g. ``actor\\0001_2124494179.jpg``
  or ``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg``; backslashes become ``/`` and anything up
  to ``Flickr/`` is dropped, so paths are relative to the ``Flickr`` image folder;
- the label files ``Groundtruth/AllLabels/Labels_<concept>.txt``: one 0/1 per line, aligned with the
  image list;
- the concept names ``Concepts81.txt`` (or ``ConceptsList/Concepts81.txt``); when absent, the
  concepts are the ``Labels_*.txt`` files in name order.

Rules: concept frequency counts positives over the whole image list; the 21 most frequent win,
ties broken by name; the label vector lists the chosen concepts in ``Concepts81.txt`` order (also
written to ``classes.txt``). Per-class sampling is hhlib.splits' rule: one seeded random order of
the kept images; for each class in label order, the first 100 images carrying it that no earlier
class took become queries; then, over the database (all non-query images) in the same order, the
first 500 carrying each class not yet taken become train. Each class thus has exactly 100 query
and 500 train images that carry it, and a multi-label image is drawn at most once per split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hhlib.datasets import DataError
from hhlib.splits import Protocol, make_splits

NUSWIDE_FIX = "re-extract the official NUS-WIDE release (ImageList, Groundtruth/AllLabels, Concepts81.txt)"


def _first_file(candidates: list[Path], what: str, release_dir: Path) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"NUS-WIDE {what} not found in {release_dir} (looked for {', '.join(str(p) for p in candidates)}): "
        f"{NUSWIDE_FIX} into {release_dir}"
    )


def _relative_image_path(line: str) -> str:
    path = line.strip().replace("\\", "/")
    marker = path.lower().rfind("flickr/")
    return path[marker + len("flickr/") :] if marker >= 0 else path


def read_release(release_dir: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """Read the NUS-WIDE image list and the 81 per-concept label files.

    Args:
        release_dir: folder with ``ImageList/``, ``Groundtruth/AllLabels/`` and ``Concepts81.txt``.

    Returns:
        image paths (N,) relative to the Flickr folder, concept names (K,), labels (N, K) uint8 in {0, 1}.

    Raises:
        FileNotFoundError: the image list, the concept list or a label file is missing.
        DataError: label files with the wrong line count or values other than 0/1 (all listed).
    """
    release_dir = Path(release_dir)
    image_list = _first_file(
        [release_dir / "ImageList" / "Imagelist.txt", release_dir / "Imagelist.txt"], "image list", release_dir
    )
    label_dir = next(
        (d for d in (release_dir / "Groundtruth" / "AllLabels", release_dir / "AllLabels") if d.is_dir()), None
    )
    if label_dir is None:
        raise FileNotFoundError(f"NUS-WIDE label folder Groundtruth/AllLabels not found in {release_dir}: {NUSWIDE_FIX}")
    concept_files = [release_dir / "Concepts81.txt", release_dir / "ConceptsList" / "Concepts81.txt"]
    concept_file = next((p for p in concept_files if p.is_file()), None)
    if concept_file is not None:
        concepts = [c.strip() for c in concept_file.read_text(encoding="utf-8").splitlines() if c.strip()]
    else:
        concepts = sorted(p.name[len("Labels_") : -len(".txt")] for p in label_dir.glob("Labels_*.txt"))
    if not concepts:
        raise FileNotFoundError(f"no concepts: {release_dir} has no Concepts81.txt and {label_dir} no Labels_*.txt")

    paths = [_relative_image_path(line) for line in image_list.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [c for c in concepts if not (label_dir / f"Labels_{c}.txt").is_file()]
    if missing:
        raise FileNotFoundError(f"{label_dir} has no {', '.join(f'Labels_{c}.txt' for c in missing)}: {NUSWIDE_FIX}")
    labels = np.zeros((len(paths), len(concepts)), dtype=np.uint8)
    problems = []
    for k, concept in enumerate(concepts):
        label_file = label_dir / f"Labels_{concept}.txt"
        values = label_file.read_text(encoding="utf-8").split()
        if len(values) != len(paths):
            problems.append(f"{label_file}: {len(values)} labels, but {image_list} lists {len(paths)} images")
            continue
        if not set(values) <= {"0", "1"}:
            line = next(i for i, v in enumerate(values, start=1) if v not in ("0", "1"))
            problems.append(f"{label_file}:{line}: label {values[line - 1]!r} is not 0 or 1")
            continue
        labels[:, k] = np.asarray(values) == "1"
    if problems:
        raise DataError(f"NUS-WIDE label files in {label_dir} are inconsistent: {NUSWIDE_FIX}", problems)
    return paths, concepts, labels


def top_concepts(concepts: list[str], labels: np.ndarray, n_concepts: int = 21) -> list[int]:
    """Pick the most frequent concepts: by positive count, ties broken by name.

    Args:
        concepts: K concept names.
        labels: (N, K) {0, 1} labels.
        n_concepts: how many to keep (21 for NUS-WIDE-21).

    Returns:
        Column indices of the chosen concepts, in ``concepts`` order.
    """
    counts = labels.sum(axis=0, dtype=np.int64)
    ranked = sorted(range(len(concepts)), key=lambda k: (-int(counts[k]), concepts[k]))
    return sorted(ranked[:n_concepts])


def _write_list(path: Path, paths: list[str], labels: np.ndarray, rows: np.ndarray) -> None:
    lines = [paths[i] + " " + " ".join(map(str, labels[i].tolist())) for i in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_nuswide21_lists(
    release_dir: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    *,
    n_concepts: int = 21,
    query_per_class: int = 100,
    train_per_class: int = 500,
    image_prefix: str = "",
) -> dict:
    """Write ``train.txt``, ``test.txt``, ``database.txt`` and ``classes.txt`` for nuswide_21.

    Args:
        release_dir: the unzipped official release (see module docstring).
        out_dir: where to write the lists (created if needed).
        seed: split seed (``Generator(PCG64(seed))``).
        n_concepts: most frequent concepts kept (docs/method.md §5: 21).
        query_per_class: queries per class (docs/method.md §5: 100 -> 2,100).
        train_per_class: train images per class, drawn from the database (docs/method.md §5: 500 -> 10,500).
        image_prefix: prepended to every path (e.g. ``"Flickr/"`` when the image root is its parent).

    Returns:
        ``{"images": kept, "query": n, "train": n, "database": n, "classes": [names], "class_counts": [...]}``.

    Raises:
        FileNotFoundError: release files missing.
        DataError: inconsistent label files.
        ValueError: a class too small for the per-class counts.
    """
    paths, concepts, labels = read_release(release_dir)
    chosen = top_concepts(concepts, labels, n_concepts)
    labels = labels[:, chosen]
    keep = np.flatnonzero(labels.any(axis=1))
    kept_paths = [image_prefix + paths[i] for i in keep]
    kept_labels = labels[keep]
    protocol = Protocol("nuswide_21_build", "pool", query_per_class, train_per_class, "rest_with_train", None)
    indices = make_splits(protocol, kept_labels.astype(np.float32), seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("test.txt", indices.query), ("train.txt", indices.train), ("database.txt", indices.database)):
        _write_list(out_dir / name, kept_paths, kept_labels, rows)
    class_names = [concepts[k] for k in chosen]
    (out_dir / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    return {
        "images": int(len(keep)),
        "query": int(len(indices.query)),
        "train": int(len(indices.train)),
        "database": int(len(indices.database)),
        "classes": class_names,
        "class_counts": kept_labels.sum(axis=0, dtype=np.int64).tolist(),
    }
