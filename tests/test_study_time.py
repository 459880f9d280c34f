"""Tests for hhlib.study_time: the study's runs, their kinds, the evaluation count and the estimate's arithmetic."""

import json

import pytest

from hhlib import artifacts, params, study_time
from hhlib.train import TrainConfig, fit

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist (make setup installs it)


def test_the_gpu_set_lists_every_run_of_notebooks_02_and_05_once_per_seed():
    runs = study_time.study_runs("fashion_mnist_full")
    effective = params.check_params("fashion_mnist_full")
    for stage in params.TRAINING_STAGES:
        configurations = params.training_runs(stage, effective[stage])
        seeds = effective[stage]["seeds"]
        stage_runs = [run for run in runs if run["stage"] == stage]
        assert len(stage_runs) == len(configurations) * len(seeds)
        assert {run["seed"] for run in stage_runs} == set(seeds)
    assert len(runs) == 20 + 580  # 02: 4 code lengths x 5 seeds; 05: 29 configurations x 4 code lengths x 5 seeds


def test_runs_that_differ_only_in_what_costs_nothing_share_a_kind():
    runs = study_time.study_runs("fashion_mnist_full")
    kinds = {study_time.run_kind(run) for run in runs}
    assert len(kinds) == 27
    by_name = {run.get("run_name"): run for run in runs if run.get("run_name")}
    baseline, alpha = by_name["ablation_baseline_hybridhash_16"], by_name["ablation_alpha_0.1_64"]
    assert study_time.run_kind(baseline) == study_time.run_kind(alpha), "seed, code length and loss weights cost nothing"
    notebook_02 = next(run for run in runs if run["stage"] == "02_train")
    patch_2 = by_name["ablation_patch_size_2_16"]
    assert study_time.run_kind(notebook_02) == study_time.run_kind(patch_2), "the same network and loss"
    assert study_time.run_kind(baseline) != study_time.run_kind(by_name["ablation_loss_dch_16"])


@pytest.mark.parametrize(("epochs", "eval_every", "count"), [(112, 8, 14), (48, 12, 4), (50, 8, 7), (5, 0, 1), (3, 5, 1)])
def test_evaluation_count_formula(epochs, eval_every, count):
    assert study_time.evaluation_count(epochs, eval_every) == count


def test_evaluation_count_matches_what_a_run_does(tmp_path, fashion_dir):
    config = TrainConfig.from_dict({
        "dataset": "fashion_mnist", "data_dir": str(fashion_dir), "preset": "tiny32", "bits": 16, "img_size": 32,
        "query_per_class": 1, "train_per_class": 2, "batch_size": 4, "epochs": 5, "eval_every": 2, "lr": 1e-3,
        "out_dir": str(tmp_path), "progress": False, "device": "cpu"})
    fit(config)
    history = artifacts.read_jsonl(config.run_dir / artifacts.METRICS_LOG_FILE)
    assert sum("map" in record for record in history) == study_time.evaluation_count(5, 2) == 3


def test_the_estimate_scales_each_kind_to_each_run_and_counts_untimed_runs_apart():
    timed = {"loss": "wml", "epochs": 10, "eval_every": 5, "stage": "02_train"}
    longer = {**timed, "epochs": 20, "stage": "05_ablations"}
    untimed = {**timed, "loss": "dch", "stage": "05_ablations"}
    timings = {study_time.run_kind(timed): {"seconds_per_train_image": 0.01, "seconds_per_encoded_image": 0.001},
               study_time.run_kind(untimed): {"error": "RuntimeError: out of memory"}}
    sizes = {"train": 100, "query": 10, "database": 90}
    result = study_time.estimate([timed, longer, untimed], timings, lambda run: sizes)
    # 02: 10 epochs x 100 images x 0.01 s = 10 s; 2 evaluations x 100 images x 0.001 s = 0.2 s
    assert result["stages"]["02_train"] == {"runs": 1, "train_seconds": 10.0, "eval_seconds": 0.2, "hours": 0.0}
    # 05: 20 epochs -> 20 s of training and 4 evaluations (0.4 s); the DCH run is untimed
    assert result["stages"]["05_ablations"]["train_seconds"] == 20.0
    assert result["stages"]["05_ablations"]["eval_seconds"] == 0.4
    assert result["untimed_runs"] == {"05_ablations": 1}
    assert result["total_hours"] == round(30.6 / 3600, 2)


def test_a_timing_run_is_the_run_shrunk_to_two_epochs_and_smaller_splits(tmp_path):
    run = {"stage": "05_ablations", "epochs": 48, "eval_every": 12, "train_per_class": None, "database_limit": 10_000,
           "loss": "wml", "run_name": "ablation_baseline_hybridhash_16"}
    timed = study_time.timing_run(run, tmp_path, "kind00", train_per_class=200, database_limit=16_000)
    assert "stage" not in timed
    assert (timed["epochs"], timed["eval_every"]) == (study_time.TIMED_EPOCHS, study_time.TIMED_EPOCHS)
    assert (timed["train_per_class"], timed["database_limit"]) == (200, 10_000), "never larger than the run's own"
    assert (timed["run_name"], timed["resume"], timed["out_dir"]) == ("kind00", False, str(tmp_path))


def test_measuring_a_set_times_its_kinds_and_estimates_the_rest(tmp_path):
    lines = []  # the smoke set's own split (5 queries per class) needs more images than the fixture files hold
    result = study_time.measure_study_time("smoke", tmp_path, device="cpu", data_dir=FASHION_MNIST,
                                           train_per_class=2, database_limit=20, max_kinds=1, report=lines.append)
    first = result["kinds"][0]
    assert first["seconds_per_train_image"] > 0 and first["seconds_per_encoded_image"] > 0
    assert first["timed_train_images"] == 20 and len(lines) == 1
    estimate = result["estimate"]
    timed_runs = first["runs"]
    assert sum(stage["runs"] for stage in estimate["stages"].values()) == timed_runs
    assert sum(estimate["untimed_runs"].values()) == len(study_time.study_runs("smoke")) - timed_runs


def test_the_command_line_writes_the_runs_for_a_machine_without_papermill(tmp_path, capsys):
    out = tmp_path / "runs.json"
    assert study_time.main(["smoke", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(study_time.study_runs("smoke"), default=str))
    assert study_time.main(["smoke"]) == 2
    assert "usage" in capsys.readouterr().err
