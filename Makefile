# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# CPU build by default (a wheel of a few hundred MB). For a CUDA machine:
#   make demo TORCH_SPEC="torch==2.13.0" TORCH_INDEX="https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
CONFIG ?= jobs/configs/demo.toml
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) jobs/daily.py --config $(CONFIG)

test: $(STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests jobs benchmarks feature_repo validations
	$(VENV)/bin/ruff format --check lib tests jobs benchmarks feature_repo validations

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf data/demo
