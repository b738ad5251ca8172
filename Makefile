# backdrop-repro: the two commands are `make reproduce` and `make test`.
# Both create (or reuse) .venv and install the pinned versions of requirements.lock.
PYTHON  ?= python3
PROFILE ?= default
REUSE   ?= 0
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TESTOUT := $(CURDIR)/.test-out
export MPLBACKEND := Agg

.PHONY: venv reproduce notebooks figures test test-fast lint notebooks-update bench lab docs clean gpu-window

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## The main job at $(PROFILE) (default: the paper's task shrunk by 4, < 20 min on 2 CPU cores):
## trains every GP run from scratch (REUSE=1 reuses stored run records), executes every notebook
## into results/$(PROFILE)/notebooks, writes figures/ and results/$(PROFILE)/, and ends with
## results/$(PROFILE)/reproduction.md: the fresh runs against the committed runs of the same keys in
## results/replication, judged in distribution (docs/reliability.md, "Cross-machine drift").
reproduce: venv
	$(BIN)/backdrop-repro reproduce --profile $(PROFILE) $(if $(filter 1,$(REUSE)),--reuse,)

notebooks: reproduce
figures: reproduce

## Lint (ruff) and type checks (mypy on backdrop_repro/), configured in pyproject.toml; `make test` runs them first.
lint: venv
	$(BIN)/ruff check backdrop_repro scripts bench
	$(BIN)/mypy

## Lint and type checks, then the unit tests plus nbval: every notebook is re-executed at its committed
## (smoke) parameters and its outputs compared with the committed ones. Outputs go to .test-out/, never to figures/.
test: venv
	$(BIN)/ruff check backdrop_repro scripts bench
	$(BIN)/mypy
	rm -rf $(TESTOUT) && mkdir -p $(TESTOUT)
	BACKDROP_REPRO_OUTPUT=$(TESTOUT) BACKDROP_REPRO_DATA=$(TESTOUT)/data TQDM_DISABLE=1 \
	  $(BIN)/python -m pytest tests notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/sanitize.cfg -p no:cacheprovider

test-fast: venv
	BACKDROP_REPRO_OUTPUT=$(TESTOUT) BACKDROP_REPRO_DATA=$(TESTOUT)/data TQDM_DISABLE=1 \
	  $(BIN)/python -m pytest tests -x -q -p no:cacheprovider

## Maintainers: re-execute the source notebooks in place at their committed (smoke) parameters,
## so the outputs nbval compares against are fresh. Figures of that run go to .test-out/.
notebooks-update: venv
	for nb in notebooks/*.ipynb; do \
	  BACKDROP_REPRO_OUTPUT=$(TESTOUT) BACKDROP_REPRO_DATA=$(TESTOUT)/data TQDM_DISABLE=1 \
	  $(BIN)/papermill --cwd notebooks --no-progress-bar "$$nb" "$$nb" || exit 1; done
	$(BIN)/python -m backdrop_repro.notebooks --strip notebooks/*.ipynb

## A GPU window (about 15 min on a lent GPU machine): the paper grid sized to the time there is,
## ending by a hard deadline; records + timing log packed into $(OUT). Runs on the machine's own
## python3 (no venv): see docs/performance.md, "How to spend a GPU window".
GPU_PROFILE ?= paper
gpu-window:
	@test -n "$(OUT)" || { echo "usage: make gpu-window OUT=dir [GPU_PROFILE=paper]"; exit 2; }
	PYTHONUNBUFFERED=1 $(PYTHON) scripts/gpu_window.py --profile $(GPU_PROFILE) --out "$(OUT)"

bench: venv
	for b in bench/bench_*.py; do $(BIN)/python "$$b" || exit 1; done

## JupyterLab at the repository root, opening on notebooks/ (the sources); the executed copies are one
## click away in results/<profile>/notebooks/. LAB_ARGS is read by tests/test_lab.py, which starts
## the server with these same arguments and checks both folders are served.
LAB_ARGS := --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks
lab: venv
	$(BIN)/jupyter lab $(LAB_ARGS)

## The documentation site (Sphinx + MyST-NB, docs/conf.py): README.md as its front page, every executed
## notebook of results/*/notebooks/ rendered from its committed outputs (never executed), docs/*.md, the
## results pages and the API reference, into build/docs/html/ (open build/docs/html/index.html).
DOCS_OUT := build/docs
docs: venv
	rm -rf $(DOCS_OUT)
	$(BIN)/sphinx-build -b html -c docs -W --keep-going -q . $(DOCS_OUT)/html
	@echo "open $(DOCS_OUT)/html/index.html"

clean:
	rm -rf $(TESTOUT) build *.egg-info
