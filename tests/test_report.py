"""Tests of hhlib.report: results tables from metrics.json and the results.md beside it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hhlib import artifacts, report

RUNS = [
    {"method": "hybridhash", "bits": 64, "map": 0.8, "map_tie_aware": 0.79, "topk": 1000, "train_seconds": 10.0,
     "run_dir": "x/wml_64"},
    {"method": "hybridhash", "bits": 16, "map": 0.7, "map_tie_aware": 0.69, "topk": 1000, "train_seconds": 5.0,
     "run_dir": "x/wml_16"},
]
ABLATIONS = [
    {"study": "baseline", "name": "hybridhash (paper)", "backbone": "hybridhash", "variant": "hybrid", "loss": "wml",
     "bits": 32, "map": 0.6},
    {"study": "loss", "name": "loss=dpsh", "backbone": "hybridhash", "variant": "hybrid", "loss": "dpsh", "bits": 16,
     "map": 0.5},
]
REFERENCE = {"map": {"16": 0.803, "64": None}, "source": "the authors' log", "metric": "mAP@1000, best of evals"}


def _metrics(**extra):
    return {"dataset": "imagenet", "runs": [dict(r) for r in RUNS], "ablations": [dict(a) for a in ABLATIONS], **extra}


def test_results_table_sorted_with_paper_numbers_beside_ours():
    table = report.results_table(_metrics(paper_reference=REFERENCE))
    assert list(table["bits"]) == [16, 64]
    assert list(table.columns) == ["method", "bits", "map", "map_tie_aware", "topk", "train_seconds",
                                   "paper_map", "paper_source"]
    assert table.loc[0, "paper_map"] == 0.803 and table.loc[0, "paper_source"] == "the authors' log"
    assert pd.isna(table.loc[1, "paper_map"]) and pd.isna(table.loc[1, "paper_source"])  # 64: no number, no source
    assert report.results_table(_metrics())["paper_map"].isna().all()
    assert len(report.results_table({"dataset": "x", "runs": []})) == 0


def test_ablations_table_columns_and_bits_filter():
    table = report.ablations_table(_metrics())
    assert list(table.columns) == ["study", "name", "backbone", "variant", "loss", "bits", "map"]
    assert list(table["bits"]) == [16, 32]
    assert list(report.ablations_table(_metrics(), bits=32)["name"]) == ["hybridhash (paper)"]


def test_run_row_names_the_missing_run():
    metrics = _metrics()
    assert report.run_row(metrics, 16)["run_dir"] == "x/wml_16"
    with pytest.raises(KeyError, match="no hybridhash run with 48 bits .* run 02_train with 48 in bits_list"):
        report.run_row(metrics, 48)


def test_evaluate_seeds_evaluates_every_seeds_codes_and_keeps_training_fields(tmp_path):
    import numpy as np

    from hhlib import artifacts

    labels = np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]
    run_dirs = []
    for seed, database in ((0, [[1, 1], [-1, -1], [1, 1], [-1, -1]]), (1, [[1, 1], [1, 1], [1, 1], [1, 1]])):
        folder = tmp_path / f"seed{seed}"
        artifacts.save_codes(folder / artifacts.CODES_FILE, query_codes=np.array([[1, 1], [-1, -1]], np.int8),
                             database_codes=np.array(database, np.int8), query_labels=labels[:2], database_labels=labels)
        run_dirs.append(str(folder))
    run = {"method": "hybridhash", "bits": 2, "map": 0.5, "map_std": 0.1, "train_seconds": 5.0, "seeds": [0, 1],
           "n_seeds": 2, "run_dirs": run_dirs, "run_dir": run_dirs[0], "map_last_evals_per_seed": [[[4, 0.4]], [[4, 0.6]]]}
    rows = report.evaluate_seeds({"runs": [run]}, [2])
    assert [(r["seed"], r["run_dir"], r["map_last_evals"]) for r in rows] == [
        (0, run_dirs[0], [[4, 0.4]]), (1, run_dirs[1], [[4, 0.6]])]
    assert rows[0]["map"] == 1.0  # codes separate the classes
    # one code for everything, ties in database order: AP (1 + 2/3) / 2 for query 0, (1/2 + 2/4) / 2 for query 1
    assert rows[1]["map"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2 + 2 / 4) / 2) / 2)
    assert all(r["train_seconds"] == 5.0 and "map_std" not in r and "run_dirs" not in r for r in rows)
    assert run["map"] == 0.5  # input untouched


def test_markdown_table_formats_numbers_and_missing_values():
    frame = pd.DataFrame({"name": ["a|b", "c"], "map": [0.12345, float("nan")], "bits": [16, 32], "note": [None, "x"]})
    lines = report.markdown_table(frame, digits=3, column_digits={"bits": 1}).splitlines()
    assert lines[0] == "| name | map | bits | note |"
    assert lines[1] == "|---|---:|---:|---|"
    assert lines[2] == "| a\\|b | 0.123 | 16 | – |"
    assert lines[3] == "| c | – | 32 | x |"
    weights = pd.DataFrame({"loss_weights": [{"quantization_weight": 0.1, "gamma": 20.0}, {}]})  # a run's searched weights
    assert report.markdown_table(weights).splitlines()[2:] == ["| quantization_weight 0.1, gamma 20.0 |", "| – |"]
    counts = pd.DataFrame({"constant_bits_per_seed": [[2, 0, 2], []]})  # a count per seed
    assert report.markdown_table(counts).splitlines()[2:] == ["| 2, 0, 2 |", "| – |"]


def test_write_results_markdown(tmp_path: Path):
    artifacts.update_metrics(tmp_path / artifacts.METRICS_FILE, dataset="imagenet", runs=RUNS, ablations=ABLATIONS,
                             paper_reference=REFERENCE, split={"sizes": {"query": 5000, "train": 13000}})
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "pr_curves.png").write_bytes(b"png")
    path = report.write_results_markdown(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "results.md"
    assert text.startswith("# Results: imagenet")
    assert "Split: query 5,000, train 13,000." in text
    assert "| hybridhash | 16 | 0.7000 | 0.6900 | 1000 | 5.0 | 0.8030 |" in text
    assert "`paper_map`: mAP@1000, best of evals; source: the authors' log." in text
    assert "| loss | loss=dpsh | hybridhash | hybrid | dpsh | 16 | 0.5000 |" in text
    assert "![pr_curves](figures/pr_curves.png)" in text


def test_write_results_markdown_without_paper_numbers(tmp_path: Path):
    artifacts.update_metrics(tmp_path / artifacts.METRICS_FILE, dataset="fashion_mnist", runs=RUNS)
    text = report.write_results_markdown(tmp_path).read_text()
    assert "no published figure with a source" in text
    assert "## Ablations" not in text and "## Figures" not in text


def test_load_metrics_and_resolve_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="run notebooks 01-05 first"):
        report.load_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a parameter set"):
        report.resolve_results_dir(tmp_path / "nothing_here")
    artifacts.update_metrics(tmp_path / artifacts.METRICS_FILE, dataset="fashion_mnist", runs=RUNS)
    assert report.resolve_results_dir(tmp_path) == tmp_path


def test_resolve_results_dir_of_a_parameter_set():
    # params/smoke writes to out_dir ../outputs/smoke/reproduce (relative to notebooks/), dataset fashion_mnist
    folder = report.resolve_results_dir("outputs/smoke")
    assert folder.parts[-4:] == ("outputs", "smoke", "reproduce", "fashion_mnist")
    assert report.resolve_results_dir("smoke") == folder


def test_main_usage_and_errors(tmp_path: Path, capsys):
    assert report.main([]) == 2
    assert "usage: python -m hhlib.report" in capsys.readouterr().err
    assert report.main([str(tmp_path / "none")]) == 1
    artifacts.update_metrics(tmp_path / artifacts.METRICS_FILE, dataset="fashion_mnist", runs=RUNS)
    assert report.main([str(tmp_path)]) == 0
    assert (tmp_path / "results.md").is_file()
    assert not math.isnan(report.results_table(report.load_metrics(tmp_path))["map"].iloc[0])


def test_results_markdown_carries_every_notebooks_readings():
    import json
    from pathlib import Path

    metrics = json.loads((Path(__file__).resolve().parents[1] / "outputs/fashion_mnist/metrics.json").read_text())
    text = report.results_markdown(metrics)
    assert "## Readings" in text
    for title in ("**Data**", "**Training**", "**Evaluation**", "**t-SNE**", "**Ablations and comparisons**",
                  "**Text hashing (notebook 06)**"):
        assert title in text
    assert "this disagrees with the paper" in text  # the text study's CNN trails its linear baseline


def test_results_markdown_of_notebook_05_alone_holds_only_its_parts():
    import json
    from pathlib import Path

    study = json.loads((Path(__file__).resolve().parents[1] / "outputs/fashion_mnist/metrics.json").read_text())
    text = report.results_markdown({"dataset": "fashion_mnist", "ablations": study["ablations"]}, ["figures/ablations.png"])
    assert "## Ablations, method and backbone comparison" in text and "**Ablations and comparisons**" in text
    assert "| baseline | hybridhash (paper) |" in text and "![ablations](figures/ablations.png)" in text
    for absent in ("HybridHash mAP per code length", "**Data**", "**Training**", "paper_map", "No split is recorded"):
        assert absent not in text


def test_results_markdown_of_a_longer_study_carries_its_comparison_with_the_shorter(tmp_path: Path):
    # make converged saves shorter_study as notebook 05 saw it (relative to notebooks/); results.md must say
    # what the notebook's last cell says
    shorter = tmp_path / "metrics.json"
    artifacts.write_json(shorter, {"dataset": "fashion_mnist", "ablations": [
        {**ABLATIONS[0], "bits": 16, "epochs": 16, "map": 0.66, "map_std": 0.03, "n_seeds": 3}]})
    longer = {"dataset": "fashion_mnist", "shorter_study": str(shorter), "ablations": [
        {**ABLATIONS[0], "bits": 16, "epochs": 48, "map": 0.78, "map_std": 0.01, "n_seeds": 3}]}
    text = report.results_markdown(longer)
    assert "**Trained longer than the shorter study (notebook 05's `shorter_study`)**" in text
    assert "- hybridhash (paper), 16 bits: 0.660 ± 0.030 after 16 epochs, 0.780 ± 0.010 after 48 (+0.120)." in text
    assert "shorter study" not in report.results_markdown({**longer, "shorter_study": None})
    with pytest.raises(FileNotFoundError, match="render the study first"):
        report.results_markdown({**longer, "shorter_study": str(tmp_path / "none.json")})
