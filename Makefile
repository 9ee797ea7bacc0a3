# simclr-tf: every target creates the virtual environment and installs what it needs first.
#   make train   pretrain on the bundled sample, evaluate, export the encoder (the main job)
#   make test    lint, unit tests and every notebook in smoke mode
#   make lab     JupyterLab on the repository, opened at notebooks/ (add --allow-root as root)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/main
# Extra flags for the main job, e.g. make train ARGS="--dataset=cifar10 --epochs=5"
ARGS ?=

.PHONY: install train test lint format lab figures clean-notebooks benchmarks

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m simclr_tf.pipeline --preset=cpu --dataset=sample --out_dir=$(RUN_DIR) $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# JupyterLab serves the repository root, so that the notebooks' figures (imgs/) and links to
# the package resolve, and opens at notebooks/. Jupyter refuses to run as root (containers)
# without --allow-root.
LAB_FLAGS := --notebook-dir=. --ServerApp.default_url=/lab/tree/notebooks \
	$(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(LAB_FLAGS)

figures: $(STAMP)
	$(PY) scripts/make_figures.py

benchmarks: $(STAMP)
	$(PY) benchmarks/augment_throughput.py
	$(PY) benchmarks/bare_step.py
