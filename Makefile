# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (lint + tests).
# Both create .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# torch first: keep a torch that is already there (e.g. your CUDA build); on a machine
	@# without an NVIDIA GPU take the CPU build, pinned, so pip does not pull a CUDA wheel.
	@if $(PY) -c "import torch" 2>/dev/null; then echo "keeping installed torch"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then $(PIP) install --quiet "torch>=2.6"; \
	else $(PIP) install --quiet "torch==2.13.0" $(TORCH_INDEX); fi
	$(PIP) install --quiet -e ".[dev,notebooks]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/interp pipeline --preset default

lint: $(STAMP)
	$(VENV)/bin/ruff check interp tests benchmarks
	$(VENV)/bin/ruff format --check interp tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix interp tests benchmarks
	$(VENV)/bin/ruff format interp tests benchmarks

test: lint
	WANDB_MODE=disabled HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
