"""Tests of hhlib.tuning: the study's search from params/<set>/search.yaml to search_results.yaml and back."""

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from hhlib import params, tuning

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def smoke_params(tmp_path):
    """A copy of params/smoke whose outputs go to tmp_path."""
    folder = tmp_path / "params" / "smoke"
    shutil.copytree(REPO / "params" / "smoke", folder)
    for path in folder.glob("*.yaml"):  # shared.yaml and the stage files
        text = re.sub(r'^out_dir: .*$', f'out_dir: "{tmp_path / "outputs"}"', path.read_text(), flags=re.M)
        path.write_text(text)
    return tmp_path / "params"


def test_search_params_are_checked(smoke_params):
    path = smoke_params / "smoke" / "search.yaml"
    path.write_text(path.read_text() + 'space_typo: 1\n')
    with pytest.raises(params.ParamsError, match="space_typo: unknown key"):
        tuning.load_search_params("smoke", smoke_params)
    path.write_text('seeds: [0]\n')
    with pytest.raises(params.ParamsError, match="validation_per_class: missing"):
        tuning.load_search_params("smoke", smoke_params)
    with pytest.raises(FileNotFoundError, match="search.yaml not found"):
        tuning.load_search_params("nope", smoke_params)


def test_loss_space_must_give_every_loss_the_same_number_of_weight_points(smoke_params):
    path = smoke_params / "smoke" / "search.yaml"
    original = path.read_text()

    def with_loss_space(value):
        path.write_text(re.sub(r"^loss_space: .*$", f"loss_space: {value}", original, flags=re.M))

    with_loss_space('{"wml": {"alpha": [0.5, 1.0]}}')
    with pytest.raises(params.ParamsError, match=r"loss_space: dpsh: missing \(write \{\} for a loss with no weight"):
        tuning.load_search_params("smoke", smoke_params)
    with_loss_space('{"wml": {"alpha": [0.5, 1.0]}, "dpsh": {"quantization_weight": [1.0, 10.0, 100.0]}}')
    with pytest.raises(params.ParamsError, match=r"the same number of weight points \(the same budget\), got "
                                                 r"\{'wml': 2, 'dpsh': 3\}"):
        tuning.load_search_params("smoke", smoke_params)
    with_loss_space('{"wml": {"alpha": [0.5, 1.0]}, "dpsh": {"eta": [1.0, 10.0]}}')
    with pytest.raises(params.ParamsError, match="'eta' is not a hyperparameter of the loss"):
        tuning.load_search_params("smoke", smoke_params)
    with_loss_space('{"wml": {"alpha": [0.5, 1.0]}, "dpsh": [1.0, 10.0]}')
    with pytest.raises(params.ParamsError, match="dpsh: must map each loss weight to its list of values"):
        tuning.load_search_params("smoke", smoke_params)
    with_loss_space('{"wml": {"alpha": [0.5, 1.0]}, "dpsh": {}}')  # a loss with no weight: the lr grid alone
    tuning.load_search_params("smoke", smoke_params)
    # a grid without the value the run trains with is refused before any training
    with_loss_space('{"wml": {"alpha": [0.25, 1.0]}, "dpsh": {}}')
    results = smoke_params / "smoke" / tuning.RESULTS_FILE
    before = results.read_text() if results.exists() else None
    with pytest.raises(params.ParamsError, match=r"wml: alpha: \[0.25, 1.0\] must include the value hybridhash \(paper\) "
                                                 r"trains with, 0.5"):
        tuning.run_study_search("smoke", smoke_params)
    assert (results.read_text() if results.exists() else None) == before


def test_search_bases_start_from_notebook_05s_recipe(smoke_params):
    bases = tuning.search_bases("smoke", smoke_params)
    assert [name for name, _ in bases] == ["hybridhash (paper)", "loss=dpsh", "backbone=cnn"]
    stage = params.check_params("smoke", smoke_params)["05_ablations"]
    for _, config in bases:
        assert (config.bits, config.preset, config.optimizer) == (16, stage["preset"], stage["optimizer"])


def test_study_search_writes_every_trial_and_notebook_05_reads_the_choice(smoke_params):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tuning.run_study_search("smoke", smoke_params)
    finally:
        torch.set_num_threads(threads)
    records = yaml.safe_load(path.read_text())
    assert list(records) == ["hybridhash (paper)", "loss=dpsh", "backbone=cnn"]
    weights = {"hybridhash (paper)": ("alpha", 0.5, 1.0), "loss=dpsh": ("quantization_weight", 10.0, 1.0),
               "backbone=cnn": ("alpha", 0.5, 1.0)}  # params/smoke/search.yaml's loss_space: (weight, default, other)
    for name, record in records.items():
        weight, default, other = weights[name]
        first_choice = max(record["trials"][:2], key=lambda t: t["val_map"])["lr"]  # the lr stage (one seed, no ties here)
        assert [(t["lr"], t[weight]) for t in record["trials"]] == [(0.002, default), (0.003, default), (first_choice, other)]
        assert record["chosen"]["lr"] in (0.002, 0.003) and record["validation_per_class"] == 2
        assert record["chosen"]["loss_params"][weight] in (default, other)
    recipes = tuning.load_recipes(path)
    assert recipes == {name: record["chosen"] for name, record in records.items()}
    plan = params.ablation_plan([16], losses=["dpsh"], backbones=["cnn"], recipes=recipes)
    assert {run["labels"]["name"]: run["train"]["lr"] for run in plan} == {n: r["lr"] for n, r in recipes.items()}
    assert {run["labels"]["name"]: run["train"]["loss_params"] for run in plan} == {
        n: r["loss_params"] for n, r in recipes.items()}
    with pytest.raises(FileNotFoundError, match="make search"):
        tuning.load_recipes(path.parent / "missing.yaml")
    assert tuning.load_recipes(None) == {}
    summary = tuning.search_summary(path)  # what notebook 05 saves in metrics.json (ablation_search)
    for name, record in records.items():
        points = summary[name]
        weight = weights[name][0]
        assert [(p["lr"], p["loss_params"]) for p in points] == [(t["lr"], {weight: t[weight]}) for t in record["trials"]]
        assert [p["val_map"] for p in points] == [t["val_map"] for t in record["trials"]]  # one search seed
        assert [p["lr"] for p in points if p["chosen"]] == [record["chosen"]["lr"]]
        assert {p["trial"]: p["excluded"] for p in points if p["excluded"]} == {int(t): why for t, why in record["excluded"].items()}
    assert tuning.search_summary(None) == {}
    first = next(iter(records))  # a rendering that trained one of the searched runs keeps that run's search alone
    assert tuning.search_summary(path, [first, "a run nobody searched"]) == {first: summary[first]}


def test_params_check_names_a_missing_search_results_file(smoke_params):
    path = smoke_params / "smoke" / "05_ablations.yaml"
    path.write_text(path.read_text() + 'search_results: "../params/smoke/no_such_results.yaml"\n')
    with pytest.raises(params.ParamsError, match="does not exist: run `make search"):
        params.check_params("smoke", smoke_params)


def test_search_bases_include_notebook_05s_systems(smoke_params):
    path = smoke_params / "smoke" / "05_ablations.yaml"
    text = re.sub(r"^systems: .*$", 'systems: {"kang2012": {"loss": "dsh", "model_overrides": {"backbone": "multirep"}}}',
                  path.read_text(), flags=re.M)
    path.write_text(text)
    bases = dict(tuning.search_bases("smoke", smoke_params))
    assert list(bases) == ["hybridhash (paper)", "loss=dpsh", "backbone=cnn", "system=kang2012"]
    assert bases["system=kang2012"].loss == "dsh"
    assert bases["system=kang2012"].model_overrides["backbone"] == "multirep"
