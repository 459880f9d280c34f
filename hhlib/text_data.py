"""Debian package descriptions as a labelled short-text corpus: the apt-lists reader and its protocol.

Text hashing (Xu et al., "Convolutional Neural Networks for Text Hashing", IJCAI 2015) needs
short texts with class labels. Every Debian machine has some offline: the ``Packages`` indices
that ``apt-get update`` writes to ``/var/lib/apt/lists``. Each is a deb822 file, one stanza per
package separated by blank lines, ``Field: value`` lines, and continuation lines that start with
a space (a lone ``" ."`` is an empty line of a long description). A package's text is its
``Description`` (synopsis plus any long description); its label is its ``Section``, with the
archive-area prefix removed (``contrib/games`` and ``non-free/games`` are ``games``).

apt may keep the indices compressed (``*_Packages.lz4``, ``.gz``, ``.xz``): ``.gz``/``.xz``/``.bz2``
are read with the standard library, ``.lz4`` through apt's own ``apt-helper cat-file`` (or ``lz4cat``).

The lists change whenever the archive does, so :class:`PackageCorpus` carries a fingerprint of what
was read (files, stanza count, SHA-256 of the decompressed bytes); another snapshot gives other
numbers. From a lists folder only the release's own indices are read (suite ``bookworm``, not
``bookworm-updates``, ``bookworm-security`` or ``bookworm-backports``): those change every week, and
whether a machine has them depends on whether ``apt-get update`` ever ran there, while a release's
index changes only at its point releases. Pass one file to read any other index. Identical
descriptions (many packages share one) are kept once, before any split.

Protocol (:func:`make_text_splits`): the ``num_sections`` most frequent sections; per section a
seeded draw of query, train and database texts (the per-class rule of :mod:`hhlib.splits`).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hhlib.splits import SplitIndices, draw_per_class, random_order

__all__ = [
    "DEFAULT_LISTS_DIR",
    "CorpusError",
    "PackageCorpus",
    "find_package_lists",
    "is_release_list",
    "make_text_splits",
    "normalise_section",
    "parse_stanzas",
    "read_list_text",
    "read_package_corpus",
    "select_sections",
]

DEFAULT_LISTS_DIR = "/var/lib/apt/lists"  # where apt-get update writes the indices (Debian policy)
PACKAGES_PATTERN = "*_Packages*"  # apt's file names: <mirror>_dists_<suite>_<area>_binary-<arch>_Packages[.ext]
SUITE_PATTERN = re.compile(r"_dists_([^_]+)_")  # the <suite> of such a name: a release, or <release>-updates etc.
APT_HELPER = "/usr/lib/apt/apt-helper"  # decompresses any index format apt itself wrote
LISTS_FIX = "run `apt-get update` as root (make setup does it when the lists are missing), or pass a Packages file"


class CorpusError(ValueError):
    """The package lists are missing, unreadable or too small for the asked protocol."""


@dataclass
class PackageCorpus:
    """Deduplicated package descriptions with their sections.

    Attributes:
        texts: description texts (synopsis and long description, one space between lines).
        sections: normalised Section of each text.
        packages: the package each text was kept from (the first by name among its duplicates).
        fingerprint: ``files`` (names), ``stanzas`` (count read), ``sha256`` (of the decompressed
            bytes, files in name order), ``skipped_no_section``, ``duplicates`` (texts dropped).
    """

    texts: list[str]
    sections: list[str]
    packages: list[str]
    fingerprint: dict = field(default_factory=dict)


def is_release_list(name: str) -> bool:
    """Whether an apt index name belongs to a release itself, not to one of its ``<release>-<x>`` suites.

    A name without a ``_dists_<suite>_`` part (a flat repository, a file copied by hand) counts as a release.
    """
    suite = SUITE_PATTERN.search(name)
    return suite is None or "-" not in suite.group(1)


def find_package_lists(path: str | Path = DEFAULT_LISTS_DIR) -> list[Path]:
    """The Packages indices to read: a folder's release indices (``*_Packages*``), or one given file.

    Args:
        path: a folder (apt's lists folder) or one Packages file (plain or compressed). From a folder,
            the indices of ``<release>-updates``, ``-security``, ``-backports`` and the like are left
            out (:func:`is_release_list`): they change weekly and only some machines have them.

    Returns:
        The files, sorted by name.

    Raises:
        CorpusError: the path does not exist, or the folder holds no release Packages index.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CorpusError(f"package lists {path} not found: {LISTS_FIX}")
    indices = [p for p in path.glob(PACKAGES_PATTERN) if p.is_file() and not p.name.endswith((".diff", ".IndexDiff"))]
    if not indices:
        raise CorpusError(f"{path} holds no *_Packages index (apt lists never downloaded?): {LISTS_FIX}")
    files = sorted(p for p in indices if is_release_list(p.name))
    if not files:
        raise CorpusError(f"{path} holds only the indices of update suites ({', '.join(sorted(p.name for p in indices))}), "
                          "no release's own index: add the release to apt's sources and run `apt-get update`, "
                          "or pass one of these files as packages_path")
    return files


def _lz4_bytes(path: Path) -> bytes:
    """Decompress an lz4 index with apt's helper, or lz4cat when apt is absent."""
    if Path(APT_HELPER).is_file():
        command = [APT_HELPER, "cat-file", str(path)]
    elif shutil.which("lz4cat"):
        command = ["lz4cat", str(path)]
    else:
        raise CorpusError(f"{path} is lz4-compressed and neither {APT_HELPER} nor lz4cat exists: install apt or lz4")
    return subprocess.run(command, check=True, capture_output=True).stdout


def read_list_text(path: str | Path) -> str:
    """Read one Packages index as text, decompressing .lz4, .gz, .xz or .bz2 by its suffix.

    Args:
        path: the file.

    Returns:
        Its decoded content (UTF-8; undecodable bytes replaced).
    """
    path = Path(path)
    openers = {".gz": gzip.decompress, ".xz": lzma.decompress, ".bz2": bz2.decompress}
    if path.suffix == ".lz4":
        data = _lz4_bytes(path)
    else:
        data = openers.get(path.suffix, bytes)(path.read_bytes())
    return data.decode("utf-8", errors="replace")


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """Split a deb822 file into stanzas of ``field -> value``.

    Args:
        text: the file's content.

    Returns:
        One dict per stanza. A value's continuation lines are appended after a newline, without
        their leading space; a lone ``.`` line (an empty line of a long description) becomes ``""``.
    """
    stanzas, current, last = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, None
        elif line[0] in " \t" and last is not None:
            body = line.strip()
            current[last] += "\n" + ("" if body == "." else body)
        elif ":" in line:
            last, value = line.split(":", 1)
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def normalise_section(section: str) -> str:
    """Drop the archive area from a Section: ``non-free/games`` -> ``games``, ``Games`` -> ``games``."""
    return section.strip().rsplit("/", 1)[-1].lower()


def _description_text(description: str) -> str:
    """Synopsis and long description on one line, runs of whitespace collapsed."""
    return re.sub(r"\s+", " ", description).strip()


def read_package_corpus(path: str | Path = DEFAULT_LISTS_DIR) -> PackageCorpus:
    """Read every package description and section, fingerprinted and deduplicated.

    Stanzas without a Section field are skipped (counted in the fingerprint). A text shared by
    several packages is kept once, with the section of the first package by name.

    Args:
        path: apt's lists folder or one Packages file (see :func:`find_package_lists`).

    Returns:
        A :class:`PackageCorpus`.

    Raises:
        CorpusError: no lists (see :func:`find_package_lists`), or a stanza whose Description is
            missing or empty (names the package and file).
    """
    digest, stanzas, names = hashlib.sha256(), [], []
    for file in find_package_lists(path):
        content = read_list_text(file)
        digest.update(content.encode("utf-8"))
        names.append(file.name)
        stanzas += [(s, file.name) for s in parse_stanzas(content)]
    records, skipped = {}, 0
    for stanza, source in sorted(stanzas, key=lambda item: item[0].get("Package", "")):
        if "Section" not in stanza:
            skipped += 1
            continue
        text = _description_text(stanza.get("Description", ""))
        if not text:
            raise CorpusError(
                f"{source}: package {stanza.get('Package', '?')!r} has an empty or missing Description: "
                "the index is truncated or not a Packages file; re-run `apt-get update` or pass another file"
            )
        records.setdefault(text, (normalise_section(stanza["Section"]), stanza.get("Package", "")))
    kept = len(stanzas) - skipped
    fingerprint = {"files": names, "stanzas": len(stanzas), "sha256": digest.hexdigest(),
                   "skipped_no_section": skipped, "duplicates": kept - len(records)}
    texts = list(records)
    return PackageCorpus(texts, [records[t][0] for t in texts], [records[t][1] for t in texts], fingerprint)


def select_sections(corpus: PackageCorpus, num_sections: int, min_texts: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Keep the ``num_sections`` most frequent sections (ties by name), each with at least ``min_texts`` texts.

    Args:
        corpus: the corpus.
        num_sections: how many sections (classes).
        min_texts: texts each kept section needs (the protocol's per-class total).

    Returns:
        ``(rows, class_names, labels)``: (M,) int64 positions into ``corpus.texts``, the section
        names (class order), and (M, C) float32 one-hot labels.

    Raises:
        CorpusError: fewer than ``num_sections`` sections, or a kept section with too few texts.
    """
    counts = Counter(corpus.sections)
    ranked = sorted(counts, key=lambda name: (-counts[name], name))[:num_sections]
    if len(ranked) < num_sections:
        raise CorpusError(f"the lists have {len(ranked)} sections, {num_sections} asked: pass a smaller num_sections")
    short = [f"{name} ({counts[name]})" for name in ranked if counts[name] < min_texts]
    if short:
        raise CorpusError(
            f"sections with fewer than the {min_texts} texts the protocol needs per class: {', '.join(short)}: "
            "pass a smaller num_sections or fewer texts per class"
        )
    index = {name: c for c, name in enumerate(ranked)}
    rows = np.array([i for i, s in enumerate(corpus.sections) if s in index], dtype=np.int64)
    labels = np.zeros((len(rows), len(ranked)), dtype=np.float32)
    labels[np.arange(len(rows)), [index[corpus.sections[i]] for i in rows]] = 1.0
    return rows, ranked, labels


def make_text_splits(
    labels: np.ndarray, query_per_class: int, train_per_class: int, database_per_class: int | None, seed: int
) -> SplitIndices:
    """Seeded per-class query / train / database draw over one-hot labels (rule of :mod:`hhlib.splits`).

    Args:
        labels: (M, C) float32 one-hot labels (from :func:`select_sections`).
        query_per_class: query texts per class.
        train_per_class: training texts per class (disjoint from the queries).
        database_per_class: database texts per class, drawn from the rest (disjoint from both);
            None = all the rest.
        seed: PCG64 seed: the same seed gives the same split on any machine.

    Returns:
        :class:`hhlib.splits.SplitIndices` of positions into ``labels``.

    Raises:
        CorpusError: a class has too few texts for the asked sizes.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    order, taken = random_order(len(labels), rng), np.zeros(len(labels), dtype=bool)
    try:
        query = draw_per_class(labels, query_per_class, order, taken)
        train = draw_per_class(labels, train_per_class, order, taken)
        if database_per_class is None:
            database = np.sort(np.flatnonzero(~taken)).astype(np.int64)
        else:
            database = draw_per_class(labels, database_per_class, order, taken)
    except ValueError as error:
        raise CorpusError(f"{error} (text protocol: lower text_query/train/database_per_class)") from error
    sizes = {"query_per_class": query_per_class, "train_per_class": train_per_class,
             "database_per_class": database_per_class, "seed": seed}
    return SplitIndices(query, train, database, sizes)
