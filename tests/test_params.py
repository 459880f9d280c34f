"""Tests of hhlib.params: parameter files validated against the notebooks' parameters cells."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hhlib import params

CELL = {
    "01_prepare_data": 'dataset = "fashion_mnist"  # a dataset\ndata_dir = None  # folder\nsplit_seed = 0  # seed\n'
                       "database_limit = 200  # subset (None: all)\nsamples_per_class = 4  # grid\n"
                       "query_per_class = 1  # queries (None: the protocol's)\ntrain_per_class = 2  # train (None: the protocol's)",
    "02_train": 'dataset = "fashion_mnist"  # a dataset\nsplit_seed = 0  # seed\nbits_list = [16]  # code lengths\n'
                'lr = 0.001  # learning rate\nprogress = False  # bars\npreset = "tiny32"  # preset\npretrained = None  # weights',
    "03_evaluate": 'dataset = "fashion_mnist"  # a dataset\nsplit_seed = 0  # seed\nbits_list = [16]  # code lengths\n'
                   "paper_map = {}  # paper numbers",
    "04_tsne": 'dataset = "fashion_mnist"  # a dataset\nbits_list = [16]  # code lengths',
    "05_ablations": 'dataset = "fashion_mnist"  # a dataset\nlosses = ["wml"]  # losses\nvariants = ["hybrid"]  # variants\n'
                    "database_limit = 200  # subset (None: all)",
    "06_text_hashing": 'dataset = "fashion_mnist"  # a dataset\nseeds = [0]  # training seeds',
}


def _notebook(folder: Path, stage: str, source: str) -> None:
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell("import math"), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{stage}.ipynb")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A notebooks/ folder with tiny parameters cells and an empty params/ folder."""
    notebooks, params_dir = tmp_path / "notebooks", tmp_path / "params"
    notebooks.mkdir()
    params_dir.mkdir()
    for stage, source in CELL.items():
        _notebook(notebooks, stage, source)
    return notebooks, params_dir


def _write_set(params_dir: Path, name: str, values: dict[str, str]) -> None:
    (params_dir / name).mkdir()
    for stage in params.STAGES:
        (params_dir / name / f"{stage}.yaml").write_text(values.get(stage, "dataset: fashion_mnist\n"))


def test_notebook_parameters_defaults_and_nullable(tree):
    notebooks, _ = tree
    found = params.notebook_parameters("01_prepare_data", notebooks)
    assert list(found) == ["dataset", "data_dir", "split_seed", "database_limit", "samples_per_class", "query_per_class",
                           "train_per_class"]
    assert found["database_limit"]["default"] == 200 and found["database_limit"]["nullable"]
    assert found["data_dir"]["nullable"]  # default None
    assert not found["samples_per_class"]["nullable"]
    with pytest.raises(FileNotFoundError, match="stages are 01_prepare_data"):
        params.notebook_parameters("99_nothing", notebooks)


def test_notebook_parameters_rejects_non_literal_default(tmp_path):
    _notebook(tmp_path, "04_tsne", "bits_list = list(range(3))  # derived")
    with pytest.raises(params.ParamsError, match="not a literal"):
        params.notebook_parameters("04_tsne", tmp_path)


def test_validate_params_names_key_problem_and_fix(tree):
    notebooks, _ = tree
    spec = params.notebook_parameters("02_train", notebooks)
    assert params.validate_params({"lr": 1, "bits_list": [16, 64], "progress": True}, spec, "f.yaml") == []
    problems = params.validate_params(
        {"lrr": 0.1, "lr": "2.5e-5", "bits_list": [16, 0], "progress": 1, "preset": "huge", "dataset": None},
        spec, "f.yaml",
    )
    text = "\n".join(problems)
    assert "f.yaml: lrr: not a parameter of the notebook" in text and "Passed unknown parameter" in text
    assert "f.yaml: lr: is str '2.5e-5' but the notebook's default is float" in text
    assert "f.yaml: bits_list: item 0: must be a positive int" in text
    assert "f.yaml: progress: is int 1 but the notebook's default is bool" in text
    assert "f.yaml: preset: unknown preset 'huge': valid names are" in text
    assert "f.yaml: dataset: is null" in text
    assert len(problems) == 6


def test_validate_params_paper_map_keys_are_quoted_code_lengths(tree):
    notebooks, _ = tree
    spec = params.notebook_parameters("03_evaluate", notebooks)
    assert params.validate_params({"paper_map": {"64": 0.9, "16": None}}, spec, "f") == []
    (problem,) = params.validate_params({"paper_map": {64: 0.9}}, spec, "f")
    assert "quoted string" in problem
    (problem,) = params.validate_params({"paper_map": {"64": 90.1}}, spec, "f")
    assert "in [0, 1]" in problem


def test_load_params_missing_and_bad_files(tree):
    notebooks, params_dir = tree
    with pytest.raises(FileNotFoundError, match=r"create params/nope/02_train.yaml \(start from params/smoke"):
        params.load_params("nope", "02_train", params_dir, notebooks)
    with pytest.raises(KeyError, match="valid stages are"):
        params.load_params("nope", "02_training", params_dir, notebooks)
    _write_set(params_dir, "bad", {"02_train": "lr: [1, 2\n", "03_evaluate": "- 1\n"})
    with pytest.raises(params.ParamsError, match="not valid YAML"):
        params.load_params("bad", "02_train", params_dir, notebooks)
    with pytest.raises(params.ParamsError, match="not a mapping"):
        params.load_params("bad", "03_evaluate", params_dir, notebooks)


def test_check_params_effective_values_and_cross_stage_checks(tree):
    notebooks, params_dir = tree
    _write_set(params_dir, "good", {"02_train": "bits_list: [16, 32]\nlr: 0.01\n"})
    effective = params.check_params("good", params_dir, notebooks)
    assert effective["02_train"]["lr"] == 0.01 and effective["02_train"]["preset"] == "tiny32"
    assert params.list_param_sets(params_dir) == ["good"]
    _write_set(params_dir, "split", {"01_prepare_data": "split_seed: 1\n", "03_evaluate": "bits_list: [64]\n"})
    with pytest.raises(params.ParamsError) as error:
        params.check_params("split", params_dir, notebooks)
    text = str(error.value)
    assert "split_seed: stages disagree (01_prepare_data=1, 02_train=0, 03_evaluate=0)" in text
    assert "03_evaluate.yaml: bits_list: [64] not trained by 02_train" in text


def test_check_dataset_ready_stops_on_missing_data_and_weights(tree, tmp_path, fashion_dir):
    notebooks, params_dir = tree
    _write_set(params_dir, "nodata", {"01_prepare_data": f"data_dir: {tmp_path / 'empty'}\n"})
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist|does not exist"):
        params.check_dataset_ready("nodata", params_dir, notebooks)
    _write_set(params_dir, "noweights", {"01_prepare_data": f"data_dir: {fashion_dir}\n",
                                         "02_train": "pretrained: ../nest.pth\n"})
    with pytest.raises(params.ParamsError, match=r"pretrained weights .*nest.pth not found: put timm's nest_base_jx"):
        params.check_dataset_ready("noweights", params_dir, notebooks)
    _write_set(params_dir, "ready", {"01_prepare_data": f"data_dir: {fashion_dir}\n"})
    assert params.check_dataset_ready("ready", params_dir, notebooks)["01_prepare_data"]["data_dir"] == str(fashion_dir)


def test_ablations_may_use_their_own_database_limit_only(tree):
    notebooks, params_dir = tree
    _write_set(params_dir, "own", {"05_ablations": "database_limit: 50\n"})
    effective = params.check_params("own", params_dir, notebooks)
    assert (effective["01_prepare_data"]["database_limit"], effective["05_ablations"]["database_limit"]) == (200, 50)
    _write_set(params_dir, "other", {"05_ablations": "dataset: cifar10\n"})
    with pytest.raises(params.ParamsError, match="dataset: stages disagree"):
        params.check_params("other", params_dir, notebooks)


SHARED_CELL = ('dataset = "fashion_mnist"  # a dataset\ndata_dir = None  # folder\nout_dir = "../outputs"  # root\n'
               "split_seed = 0  # seed\nimg_size = 32  # side (None: 224)\nquery_per_class = 1  # queries (None: all)\n"
               "train_per_class = 2  # train (None: all)\ndatabase_limit = 200  # subset (None: all)\n")


@pytest.fixture
def shared_tree(tmp_path: Path) -> tuple[Path, Path]:
    """Notebooks 01-05 declaring every shared key (plus one own key each), 06 only dataset and out_dir."""
    notebooks, params_dir = tmp_path / "shared_tree" / "notebooks", tmp_path / "shared_tree" / "params"
    notebooks.mkdir(parents=True)
    params_dir.mkdir()
    for stage in params.STAGES[:5]:
        _notebook(notebooks, stage, SHARED_CELL + "lr = 0.001  # learning rate")
    _notebook(notebooks, "06_text_hashing", 'dataset = "fashion_mnist"  # a dataset\nout_dir = "../outputs"  # root')
    return notebooks, params_dir


def _write_shared_set(params_dir: Path, name: str, shared: str, stages: dict[str, str]) -> Path:
    (params_dir / name).mkdir()
    (params_dir / name / params.SHARED_FILE).write_text(shared)
    for stage in params.STAGES:
        (params_dir / name / f"{stage}.yaml").write_text(stages.get(stage, ""))
    return params_dir / name


def test_shared_stages_are_the_notebooks_declaring_every_shared_key(shared_tree, tree):
    assert params.shared_stages(shared_tree[0]) == params.STAGES[:5]
    assert params.shared_stages(tree[0]) == ()  # the tiny notebooks lack out_dir, img_size...
    assert params.shared_stages() == params.STAGES[:5]  # the repository's: 06 (text) declares only 3 shared keys


def test_load_params_merges_shared_then_stage_file(shared_tree):
    notebooks, params_dir = shared_tree
    folder = _write_shared_set(params_dir, "s", "dataset: cifar10\nimg_size: 64\ndatabase_limit: 500\n",
                               {"02_train": "lr: 0.01\n", "05_ablations": "database_limit: 50\n",
                                "06_text_hashing": "dataset: cifar10\n"})
    assert params.stage_files("s", "02_train", params_dir, notebooks) == [folder / "shared.yaml", folder / "02_train.yaml"]
    assert params.stage_files("s", "06_text_hashing", params_dir, notebooks) == [folder / "06_text_hashing.yaml"]
    assert params.load_params("s", "02_train", params_dir, notebooks) == {
        "dataset": "cifar10", "img_size": 64, "database_limit": 500, "lr": 0.01}
    assert params.load_params("s", "05_ablations", params_dir, notebooks)["database_limit"] == 50  # its own key wins
    assert params.load_params("s", "06_text_hashing", params_dir, notebooks) == {"dataset": "cifar10"}
    effective = params.check_params("s", params_dir, notebooks)
    assert [effective[s]["img_size"] for s in params.STAGES[:5]] == [64] * 5
    assert effective["01_prepare_data"]["split_seed"] == 0  # a shared key shared.yaml leaves out: the default


def test_stage_file_repeating_a_shared_key_is_rejected_naming_file_and_key(shared_tree):
    notebooks, params_dir = shared_tree
    _write_shared_set(params_dir, "r", "dataset: cifar10\nimg_size: 64\n",
                      {"03_evaluate": "img_size: 64\nlr: 0.1\n", "04_tsne": "dataset: cifar10\n",
                       "06_text_hashing": "dataset: cifar10\n"})
    with pytest.raises(params.ParamsError) as error:
        params.check_params("r", params_dir, notebooks)
    assert error.value.problems == [
        f"{params_dir / 'r' / '03_evaluate.yaml'}: img_size: repeats a key of shared.yaml, which gives it to every "
        "stage: remove it here (or change it in shared.yaml)",
        f"{params_dir / 'r' / '04_tsne.yaml'}: dataset: repeats a key of shared.yaml, which gives it to every "
        "stage: remove it here (or change it in shared.yaml)",
    ]


def test_shared_file_takes_only_valid_shared_keys_reported_once(shared_tree):
    notebooks, params_dir = shared_tree
    _write_shared_set(params_dir, "b", "lr: 0.1\nimg_size: 0\n", {})
    with pytest.raises(params.ParamsError) as error:
        params.check_params("b", params_dir, notebooks)
    shared = params_dir / "b" / "shared.yaml"
    assert error.value.problems == [
        f"{shared}: lr: not a shared key: move it to the stage files that use it; shared keys are "
        + ", ".join(params.SHARED_KEYS),
        f"{shared}: img_size: must be a positive int, got 0",
    ]


def test_stage_outside_the_shared_file_must_agree_with_it(shared_tree):
    notebooks, params_dir = shared_tree
    _write_shared_set(params_dir, "t", "dataset: cifar10\n", {})  # 06 left at its default, fashion_mnist
    with pytest.raises(params.ParamsError, match=r"dataset: stages disagree \(01_prepare_data='cifar10'.*"
                                                  r"06_text_hashing='fashion_mnist'\): set it once in params/t/shared.yaml"):
        params.check_params("t", params_dir, notebooks)


def test_stage_values_merge_the_folders_shared_file(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "shared.yaml").write_text('dataset: "fashion_mnist"\nimg_size: 32\n')
    assert params.stage_values(folder / "02_train.yaml", {"lr": 0.1}) == {"dataset": "fashion_mnist", "img_size": 32,
                                                                          "lr": 0.1}
    assert params.stage_values(folder / "06_text_hashing.yaml", {"lr": 0.1}) == {"lr": 0.1}  # 06 gets no shared keys
    assert params.stage_values(folder / "recipe.yaml", {"lr": 0.1}) == {"lr": 0.1}  # not a stage file
    with pytest.raises(params.ParamsError, match=r"02_train.yaml: img_size: repeats a key of shared.yaml"):
        params.stage_values(folder / "02_train.yaml", {"img_size": 64})


def test_resolve_path_is_relative_to_notebooks(tmp_path):
    assert params.resolve_path(None) is None
    assert params.resolve_path("../outputs", tmp_path / "nb") == (tmp_path / "outputs").resolve()
    assert params.resolve_path("/abs/x", tmp_path) == Path("/abs/x")


def test_ablation_plan_baseline_once_one_change_per_run():
    plan = params.ablation_plan(
        [16, 32], variants=["hybrid", "local_only"], block_token_kernels=[None, 7], alphas=[0.5, 0.1],
        token_layouts=["paper", "reference"], losses=["wml", "dpsh", "ninh"], backbones=["hybridhash", "cnn"],
        model_overrides={"drop_path_rate": 0.0}, loss_params={"skip_unwritten": True},
    )
    names = [run["labels"]["name"] for run in plan if run["train"]["bits"] == 16]
    assert names == ["hybridhash (paper)", "variant=local_only", "block_token_kernel=7", "alpha=0.1",
                     "token_layout=reference", "loss=dpsh", "loss=ninh", "backbone=cnn"]
    assert len(plan) == 16
    by_name = {run["labels"]["name"]: run for run in plan if run["train"]["bits"] == 32}
    assert by_name["alpha=0.1"]["train"]["loss_params"] == {"skip_unwritten": True, "alpha": 0.1}
    assert by_name["loss=dpsh"]["train"]["loss_params"] == {}
    assert by_name["backbone=cnn"]["train"]["model_overrides"] == {"drop_path_rate": 0.0, "backbone": "cnn"}
    assert by_name["backbone=cnn"]["labels"] == {"study": "backbone", "name": "backbone=cnn", "backbone": "cnn",
                                                 "variant": "hybrid", "loss": "wml", "family": "symmetric"}
    assert by_name["block_token_kernel=7"]["train"]["run_name"] == "ablation_block_token_kernel_7_32"
    assert len({run["train"]["run_name"] for run in plan}) == len(plan)


def test_ablation_plan_trains_every_configuration_once_per_seed():
    plan = params.ablation_plan([16], variants=["hybrid", "local_only"], seeds=[0, 1, 2])
    assert [(run["labels"]["name"], run["train"]["seed"]) for run in plan] == [
        ("hybridhash (paper)", 0), ("hybridhash (paper)", 1), ("hybridhash (paper)", 2),
        ("variant=local_only", 0), ("variant=local_only", 1), ("variant=local_only", 2)]
    assert [run["train"]["run_name"] for run in plan[:3]] == [
        "ablation_baseline_hybridhash_16", "ablation_baseline_hybridhash_16_seed1", "ablation_baseline_hybridhash_16_seed2"]
    with pytest.raises(KeyError, match="unknown loss 'nope'"):
        params.ablation_plan([16], losses=["nope"])


def test_main_usage_and_failure(capsys):
    assert params.main([]) == 2
    assert "usage: python -m hhlib.params check" in capsys.readouterr().err
    assert params.main(["check", "no_such_set"]) == 1
    assert "not ready, nothing was run" in capsys.readouterr().err


def test_ablation_plan_applies_searched_recipes_and_names_missing_ones():
    recipes = {"hybridhash (paper)": {"lr": 0.002, "epochs": 32}, "loss=dpsh": {"lr": 0.004, "epochs": 16},
               "backbone=cnn": {"lr": 0.001, "epochs": 32}}
    plan = params.ablation_plan([16], variants=["hybrid", "local_only"], losses=["wml", "dpsh"],
                                backbones=["hybridhash", "cnn"], recipes=recipes)
    chosen = {run["labels"]["name"]: (run["train"]["lr"], run["train"]["epochs"]) for run in plan}
    assert chosen == {"hybridhash (paper)": (0.002, 32), "variant=local_only": (0.002, 32),
                      "loss=dpsh": (0.004, 16), "backbone=cnn": (0.001, 32)}
    assert {run["labels"]["recipe"] for run in plan} == {"searched"}
    with pytest.raises(KeyError, match=r"no recipe for \['loss=ninh'\]"):
        params.ablation_plan([16], losses=["ninh"], recipes=recipes)


def test_searched_loss_weights_reach_each_run_unless_it_sets_the_weight_itself():
    recipes = {"hybridhash (paper)": {"lr": 0.002, "loss_params": {"alpha": 1.0}},
               "loss=dch": {"lr": 0.004, "loss_params": {"quantization_weight": 0.01}}}
    plan = params.ablation_plan([16], variants=["hybrid", "local_only"], alphas=[0.1, 0.5, 1.0], losses=["wml", "dch"],
                                recipes=recipes)
    weights = {run["labels"]["name"]: run["train"]["loss_params"] for run in plan}
    # the ablations of the paper's network take the paper's method's searched alpha; an alpha ablation keeps its own;
    # the ablation value equal to the baseline's searched alpha (1.0) adds no run, the paper's 0.5 does
    assert weights == {"hybridhash (paper)": {"alpha": 1.0}, "variant=local_only": {"alpha": 1.0},
                       "alpha=0.1": {"alpha": 0.1}, "alpha=0.5": {"alpha": 0.5}, "loss=dch": {"quantization_weight": 0.01}}
    labels = {run["labels"]["name"]: run["labels"].get("loss_weights") for run in plan}  # metrics.json's column
    assert labels["alpha=0.1"] == {"alpha": 0.1} and labels["loss=dch"] == {"quantization_weight": 0.01}
    # a weight fixed in notebook 05's loss_params wins over the search
    fixed = params.ablation_plan([16], losses=["wml"], loss_params={"alpha": 0.5}, recipes=recipes)
    assert [run["train"]["loss_params"] for run in fixed] == [{"alpha": 0.5}]


def test_ablation_plan_adds_complete_systems_with_their_own_network_and_loss():
    systems = {"itdh": {"loss": "dlbhc", "model_overrides": {"backbone": "efficientnet_lite0", "backbone_weights": "imagenet"}},
               "kang2012": {"loss": "dsh", "model_overrides": {"backbone": "multirep"}, "loss_params": {"margin": 8.0}}}
    plan = params.ablation_plan([16], systems=systems, model_overrides={"drop_path_rate": 0.0})
    by_name = {run["labels"]["name"]: run for run in plan}
    itdh = by_name["system=itdh"]
    assert itdh["train"]["loss"] == "dlbhc" and itdh["labels"]["backbone"] == "efficientnet_lite0"
    assert itdh["train"]["model_overrides"] == {"drop_path_rate": 0.0, "backbone": "efficientnet_lite0",
                                                "backbone_weights": "imagenet"}
    assert by_name["system=kang2012"]["train"]["loss_params"] == {"margin": 8.0}
    with pytest.raises(KeyError, match="unknown keys \\['backbone'\\]"):
        params.ablation_plan([16], systems={"x": {"loss": "dsh", "backbone": "multirep"}})
    with pytest.raises(KeyError, match="unknown loss 'nope'"):
        params.ablation_plan([16], systems={"x": {"loss": "nope"}})
