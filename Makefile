# Every target works on a fresh clone: it builds .venv and the project-local Azurite first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE_VERSION := 3.35.0
AZURITE := .azurite/node_modules/.bin/azurite

.PHONY: deps lint test demo bench clean

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

demo: deps
	$(PY) -m scripts.demo

bench: deps
	$(PY) -m scripts.bench

clean:
	rm -rf $(VENV) .azurite .mypy_cache .ruff_cache
