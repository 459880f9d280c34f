# hhlib / HybridHash notebooks: one entry point for setup, tests, benchmarks and the paper pipeline.
#   make reproduce                 the whole study on the embedded default (Fashion-MNIST, CPU, offline)
#   make reproduce DATASET=<name>  the paper's study for one dataset (see README for where data must be)
#   make test                      pytest + nbval (what CI runs)
# Every target sets up .venv first (python3 -m venv + pip), so each works as the first command typed.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
# exported: the notebooks read it (hhlib.data.DATA_DIR_ENV) when their data_dir is null, as the setup script does
export FASHION_MNIST_DIR
DATASET ?= fashion_mnist
FORCE ?= 0
# `nuswide` is the paper's NUS-WIDE setting: the 21-concept protocol
ifeq ($(DATASET),nuswide)
override DATASET := nuswide_21
endif
OUT := outputs/$(DATASET)
STAGES := 01_prepare_data 02_train 03_evaluate 04_tsne 05_ablations 06_text_hashing
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
# OpenMP threads sleep instead of spinning while they wait: on a shared 2-core CPU spinning made
# 2-thread training 5-10x slower (docs/training.md)
export OMP_WAIT_POLICY := PASSIVE
# The project's Jupyter kernel "hhlib" runs .venv/bin/python. Make's own tools (papermill, nbconvert, lab)
# look in the venv's Jupyter folder first, so another checkout's "hhlib" kernel never takes its place.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter$(if $(JUPYTER_PATH),:$(JUPYTER_PATH))
# hhlib's log (one line per training epoch) goes to stderr; papermill --log-output shows it live
export HHLIB_LOG_LEVEL ?= INFO
# JupyterLab refuses to start as root unless told to
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help setup data test bench reproduce reproduce-locked search compare-rerun converged converged-locked lab clean-smoke

clean-smoke:  ## smoke outputs pile up: a changed config trains in a new run folder (named by the config hash)
	rm -rf outputs/smoke

help:
	@echo "make setup                     create .venv (python3 -m venv + pinned pip requirements) and get Fashion-MNIST"
	@echo "make test                      pytest tests/ then nbval over notebooks/ (the CI command)"
	@echo "make bench                     speed benchmarks -> outputs/bench/*.json"
	@echo "make reproduce [DATASET=name]  run notebooks 01-06 with params/<name>/ into outputs/<name>/ (default: fashion_mnist)"
	@echo "make search [DATASET=name]     the equal-budget recipe search of notebook 05 -> params/<name>/search_results.yaml"
	@echo "make compare-rerun [DATASET=name]  after make reproduce: outputs/<name>/metrics.json against the committed one, digit for digit"
	@echo "make converged [DATASET=name]  notebook 05's network claims and methods trained longer (params/<name>/05_converged.yaml) -> outputs/<name>_converged/"
	@echo "make converged CONVERGED=doubled  the network claims and every method trained twice as long again (params/<name>/05_doubled.yaml) -> outputs/<name>_doubled/"
	@echo "make converged CONVERGED=quadrupled  the claims still open at 96 epochs, at 192 (params/<name>/05_quadrupled.yaml) -> outputs/<name>_quadrupled/"
	@echo "make converged CONVERGED=quadrupled_methods  the methods still gaining at 96 epochs, at 192 (params/<name>/05_quadrupled_methods.yaml) -> outputs/<name>_quadrupled_methods/"
	@echo "make lab                       JupyterLab at the repository root with the project's kernel (hhlib)"

$(STAMP): requirements.txt requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c requirements-lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name hhlib --display-name "Python (hhlib)" >/dev/null
	@# also in the user's Jupyter folder (jupyter --data-dir), so a JupyterLab outside .venv finds the kernel
	$(BIN)/python -m ipykernel install --user --name hhlib --display-name "Python (hhlib)" >/dev/null
	@touch $@

setup: $(STAMP) data

data:
	@bash scripts/ensure_fashion_mnist.sh "$(FASHION_MNIST_DIR)"
	@bash scripts/ensure_apt_lists.sh

test: setup
	$(BIN)/python -m pytest tests/ -q --durations=15
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/ -q; \
	fi

bench: setup
	@mkdir -p outputs/bench
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_study.py  # the old default's notebook-02 runs: one at a time vs two at once
	$(BIN)/python benchmarks/bench_train.py  # official columns need HYBRIDHASH_OFFICIAL_DIR (docs/performance.md)

# ---- the paper pipeline: one papermill stage per notebook, each re-run only when its inputs changed ----
# A stage writes to a temporary file and renames it on success, so an interrupted stage is re-run
# (and training inside it resumes from its last checkpoint).
LIB := $(wildcard hhlib/*.py hhlib/*/*.py)
# FORCE=1 re-runs every stage: each stage then also depends on a target that is never up to date
# (a .PHONY stage file would not work: make applies no pattern rule to a phony target)
ifeq ($(FORCE),1)
ALWAYS := force-stages
endif
.PHONY: force-stages
force-stages:

# The stages run under a flock on $(OUT) (hhlib.lock): a second `make reproduce` of the same set stops
# at once and names the holder; the lock dies with its process, so a killed run never blocks the next.
reproduce: setup
	@$(BIN)/python -m hhlib.params check $(DATASET)
	@$(BIN)/python hhlib/lock.py $(OUT) $(MAKE) --no-print-directory reproduce-locked DATASET=$(DATASET)

reproduce-locked:
	@$(MAKE) --no-print-directory $(OUT)/06_text_hashing.ipynb DATASET=$(DATASET)
	@$(BIN)/python -m hhlib.report $(OUT)

# params/<set>/shared.yaml holds the keys the image stages must agree on (dataset, split, image size...); it
# goes, before the stage's own file, to the stages whose notebook declares all of them (hhlib.params.shared_stages,
# tests/test_notebooks.py checks this list): papermill injects every key it is given and would warn
# "Passed unknown parameter" in 06, which sets its few shared keys itself (docs/notebooks.md "Parameters").
SHARED_STAGES := 01_prepare_data 02_train 03_evaluate 04_tsne 05_ablations
SHARED_PARAMS := $(wildcard params/$(DATASET)/shared.yaml)
stage_params = $(if $(filter $(1),$(SHARED_STAGES)),$(addprefix -f ,$(SHARED_PARAMS))) -f params/$(DATASET)/$(1).yaml

$(OUT)/01_prepare_data.ipynb: notebooks/01_prepare_data.ipynb $(SHARED_PARAMS) params/$(DATASET)/01_prepare_data.yaml $(LIB) $(ALWAYS)
$(OUT)/02_train.ipynb: notebooks/02_train.ipynb $(SHARED_PARAMS) params/$(DATASET)/02_train.yaml $(OUT)/01_prepare_data.ipynb $(LIB) $(ALWAYS)
$(OUT)/03_evaluate.ipynb: notebooks/03_evaluate.ipynb $(SHARED_PARAMS) params/$(DATASET)/03_evaluate.yaml $(OUT)/02_train.ipynb $(LIB) $(ALWAYS)
$(OUT)/04_tsne.ipynb: notebooks/04_tsne.ipynb $(SHARED_PARAMS) params/$(DATASET)/04_tsne.yaml $(OUT)/03_evaluate.ipynb $(LIB) $(ALWAYS)
$(OUT)/05_ablations.ipynb: notebooks/05_ablations.ipynb $(SHARED_PARAMS) params/$(DATASET)/05_ablations.yaml $(wildcard params/$(DATASET)/search_results.yaml) $(OUT)/04_tsne.ipynb $(LIB) $(ALWAYS)
$(OUT)/06_text_hashing.ipynb: notebooks/06_text_hashing.ipynb params/$(DATASET)/06_text_hashing.yaml $(OUT)/05_ablations.ipynb $(LIB) $(ALWAYS)

# One notebook rendered: papermill into .running-<stage>.ipynb, renamed on success, then its HTML.
# $(call render_stage,<stage>,<output folder>,<papermill -f options>); make converged renders 05 the same way.
define render_stage
$(BIN)/papermill notebooks/$(1).ipynb $(2)/.running-$(1).ipynb $(3) --cwd notebooks -k hhlib --no-progress-bar --log-output
@$(BIN)/python -m hhlib.logs strip $(2)/.running-$(1).ipynb >/dev/null  # shown live above; each epoch is in metrics.jsonl
@mv $(2)/.running-$(1).ipynb $(2)/$(1).ipynb
$(BIN)/jupyter nbconvert --to html --log-level WARN $(2)/$(1).ipynb
endef

$(OUT)/%.ipynb:
	@mkdir -p $(OUT)
	$(call render_stage,$*,$(OUT),$(call stage_params,$*))

search: setup  ## one equal-budget search per compared method/backbone on the validation split (hhlib.tuning)
	@$(BIN)/python -m hhlib.params check $(DATASET)
	$(BIN)/python -m hhlib.tuning $(DATASET)

compare-rerun: setup  ## the rendered metrics.json against the committed one (git HEAD): every value but wall-clock times and run folders
	@git show HEAD:$(OUT)/metrics.json > $(OUT)/.committed-metrics.json
	$(BIN)/python -m hhlib.rerun $(OUT)/.committed-metrics.json $(OUT)/metrics.json

# notebook 05 once more with params/<set>/05_$(CONVERGED).yaml applied last: the network claims and methods trained longer,
# into outputs/<set>_$(CONVERGED)/ (the file sets out_dir); runs resume from their checkpoints like make reproduce's.
# CONVERGED=converged (default): 48 epochs; CONVERGED=doubled: the network claims and every method at 96 epochs, against the 48-epoch rows;
# CONVERGED=quadrupled: the claims still open at 96 epochs, at 192, against the 96-epoch rows;
# CONVERGED=quadrupled_methods: the same for the methods still gaining at 96 epochs, beside the paper's loss
CONVERGED ?= converged
CONVERGED_PARAMS := params/$(DATASET)/05_$(CONVERGED).yaml
CONVERGED_OUT := $(OUT)_$(CONVERGED)

converged: setup
	@$(BIN)/python -m hhlib.params check-overlay $(DATASET) 05_ablations $(CONVERGED_PARAMS)
	@mkdir -p $(CONVERGED_OUT)
	@$(BIN)/python hhlib/lock.py $(CONVERGED_OUT) $(MAKE) --no-print-directory converged-locked DATASET=$(DATASET) CONVERGED=$(CONVERGED)

converged-locked:
	$(call render_stage,05_ablations,$(CONVERGED_OUT),$(call stage_params,05_ablations) -f $(CONVERGED_PARAMS))
	@$(BIN)/python -m hhlib.report $$(dirname $(CONVERGED_OUT)/*/metrics.json)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=. $(ALLOW_ROOT)
