"""Tests for hhlib.nuswide: building nuswide_21 lists from generated NUS-WIDE release files."""

from __future__ import annotations

import numpy as np
import pytest

from hhlib.datasets import DataError, parse_list_file
from hhlib.nuswide import build_nuswide21_lists, read_release, top_concepts


def build(release, out, seed=0):
    return build_nuswide21_lists(release, out, seed, n_concepts=3, query_per_class=2, train_per_class=3)


def read_lists(out):
    return {name: parse_list_file(out / name, out, 3) for name in ("test.txt", "train.txt", "database.txt")}


def test_read_release_normalises_paths(make_nuswide_release):
    paths, concepts, labels = read_release(make_nuswide_release())
    assert len(paths) == 40 and concepts == ["animal", "beach", "clouds", "dog", "sky"]
    assert paths[0] == "beach/0000_1000.jpg" and paths[1] == "actor/0001_1001.jpg"  # Windows prefix dropped
    assert labels.shape == (40, 5) and labels.sum(axis=0).tolist() == [12, 4, 12, 9, 20]


def test_top_concepts_ties_broken_by_name():
    labels = np.array([[1, 1, 1, 0], [1, 1, 0, 1], [0, 0, 1, 1]])  # counts 2, 2, 2, 2
    assert top_concepts(["d", "c", "b", "a"], labels, 2) == [2, 3]  # "a" and "b", returned in list order
    assert top_concepts(["x", "y", "z", "w"], np.array([[1, 0, 1, 1], [1, 0, 0, 1]]), 2) == [0, 3]


def test_build_lists_sizes_and_rule(make_nuswide_release, tmp_path):
    out = tmp_path / "nuswide_21"
    counts = build(make_nuswide_release(), out)
    # top 3: sky 20, animal 12 and clouds 12 (tie by name beats dog 9), listed in Concepts81 order
    assert counts["classes"] == ["animal", "clouds", "sky"] and (out / "classes.txt").read_text().split() == counts["classes"]
    assert counts["images"] == 32 and counts["class_counts"] == [12, 12, 20]
    assert (counts["query"], counts["train"], counts["database"]) == (6, 9, 26)
    lists = read_lists(out)
    assert all(problems == [] for _, problems in lists.values())
    query, train, database = (lists[n][0] for n in ("test.txt", "train.txt", "database.txt"))
    assert (query.labels.sum(axis=0) >= 2).all() and (train.labels.sum(axis=0) >= 3).all()
    assert query.labels.any(axis=1).all() and database.labels.any(axis=1).all()
    assert not set(query.paths) & set(database.paths) and set(train.paths) <= set(database.paths)
    assert len(set(query.paths) | set(database.paths)) == 32
    assert all("\\" not in p and ":" not in p for p in database.paths)


def test_build_is_deterministic_per_seed(make_nuswide_release, tmp_path):
    release = make_nuswide_release()
    build(release, tmp_path / "a", seed=5)
    build(release, tmp_path / "b", seed=5)
    build(release, tmp_path / "c", seed=6)
    for name in ("test.txt", "train.txt", "database.txt"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert (tmp_path / "a" / "test.txt").read_text() != (tmp_path / "c" / "test.txt").read_text()


def test_concepts_from_label_files_when_no_concept_list(make_nuswide_release):
    _, concepts, _ = read_release(make_nuswide_release(concepts_file=False))
    assert concepts == ["animal", "beach", "clouds", "dog", "sky"]


def test_bad_label_files_all_reported(make_nuswide_release):
    release = make_nuswide_release()
    labels_dir = release / "Groundtruth" / "AllLabels"
    (labels_dir / "Labels_dog.txt").write_text("0\n" * 39)
    values = ["0"] * 40
    values[6] = "2"
    (labels_dir / "Labels_sky.txt").write_text("\n".join(values))
    with pytest.raises(DataError, match=r"(?s)2 problem.*Labels_dog.txt: 39 labels, but .*40 images.*Labels_sky.txt:7: label '2'"):
        read_release(release)


def test_missing_release_files(make_nuswide_release, tmp_path):
    with pytest.raises(FileNotFoundError, match="image list not found .*re-extract the official NUS-WIDE release"):
        read_release(tmp_path / "nothing")
    release = make_nuswide_release()
    (release / "Groundtruth" / "AllLabels" / "Labels_beach.txt").unlink()
    with pytest.raises(FileNotFoundError, match="has no Labels_beach.txt"):
        read_release(release)


def test_too_small_class(make_nuswide_release, tmp_path):
    with pytest.raises(ValueError, match="class 0 has only .* images left to draw, 50 asked"):
        build_nuswide21_lists(make_nuswide_release(), tmp_path / "o", n_concepts=3, query_per_class=50)
