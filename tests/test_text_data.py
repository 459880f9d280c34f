"""Tests of hhlib.text_data: the apt Packages reader, its fingerprint, errors and the per-class text protocol."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hhlib import text_data
from hhlib.text_data import CorpusError

# deb822 stanzas as apt writes them: continuation lines start with a space, " ." is an empty line
PACKAGES = """\
Package: zeta-game
Version: 1.0
Section: contrib/games
Description: space shooter game
 A fast arcade game
 .
 with levels.

Package: alpha-tool
Section: utils
Description: file renaming tool

Package: beta-tool
Section: non-free/utils
Description: disk usage tool

Package: gamma-doc
Description: documentation without a section

Package: delta-tool
Section: utils
Description: file renaming tool

Package: eta-game
Section: games
Description: chess game
"""


def _write(folder, text=PACKAGES, name="deb.example.org_dists_x_main_binary-amd64_Packages"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_stanzas_joins_continuation_lines():
    stanzas = text_data.parse_stanzas(PACKAGES)
    assert len(stanzas) == 6
    assert stanzas[0]["Description"] == "space shooter game\nA fast arcade game\n\nwith levels."
    assert stanzas[3] == {"Package": "gamma-doc", "Description": "documentation without a section"}


@pytest.mark.parametrize("section, expected", [("contrib/games", "games"), ("non-free/Utils", "utils"), ("libs", "libs")])
def test_normalise_section_drops_the_archive_area(section, expected):
    assert text_data.normalise_section(section) == expected


def test_reader_on_a_lists_folder(tmp_path):
    _write(tmp_path / "lists")
    corpus = text_data.read_package_corpus(tmp_path / "lists")
    # packages in name order; delta-tool duplicates alpha-tool's text; gamma-doc has no section
    assert corpus.packages == ["alpha-tool", "beta-tool", "eta-game", "zeta-game"]
    assert corpus.sections == ["utils", "utils", "games", "games"]
    assert corpus.texts[3] == "space shooter game A fast arcade game with levels."
    assert corpus.fingerprint["stanzas"] == 6
    assert corpus.fingerprint["skipped_no_section"] == 1 and corpus.fingerprint["duplicates"] == 1


def test_plain_gzip_and_lz4_files_read_the_same(tmp_path):
    plain = _write(tmp_path)
    packed = tmp_path / "other_Packages.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    first, second = text_data.read_package_corpus(plain), text_data.read_package_corpus(packed)
    assert first.texts == second.texts and first.fingerprint["sha256"] == second.fingerprint["sha256"]
    if shutil.which("lz4"):
        subprocess.run(["lz4", "-q", str(plain), str(tmp_path / "x_Packages.lz4")], check=True)
        assert text_data.read_package_corpus(tmp_path / "x_Packages.lz4").texts == first.texts


def test_fingerprint_changes_with_the_snapshot(tmp_path):
    before = text_data.read_package_corpus(_write(tmp_path / "a")).fingerprint["sha256"]
    after = text_data.read_package_corpus(_write(tmp_path / "b", PACKAGES.replace("chess", "go"))).fingerprint["sha256"]
    assert before != after


def test_a_lists_folder_reads_only_the_release_indices(tmp_path):
    lists = tmp_path / "lists"
    _write(lists, name="deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages")
    release = text_data.read_package_corpus(lists)
    # what apt-get update adds beside the release: weekly-changing suites, which must not change the corpus
    for suite in ["bookworm-updates", "bookworm-security", "bookworm-backports"]:
        _write(lists, PACKAGES.replace("space shooter", suite), name=f"deb.debian.org_debian_dists_{suite}_main_binary-amd64_Packages")
    after_update = text_data.read_package_corpus(lists)
    assert after_update.texts == release.texts and after_update.fingerprint == release.fingerprint
    assert after_update.fingerprint["files"] == ["deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"]
    # one index passed as a file is read whatever its suite
    single = lists / "deb.debian.org_debian_dists_bookworm-security_main_binary-amd64_Packages"
    assert text_data.read_package_corpus(single).texts[3].startswith("bookworm-security game")


@pytest.mark.parametrize("name, release", [
    ("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", True),
    ("deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4", False),
    ("archive.ubuntu.com_ubuntu_dists_jammy-updates_universe_binary-amd64_Packages", False),
    ("archive.ubuntu.com_ubuntu_dists_jammy_universe_binary-amd64_Packages", True),
    ("my_Packages.gz", True),
])
def test_is_release_list_reads_the_suite_from_apts_file_name(name, release):
    assert text_data.is_release_list(name) is release


def test_a_folder_of_update_suites_only_is_a_clear_error(tmp_path):
    _write(tmp_path, name="deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages")
    with pytest.raises(CorpusError, match="only the indices of update suites .*pass one of these files"):
        text_data.read_package_corpus(tmp_path)


def test_missing_lists_are_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="not found: run `apt-get update`"):
        text_data.read_package_corpus(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="holds no \\*_Packages index"):
        text_data.read_package_corpus(tmp_path)


def test_empty_description_is_a_clear_error(tmp_path):
    path = _write(tmp_path, PACKAGES + "\nPackage: broken\nSection: utils\nDescription:\n")
    with pytest.raises(CorpusError, match="package 'broken' has an empty or missing Description"):
        text_data.read_package_corpus(path)


def test_select_sections_keeps_the_most_frequent_and_checks_their_size(tmp_path):
    corpus = text_data.read_package_corpus(_write(tmp_path))
    rows, names, labels = text_data.select_sections(corpus, 1, 2)
    assert names == ["games"]  # tie (2 and 2) broken by name
    assert rows.tolist() == [2, 3] and labels.tolist() == [[1.0], [1.0]]
    with pytest.raises(CorpusError, match="fewer than the 3 texts .*games \\(2\\), utils \\(2\\)"):
        text_data.select_sections(corpus, 2, 3)
    with pytest.raises(CorpusError, match="2 sections, 3 asked"):
        text_data.select_sections(corpus, 3, 1)


def test_text_splits_are_per_class_disjoint_and_seeded():
    labels = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)
    split = text_data.make_text_splits(labels, 2, 3, 4, seed=7)
    parts = [split.query, split.train, split.database]
    assert [len(p) for p in parts] == [6, 9, 12]
    assert len(np.unique(np.concatenate(parts))) == 27
    assert labels[split.train].sum(axis=0).tolist() == [3, 3, 3]
    again = text_data.make_text_splits(labels, 2, 3, 4, seed=7)
    assert np.array_equal(again.query, split.query)
    assert not np.array_equal(text_data.make_text_splits(labels, 2, 3, 4, seed=8).query, split.query)
    rest = text_data.make_text_splits(labels, 2, 3, None, seed=7)
    assert len(rest.database) == 30 - 15


def test_text_splits_name_the_short_class():
    labels = np.array([[1, 0]] * 5 + [[0, 1]] * 2, dtype=np.float32)
    with pytest.raises(CorpusError, match="class 1 has only 1 .*lower text_query/train/database_per_class"):
        text_data.make_text_splits(labels, 1, 2, None, seed=0)


def test_setup_script_explains_missing_lists(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure_apt_lists.sh"
    missing = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 1 and "holds no *_Packages file" in missing.stderr
    _write(tmp_path)
    assert subprocess.run(["bash", str(script), str(tmp_path)]).returncode == 0
