"""params/<set>/05_converged.yaml and ``make converged``: notebook 05's network claims trained longer.

The file is applied over the set's own 05 parameters; ``python -m hhlib.params check-overlay``
validates it and builds every run before the Makefile starts any work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hhlib import params
from hhlib.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
CONVERGED = REPO / "params" / "fashion_mnist" / "05_converged.yaml"
DOUBLED = REPO / "params" / "fashion_mnist" / "05_doubled.yaml"
QUADRUPLED = REPO / "params" / "fashion_mnist" / "05_quadrupled.yaml"
QUADRUPLED_METHODS = REPO / "params" / "fashion_mnist" / "05_quadrupled_methods.yaml"


def test_the_converged_check_trains_the_network_claims_longer_into_its_own_outputs():
    study = params.check_params("fashion_mnist")["05_ablations"]
    merged = params.check_overlay("fashion_mnist", "05_ablations", CONVERGED)
    assert merged["epochs"] == 3 * study["epochs"] and merged["seeds"] == study["seeds"]
    assert merged["out_dir"] != study["out_dir"], "the study's metrics.json must stay untouched"
    assert params.resolve_path(merged["shorter_study"]) == REPO / "outputs" / "fashion_mnist" / "metrics.json"
    names = {run["run_name"] for run in params.training_runs("05_ablations", merged)}
    methods = {run["run_name"] for run in params.training_runs("05_ablations", study) if run["loss"] != "wml"}
    assert len(methods) == len(study["losses"]) - 1 and methods < names, "every compared method"
    assert names - methods == {"ablation_baseline_hybridhash_16", "ablation_variant_no_interaction_16",
                               "ablation_variant_local_only_16", "ablation_backbone_cnn_full_16",
                               "ablation_backbone_nest_16", "ablation_patch_size_2_16"}
    searched = {run["run_name"]: run["lr"] for run in params.training_runs("05_ablations", study)}
    for run in params.training_runs("05_ablations", merged):
        assert run["lr"] == searched[run["run_name"]], "the same searched learning rates as the study"


def test_the_doubled_check_trains_the_network_claims_and_every_method_twice_as_long_as_the_converged_check():
    converged = params.check_overlay("fashion_mnist", "05_ablations", CONVERGED)
    doubled = params.check_overlay("fashion_mnist", "05_ablations", DOUBLED)
    assert doubled["epochs"] == 2 * converged["epochs"] and doubled["seeds"] == converged["seeds"]
    assert len({doubled["out_dir"], converged["out_dir"], "../outputs"}) == 3, "each check writes its own outputs"
    assert params.resolve_path(doubled["shorter_study"]) == params.resolve_path(converged["out_dir"]) / "fashion_mnist" / "metrics.json"
    names = {run["run_name"] for run in params.training_runs("05_ablations", doubled)}
    methods = {f"ablation_loss_{loss}_16" for loss in params.check_params("fashion_mnist")["05_ablations"]["losses"]
               if loss != "wml"}
    assert len(methods) == 14, "every method of the study is doubled, so that the ranking is judged at 96 epochs too"
    assert names == {"ablation_baseline_hybridhash_16", "ablation_variant_no_interaction_16",
                     "ablation_variant_local_only_16", "ablation_backbone_cnn_full_16", "ablation_backbone_nest_16"} | methods
    searched = {run["run_name"]: run["lr"] for run in params.training_runs("05_ablations", converged)}
    assert all(run["lr"] == searched[run["run_name"]] for run in params.training_runs("05_ablations", doubled))


def test_the_quadrupled_check_doubles_the_open_network_claims_against_the_doubled_rows():
    doubled = params.check_overlay("fashion_mnist", "05_ablations", DOUBLED)
    quadrupled = params.check_overlay("fashion_mnist", "05_ablations", QUADRUPLED)
    assert quadrupled["epochs"] == 2 * doubled["epochs"] and quadrupled["seeds"] == doubled["seeds"]
    assert quadrupled["out_dir"] != doubled["out_dir"], "each check writes its own outputs"
    assert params.resolve_path(quadrupled["shorter_study"]) == params.resolve_path(doubled["out_dir"]) / "fashion_mnist" / "metrics.json"
    runs = {run["run_name"]: run for run in params.training_runs("05_ablations", quadrupled)}
    assert set(runs) == {"ablation_baseline_hybridhash_16", "ablation_variant_no_interaction_16",
                         "ablation_variant_local_only_16", "ablation_backbone_nest_16"}  # the claims still gaining at 96
    before = {run["run_name"]: run for run in params.training_runs("05_ablations", doubled)}
    for name, run in runs.items():  # the same searched recipe and loss weights as at 96 epochs: only the length changes
        assert (run["lr"], run.get("loss_params")) == (before[name]["lr"], before[name].get("loss_params")), name


def test_the_quadrupled_methods_check_doubles_the_methods_still_gaining_against_the_doubled_rows():
    doubled = params.check_overlay("fashion_mnist", "05_ablations", DOUBLED)
    methods = params.check_overlay("fashion_mnist", "05_ablations", QUADRUPLED_METHODS)
    quadrupled = params.check_overlay("fashion_mnist", "05_ablations", QUADRUPLED)
    assert methods["epochs"] == quadrupled["epochs"] == 2 * doubled["epochs"] and methods["seeds"] == doubled["seeds"]
    assert len({methods["out_dir"], quadrupled["out_dir"], doubled["out_dir"]}) == 3, "each check writes its own outputs"
    assert params.resolve_path(methods["shorter_study"]) == params.resolve_path(doubled["out_dir"]) / "fashion_mnist" / "metrics.json"
    runs = {run["run_name"]: run for run in params.training_runs("05_ablations", methods)}
    still_gaining = {f"ablation_loss_{loss}_16" for loss in ("dch", "hashnet", "dlbhc", "drsdh")}  # beyond the spread at 96
    assert set(runs) == {"ablation_baseline_hybridhash_16"} | still_gaining, "the paper's loss beside them, nothing else"
    before = {run["run_name"]: run for run in params.training_runs("05_ablations", doubled)}
    for name, run in runs.items():  # the same searched recipe and loss weights as at 96 epochs: only the length changes
        assert (run["lr"], run.get("loss_params")) == (before[name]["lr"], before[name].get("loss_params")), name
    baseline = {run["run_name"]: run for run in params.training_runs("05_ablations", quadrupled)}["ablation_baseline_hybridhash_16"]
    assert TrainConfig(**runs["ablation_baseline_hybridhash_16"]).config_hash == TrainConfig(**baseline).config_hash, \
        "the paper's loss is the same run in both 192-epoch checks (only where it writes differs)"


def test_a_bad_overlay_is_refused_naming_the_file_and_every_problem(tmp_path):
    bad = tmp_path / "05_converged.yaml"
    bad.write_text(yaml.safe_dump({"epochs": 0, "backbones": ["resnet_nope"], "unknown_key": 1,
                                   "shorter_study": "../outputs/no_such_study/metrics.json"}))
    with pytest.raises(params.ParamsError) as info:
        params.check_overlay("fashion_mnist", "05_ablations", bad)
    text = str(info.value)
    assert str(bad) in text and "epochs" in text and "resnet_nope" in text and "unknown_key" in text
    assert "no_such_study" in text and "render the study first" in text
    with pytest.raises(FileNotFoundError, match="05_converged.yaml"):
        params.check_overlay("fashion_mnist", "05_ablations", tmp_path / "missing.yaml")


def test_check_overlay_command_exit_status(tmp_path, capsys):
    assert params.main(["check-overlay", "fashion_mnist", "05_ablations", str(CONVERGED)]) == 0
    assert "every training run builds" in capsys.readouterr().out
    assert params.main(["check-overlay", "fashion_mnist", "05_ablations", str(tmp_path / "none.yaml")]) == 1
    assert "not ready, nothing was run" in capsys.readouterr().err
    assert params.main(["check-overlay", "fashion_mnist"]) == 2
