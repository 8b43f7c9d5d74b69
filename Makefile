# ash-neuro: two commands set everything up.
#   make demo   create both environments, generate the procedural world, train the default
#               model, export its spiking encoder to NIR, run it on Lava with the report
#   make test   create both environments, lint, run the test suite
# Both are idempotent: environments carry a stamp keyed on the pinned requirements.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements/torch.txt requirements/main.txt requirements/main.lock pyproject.toml
STAMP := $(VENV)/.stamp-$(shell cat $(REQS) | sha256sum | cut -c1-12)

# Lava (lava-nc 0.10 / lava-dl 0.6) needs Python < 3.11; it lives in its own environment
# (lava-dl brings torch 2.3.1 and its CUDA libraries: about 5 GB, see hardware/README.md).
LAVA_PYTHON ?= $(shell pyenv prefix 3.10.13 2>/dev/null)/bin/python
LAVA_VENV := .venv-lava
LAVA_REQS := requirements/lava.txt
LAVA_STAMP := $(LAVA_VENV)/.stamp-$(shell cat $(LAVA_REQS) 2>/dev/null | sha256sum | cut -c1-12)

WORLD ?= data/world.h5
CONFIG ?= configs/default.yaml
RUN_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: env lava-env world demo test test-slow lint format clean

env: $(STAMP)
	@echo "env: $(VENV) is up to date ($(notdir $(STAMP)))"

$(STAMP): $(REQS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -r requirements/torch.txt 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -r requirements/main.txt -c requirements/main.lock 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --no-deps -e . >$(VENV)/editable-install.log 2>&1 || { cat $(VENV)/editable-install.log; exit 1; }
	$(PY) -c "import torch, norse, nir, transformers, tokenizers, h5py, ash_neuro" 2>/dev/null || { echo "error: $(VENV) is incomplete after install; see pip's messages above"; exit 1; }
	@touch $@

lava-env: $(LAVA_STAMP)
	@echo "lava-env: $(LAVA_VENV) is up to date ($(notdir $(LAVA_STAMP)))"

$(LAVA_STAMP): $(LAVA_REQS)
	@test -x "$(LAVA_PYTHON)" || { echo "error: Python 3.10 not found at '$(LAVA_PYTHON)'; install it (pyenv install 3.10.13) or run make LAVA_PYTHON=/path/to/python3.10"; exit 1; }
	@rm -rf $(LAVA_VENV) && "$(LAVA_PYTHON)" -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(LAVA_VENV)/bin/python -m pip install -q -r $(LAVA_REQS) 2>&1 | grep -v "is ignored" || true
	$(LAVA_VENV)/bin/python -c "import lava.proc.lif.process, lava.lib.dl.netx, nir, h5py" >/dev/null 2>&1 || { echo "error: $(LAVA_VENV) is incomplete after install; see pip's messages above"; exit 1; }
	@touch $@

world: env
	$(PY) -m ash_neuro.data.generate --config $(CONFIG) --out $(WORLD)

demo: world lava-env
	$(PY) -m ash_neuro.train --config $(CONFIG) --out $(RUN_DIR) --resume world.path=$(WORLD)
	@if [ $(RUN_DIR)/encoder.nir -nt $(RUN_DIR)/ckpt.pt ]; then \
		echo "export: $(RUN_DIR)/encoder.nir is newer than its checkpoint, reusing"; \
	else $(PY) export/to_nir.py $(RUN_DIR)/ckpt.pt -o $(RUN_DIR)/encoder.nir; fi
	@if [ $(RUN_DIR)/deploy/report.json -nt $(RUN_DIR)/encoder.nir ]; then \
		echo "deploy: $(RUN_DIR)/deploy/report.json is newer than the graph, reusing"; \
	else $(PY) -m ash_neuro.deploy $(RUN_DIR)/ckpt.pt $(RUN_DIR)/encoder.nir --task retrieval \
		--split test --limit 16 --report $(RUN_DIR)/deploy; fi

lint: env
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

format: env
	$(VENV)/bin/ruff format
	$(VENV)/bin/ruff check --fix

# The default run skips tests marked slow (end-to-end); CI runs `make test test-slow`.
test: lint lava-env
	$(VENV)/bin/pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: env lava-env
	$(VENV)/bin/pytest -q -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && echo "no slow tests" || exit $$rc

clean:
	rm -rf $(VENV) $(LAVA_VENV) runs data .pytest_cache
