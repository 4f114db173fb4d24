# Every target works on a fresh clone: it builds .venv and the project-local Azurite first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE_VERSION := 3.35.0
AZURITE := .azurite/node_modules/.bin/azurite

.PHONY: deps lint test chaos demo bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(AZURITE):
	npm install --silent --no-audit --no-fund --prefix .azurite azurite@$(AZURITE_VERSION)

deps: $(STAMP) $(AZURITE)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: deps lint
	$(PY) -m pytest

# The fault suite in full: every fault kind at every remote call of each trigger path (tests/chaos).
# `make test` runs its short form (every kind at each path's writes, a kill at its last write).
chaos: deps
	CHAOS=full $(PY) -m pytest tests/chaos

demo: deps
	$(PY) -m scripts.demo

bench: deps
	$(PY) -m scripts.bench

clean:
	rm -rf $(VENV) .azurite .mypy_cache .ruff_cache

# Infra scans: checkov lives in its own venv (it pins many packages the app's venv must not share).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: tools checkov clean-tools

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

tools: $(CHECKOV_STAMP)

# tests/infra/test_checkov.py runs the same scan; this prints the full report.
checkov: tools
	$(CHECKOV_VENV)/bin/checkov --framework bicep --directory infra --skip-download --skip-path graph-app-roles.bicep --compact

test: tools

clean-tools:
	rm -rf .tools

clean: clean-tools
