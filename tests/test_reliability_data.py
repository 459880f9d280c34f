"""Bad dataset files (issue 15, items 1, 3 and 7): each ends in one early error naming the file and the fix."""

from __future__ import annotations

import gzip
import pathlib
import pickle
import subprocess
import warnings

import numpy as np
import pytest
import torchvision
from PIL import Image

from hhlib.data import check_data, resolve_data_dir
from hhlib.datasets import (
    DataError,
    DataWarning,
    parse_list_file,
    read_cifar10,
    read_fashion_mnist,
    read_list_splits,
    safe_pickle_load,
)


class _TouchOnLoad:
    """Pickles to a call of Path.touch(marker): unpickling it with pickle.load creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_crafted_cifar_batch_runs_no_code(cifar_root, tmp_path):
    marker = tmp_path / "pwned"
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": _TouchOnLoad(marker), b"labels": [0]}, f)
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 python batch .*refused to load global pathlib"):
        read_cifar10(cifar_root)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_pickle_loads_what_a_cifar_batch_holds(tmp_path, protocol):
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [3, 1], b"filenames": [b"a.png", b"b.png"],
             b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), "ratio": 0.5}
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    with open(path, "rb") as f:
        loaded = safe_pickle_load(f, encoding="bytes")
    np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
    assert loaded[b"labels"] == [3, 1] and loaded[b"filenames"] == [b"a.png", b"b.png"] and loaded["ratio"] == 0.5


def _damage(path: pathlib.Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bad_crc":
        path.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])
    elif how == "corrupt":
        path.write_bytes(data[:10] + b"\xff" * 40 + data[50:])
    elif how == "html":
        path.write_bytes(b"<!DOCTYPE html><html><body>Sign in</body></html>")


@pytest.mark.parametrize("how, says", [("truncated", "truncated"), ("bad_crc", "CRC"), ("corrupt", "corrupt gzip"),
                                       ("html", "HTML page")])
def test_damaged_fashion_mnist_file_is_named(fashion_dir, how, says):
    _damage(fashion_dir / "t10k-images-idx3-ubyte.gz", how)
    with pytest.raises(DataError, match="damaged: delete the files named below") as info:
        read_fashion_mnist(fashion_dir, download=False)
    assert len(info.value.problems) == 1
    assert "t10k-images-idx3-ubyte.gz" in info.value.problems[0] and says in info.value.problems[0]


def test_every_damaged_fashion_mnist_file_is_reported_at_once(fashion_dir):
    _damage(fashion_dir / "train-images-idx3-ubyte.gz", "html")
    _damage(fashion_dir / "t10k-images-idx3-ubyte.gz", "truncated")
    with pytest.raises(DataError, match="2 problem") as info:
        read_fashion_mnist(fashion_dir, download=False)
    assert "train-images" in info.value.problems[0] and "t10k-images" in info.value.problems[1]


def test_reading_never_downloads_into_a_system_folder_or_creates_folders(tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a download was tried")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", must_not_run)
    with pytest.raises(FileNotFoundError, match="no download into the system folder /usr/share/no-such-dataset"):
        read_fashion_mnist("/usr/share/no-such-dataset")
    with pytest.raises(FileNotFoundError, match="does not exist and reading does not create folders"):
        read_fashion_mnist(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


def test_fashion_mnist_dir_reaches_the_default_data_dir(fashion_dir, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(fashion_dir))
    assert resolve_data_dir("fashion_mnist") == fashion_dir
    assert check_data("fashion_mnist")["images"] == {"pool": 60}
    assert resolve_data_dir("fashion_mnist", "/elsewhere") == pathlib.Path("/elsewhere")  # explicit wins
    monkeypatch.delenv("FASHION_MNIST_DIR")
    assert resolve_data_dir("fashion_mnist") == pathlib.Path("/usr/share/datasets/fashion-mnist")


def _append(folder, list_name, *lines):
    with open(folder / list_name, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def test_path_with_whitespace_is_reported_as_such(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    _append(folder, "test.txt", "images/test/my photo.jpg 1 0 0", "images/test/0005.jpg 1 0 0 1")
    _, problems = parse_list_file(folder / "test.txt", folder, 3)
    assert len(problems) == 2 and "test.txt:7: the path 'images/test/my photo.jpg' contains whitespace" in problems[0]
    assert "test.txt:8: 4 labels, but the dataset has 3 classes" in problems[1]  # extra labels are not a path


def test_one_path_with_two_label_sets_is_an_error(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    _append(folder, "test.txt", "images/test/0000.jpg 0 0 1")
    with pytest.raises(DataError, match=r"test.txt:7: images/test/0000.jpg is listed at line 1 with other labels"):
        read_list_splits(folder, 3)


def test_duplicates_unlabelled_rows_and_query_database_overlap_warn(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    _append(folder, "test.txt", "images/test/0001.jpg 0 1 0")  # line 7 repeats line 2
    _append(folder, "database.txt", "images/test/0002.jpg 0 0 1")  # a query also in the database
    Image.new("RGB", (4, 4)).save(folder / "images" / "train" / "blank.jpg")
    _append(folder, "train.txt", "images/train/blank.jpg 0 0 0")
    with pytest.warns(DataWarning) as caught:
        lists = read_list_splits(folder, 3)
    messages = [str(w.message) for w in caught]
    assert any("1 duplicate line(s)" in m and "test.txt:7 repeats line 2" in m for m in messages)
    assert any("1 image(s) with no label" in m and "train.txt:7" in m for m in messages)
    assert any("1 image(s) of test.txt are also in database.txt" in m and "0002.jpg" in m for m in messages)
    assert len(lists["test.txt"]) == 6  # the duplicate is kept once


def test_clean_lists_give_no_warning(make_list_dataset):
    folder = make_list_dataset(n_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_list_splits(folder, 3)


def test_pre_run_check_decodes_a_sample_and_decode_checks_all(make_list_dataset):
    folder = make_list_dataset(n_classes=3, sizes={"train.txt": 6, "test.txt": 6, "database.txt": 80})
    (folder / "images" / "database" / "0000.jpg").write_bytes(b"<html>not a jpeg</html>")  # first: in the sample
    (folder / "images" / "database" / "0001.jpg").write_bytes(b"GIF89a broken")  # not in a 32-image sample of 80
    with pytest.raises(DataError, match="1 problem") as info:
        read_list_splits(folder, 3, decode_sample=32)
    assert "database.txt:1: image" in info.value.problems[0] and "unreadable" in info.value.problems[0]
    with pytest.raises(DataError, match="2 problem"):
        read_list_splits(folder, 3, decode=True)


def test_setup_script_names_every_damaged_file(fashion_dir):
    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "ensure_fashion_mnist.sh"
    assert subprocess.run(["bash", str(script), str(fashion_dir)], capture_output=True).returncode == 0
    _damage(fashion_dir / "train-labels-idx1-ubyte.gz", "html")
    _damage(fashion_dir / "t10k-images-idx3-ubyte.gz", "truncated")
    run = subprocess.run(["bash", str(script), str(fashion_dir)], capture_output=True, text=True)
    assert run.returncode == 1 and "are damaged" in run.stderr
    assert "train-labels-idx1-ubyte.gz" in run.stderr and "t10k-images-idx3-ubyte.gz" in run.stderr
    assert "train-images-idx3-ubyte.gz" not in run.stderr
