"""Tests of the executable paper: notebooks/, params/ and the Makefile's reproduce path.

- each notebook has exactly one ``parameters`` cell, papermill parses every line of it, and the
  cells follow style.md (title, imports, parameters, resolve, steps of <= 8 lines, save; no def/class);
- every key of params/**/*.yaml is a parameter of its notebook, and every parameter set validates;
- the notebooks are committed clean (no outputs, no execution counts);
- ``make reproduce DATASET=smoke`` runs the five notebooks end to end and writes metrics.json (with
  the schema of issue 8), results.md, the figures and the rendered notebooks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from hhlib import params

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PARAM_FILES = sorted((REPO / "params").glob("*/*.yaml"))
STEP_LINES = 8  # style.md: a step's code cell has 8 lines or fewer


def _notebook(stage: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{stage}.ipynb", as_version=4)


def _parameters_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_every_stage_has_a_notebook_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(params.STAGES)


@pytest.mark.parametrize("stage", params.STAGES)
def test_exactly_one_parameters_cell_fully_parsed(stage):
    nb = _notebook(stage)
    (cell,) = _parameters_cells(nb)
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
    inspected = papermill.inspect_notebook(str(NOTEBOOKS / f"{stage}.ipynb"))
    # papermill skips any line it cannot parse (e.g. a second "=" in the comment): every line must come through
    assert list(inspected) == assigned
    assert all(info["help"] for info in inspected.values()), "every parameter has a comment"
    assert all(name == name.lower() and name.isidentifier() for name in inspected)


@pytest.mark.parametrize("stage", params.STAGES)
def test_cell_order_and_no_logic_in_notebooks(stage):
    nb = _notebook(stage)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[:3] == ["markdown", "code", "code"], "title, imports, parameters"
    assert nb.cells[0].source.startswith("# ") and "**Writes**" in nb.cells[0].source
    assert _parameters_cells(nb)[0] is nb.cells[2]
    assert nb.cells[-2].cell_type == "markdown" and nb.cells[-2].source.startswith("## Save")
    resolve = nb.cells[4]
    for cell in nb.cells[3:]:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        assert not any(line.lstrip().startswith(("def ", "class ", "while ")) for line in lines)
        if cell is not resolve:
            assert len(lines) <= STEP_LINES, f"{stage}: a step cell has {len(lines)} lines:\n{cell.source}"


@pytest.mark.parametrize("stage", params.STAGES)
def test_notebooks_committed_clean(stage):
    nb = _notebook(stage)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{stage}: clear outputs before committing"


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_params_key_is_a_notebook_parameter(path):
    spec = papermill.inspect_notebook(str(NOTEBOOKS / f"{path.stem}.ipynb"))
    values = yaml.safe_load(path.read_text())
    assert set(values) <= set(spec), f"{path}: unknown keys {sorted(set(values) - set(spec))}"


@pytest.mark.parametrize("param_set", params.list_param_sets())
def test_every_params_set_validates(param_set):
    effective = params.check_params(param_set)
    assert set(effective) == set(params.STAGES)
    dataset = effective["01_prepare_data"]["dataset"]
    # e2e_<x>: the end-to-end test sets (tests/test_e2e_reproduce.py) run dataset <x>'s path on generated data
    assert dataset in ("fashion_mnist", param_set) or (param_set.startswith("e2e_") and dataset.startswith(param_set[4:]))


def test_smoke_params_are_the_notebook_defaults():
    for stage in params.STAGES:
        defaults = {k: v["default"] for k, v in params.notebook_parameters(stage).items()}
        smoke = params.load_params("smoke", stage)
        assert {**smoke, "out_dir": defaults["out_dir"]} == defaults, stage
        assert smoke["out_dir"] == "../outputs/smoke/reproduce"


def test_paper_numbers_only_with_a_source():
    for param_set in params.list_param_sets():
        values = params.load_params(param_set, "03_evaluate")
        if any(v is not None for v in values.get("paper_map", {}).values()):
            assert values["paper_map_source"] and values["paper_map_metric"], param_set


@pytest.mark.skipif(os.environ.get("HHLIB_SKIP_REPRODUCE") == "1", reason="HHLIB_SKIP_REPRODUCE=1")
def test_make_reproduce_smoke_end_to_end():
    out = REPO / "outputs" / "smoke"
    results = out / "reproduce" / "fashion_mnist"
    shutil.rmtree(out / "reproduce", ignore_errors=True)
    for stage in params.STAGES:
        for suffix in (".ipynb", ".html"):
            (out / f"{stage}{suffix}").unlink(missing_ok=True)
    start = time.time()
    run = subprocess.run(["make", "reproduce", "DATASET=smoke"], cwd=REPO, capture_output=True, text=True, timeout=1500)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "Passed unknown parameter" not in log
    for stage in params.STAGES:
        assert (out / f"{stage}.ipynb").is_file() and (out / f"{stage}.html").is_file()
        executed = nbformat.read(out / f"{stage}.ipynb", as_version=4)
        outputs = [o for c in executed.cells for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"]
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{stage} shows no figure"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion_mnist"
    (run_row,) = metrics["runs"]
    assert {"method", "bits", "map", "map_tie_aware", "topk", "train_seconds"} <= set(run_row)
    assert run_row["method"] == "hybridhash" and run_row["bits"] == 16 and 0 < run_row["map"] <= 1
    assert run_row["topk"] == 200 and run_row["radius"] == 2
    assert len(metrics["ablations"]) == 7
    for row in metrics["ablations"]:
        assert {"backbone", "variant", "loss", "bits", "map", "study", "name"} <= set(row)
        assert 0 < row["map"] <= 1
    assert metrics["split"]["sizes"] == {"query": 50, "train": 100, "database": 200}
    figures = {p.stem for p in (results / "figures").glob("*.png")}
    assert {"split_counts", "sample_images", "training_curves", "pr_curves", "precision_at_n",
            "retrieval_gallery", "tsne_16", "ablations"} <= figures
    text = (results / "results.md").read_text()
    assert text.startswith("# Results: fashion_mnist") and "| hybridhash | 16 |" in text
    assert (results / "results.md").stat().st_mtime >= start
