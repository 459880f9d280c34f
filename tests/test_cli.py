"""The hhlib console command (hhlib.cli): parameter files to runs, train -> evaluate -> index -> search."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hhlib import artifacts, cli, retrieval
from hhlib.hamming import pack_codes
from hhlib.params import NOTEBOOKS_DIR

ROOT = Path(__file__).resolve().parents[1]
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def tiny_values(out_dir) -> dict:
    return dict(
        dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
        query_per_class=2, train_per_class=4, database_limit=40, batch_size=8, epochs=1, eval_every=1,
        optimizer="adamw", lr=1e-3, model_overrides={"drop_path_rate": 0.0}, out_dir=str(out_dir),
        progress=False, device="cpu",
    )


# ---- parameter files -> runs ----

def test_notebook_file_gives_one_run_per_code_length_and_seed():
    path = ROOT / "params" / "smoke" / "02_train.yaml"
    values = {**yaml.safe_load(path.with_name("shared.yaml").read_text()), **yaml.safe_load(path.read_text())}
    configs = cli.train_configs(path, {"bits_list": [16, 32], "seeds": [0, 1]})
    assert [(c.bits, c.seed) for c in configs] == [(16, 0), (16, 1), (32, 0), (32, 1)]
    # relative paths are relative to notebooks/, as under papermill --cwd notebooks
    assert configs[0].out_dir == str((NOTEBOOKS_DIR / values["out_dir"]).resolve())
    assert configs[0].lr == values["lr"] and configs[0].preset == values["preset"]
    assert configs[0].img_size == values["img_size"] == 32  # from shared.yaml, as papermill gets it


def test_bits_and_seed_pick_one_run():
    path = ROOT / "params" / "fashion_mnist" / "02_train.yaml"
    [config] = cli.train_configs(path, {"bits": 32, "seed": 2, "out_dir": "elsewhere"})
    assert (config.bits, config.seed, config.out_dir) == (32, 2, "elsewhere")


def test_plain_trainconfig_file_is_one_run(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_values("out")))
    [config] = cli.train_configs(path, cli.parse_overrides(["bits=32", "model_overrides={depths: [1, 1, 2]}"]))
    assert (config.bits, config.seed, config.out_dir) == (32, 0, "out")
    assert config.model_overrides == {"depths": [1, 1, 2]}


def test_usage_and_config_errors_exit_2(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_values(tmp_path)))
    assert cli.main(["train", str(path), "bits"]) == 2
    assert "override 'bits' is not key=value" in capsys.readouterr().err
    assert cli.main(["train", str(path), "learning_rate=1"]) == 2
    assert "unknown TrainConfig key" in capsys.readouterr().err
    assert cli.main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "no such parameter file" in capsys.readouterr().err
    assert cli.main(["train", str(path), "seeds=[]"]) == 2
    assert "seeds must be a non-empty list" in capsys.readouterr().err


# ---- a whole session: train, evaluate, index a folder and the dataset, search ----

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump({**tiny_values(folder), "bits_list": [16], "seeds": [0]}))
    assert cli.main(["train", str(path), f"out_dir={folder}"]) == 0
    [run_dir] = (folder / "fashion_mnist" / "checkpoints").glob("wml_16-*")  # <loss>_<bits>-<config hash>
    return run_dir


def _database_images(folder: Path, count: int) -> list[Path]:
    """The first ``count`` database images of the run's split, as PNG files."""
    from hhlib.data import load_splits

    splits = load_splits("fashion_mnist", FASHION_MNIST, query_per_class=2, train_per_class=4, database_limit=40)
    folder.mkdir()
    paths = []
    for position in range(count):
        image = splits.database.source.images[splits.database.indices[position]]
        paths.append(folder / f"{position:03d}.png")
        Image.fromarray(image[0].numpy()).save(paths[-1])
    return paths


def test_evaluate_reproduces_the_runs_map(trained_run, capsys):
    assert cli.main(["evaluate", str(trained_run)]) == 0
    report = json.loads(capsys.readouterr().out)
    result = artifacts.read_json(trained_run / artifacts.RESULT_FILE)
    assert report["map"] == result["final_map"] and report["topk"] == 40 and report["n_database"] == 40


def test_folder_index_encodes_as_the_run_and_search_explains_ties(trained_run, tmp_path, capsys):
    paths = _database_images(tmp_path / "images", 12)
    index_dir = tmp_path / "index"
    assert cli.main(["index", "build", str(tmp_path / "images"), "--model", str(trained_run),
                     "--out", str(index_dir), "--device", "cpu"]) == 0
    codes = artifacts.load_codes(trained_run / artifacts.CODES_FILE)["database_codes"][:12]
    index, _ = retrieval.load_index(index_dir)
    assert capsys.readouterr().out.startswith(f"{index_dir}: 12 images, 16-bit codes")
    # a PNG of a database image gets the code the run gave that image during evaluation
    np.testing.assert_array_equal(index.codes, pack_codes(codes))
    assert index.image_ids.tolist() == [p.name for p in paths]

    query = 5
    assert cli.main(["search", str(index_dir), str(paths[query]), "-k", "4", "--json", "--device", "cpu"]) == 0
    answer = json.loads(capsys.readouterr().out)
    distances = (codes != codes[query]).sum(axis=1)
    expected = np.lexsort((np.arange(12), distances))[:4]  # distance, then database order
    assert [r["id"] for r in answer["results"]] == [paths[i].name for i in expected]
    assert [r["distance"] for r in answer["results"]] == distances[expected].tolist()
    assert answer["ties"] == [{"distance": int(d), "shown": int((distances[expected] == d).sum()),
                               "total": int((distances == d).sum())} for d in np.unique(distances[expected])]


def test_dataset_index_and_table_output(trained_run, tmp_path, capsys):
    [image] = _database_images(tmp_path / "images", 1)
    index_dir = tmp_path / "index"
    assert cli.main(["index", "build", "fashion_mnist", "--model", str(trained_run), "--out", str(index_dir)]) == 0
    assert "40 images, 16-bit codes" in capsys.readouterr().out
    assert cli.main(["search", str(index_dir), str(image), "-k", "3", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank dist  id" and lines[1].split() == ["1", "0", "0"]  # itself, at distance 0, first
    assert lines[-1].startswith("tie rule: database items are ranked by (Hamming distance, database index)")
    assert any(line.startswith("distance 0: ") for line in lines)


def test_index_errors_exit_1(trained_run, tmp_path, capsys):
    assert cli.main(["index", "build", "cifar10", "--model", str(trained_run), "--out", str(tmp_path)]) == 1
    assert "the run was trained on 'fashion_mnist', not 'cifar10'" in capsys.readouterr().err
    assert cli.main(["index", "build", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path / "x")]) == 1
    assert "is not a trained run" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["index", "build", str(tmp_path / "empty"), "--model", str(trained_run), "--out", str(tmp_path)]) == 1
    assert "holds no image file" in capsys.readouterr().err
    assert cli.main(["index", "build", "no_such_thing", "--model", str(trained_run), "--out", str(tmp_path)]) == 2
    assert "neither a folder of images nor a dataset name" in capsys.readouterr().err
    assert cli.main(["search", str(tmp_path), str(tmp_path / "none.png")]) == 1
    assert "none.png does not exist" in capsys.readouterr().err


# ---- the README's examples ----

def _readme_commands() -> list[list[str]]:
    import re
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The `hhlib` command\n.*?```bash\n(.*?)```", text, flags=re.S).group(1)
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if "hhlib" in words:
            commands.append(words[words.index("hhlib") + 1:])
    return commands


def test_readme_examples_are_valid_commands():
    from hhlib.params import list_param_sets

    commands = _readme_commands()
    assert {c[0] for c in commands} == {"check", "train", "evaluate", "index", "search"}
    parser = cli.build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        if args.command == "train":  # the file exists and every key and override is valid
            assert cli.train_configs(ROOT / args.params, cli.parse_overrides(args.overrides))
        if args.command == "check":
            assert set(args.sets) <= set(list_param_sets())


def test_check_command(capsys):
    assert cli.main(["check", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "smoke: parameter files valid" in out and "data present" in out
    assert cli.main(["check", "no_such_set"]) == 1


def test_python_dash_m_hhlib_is_the_command():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "hhlib", "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "{train,evaluate,check,index,search}" in run.stdout
