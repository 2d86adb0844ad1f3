# FMA developer entry points.  `make demo` and `make test` work on a fresh
# machine: they create the virtualenv, install the pinned dependencies and
# build (once, cached outside the repo) the Kubernetes binaries.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.fma-installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv binaries vllm-env images image-archives demo test test-fast test-tools lint format cluster-up cluster-down cluster-status lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(STAMP): requirements/lock.txt pyproject.toml
	@echo "==> creating virtualenv $(VENV) and installing pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STAMP)  ## create the virtualenv with the pinned dependencies

binaries: $(STAMP)  ## build (once) etcd, helm, the Kubernetes binaries and FMA's kube-scheduler into ~/.cache/fma
	@echo "==> ensuring control-plane binaries (cached in $${FMA_CACHE_DIR:-~/.cache/fma})"
	@$(PY) -m devcluster.binaries >/dev/null

vllm-env:  ## create/update the real-vLLM (CPU) virtualenv of the vllm-marked tests (in ~/.cache/fma)
	@PYTHON=$(PYTHON) scripts/vllm-env.sh

images: $(STAMP)  ## build the FMA and launcher images: docker, podman or buildah, else OCI archives (docs/install.md#images)
	@PYTHON_BIN=$(PY) scripts/images.sh

image-archives: $(STAMP)  ## build (once per source tree) the OCI archives the image-mode tests run, engine or not
	@scripts/image-tools.sh
	@$(PY) -m devcluster.image_build

demo: binaries  ## start the local cluster and show it working
	@$(BIN)/fma-dev demo

test: lint binaries vllm-env image-archives test-tools  ## lint, then the whole test suite (cluster, image-mode and real-vLLM tests)
	@echo "==> running the test suite"
	@FMA_REQUIRE_TEST_TOOLS=1 $(BIN)/pytest $(PYTEST_ARGS)

test-tools:  ## fetch (once) the other tools the tests call: promtool, from Debian's prometheus package
	@scripts/test-tools.sh

test-fast: $(STAMP)  ## unit and component tests only (no cluster)
	@$(BIN)/pytest -m "not cluster and not e2e and not vllm" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, mypy --strict and the import-linter layers
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@echo "==> mypy --strict"
	@$(BIN)/mypy
	@echo "==> import-linter"
	@$(BIN)/lint-imports

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

cluster-up: binaries  ## start the development cluster in the background
	@$(BIN)/fma-dev up

cluster-down: $(STAMP)  ## stop the development cluster and remove its state
	@$(BIN)/fma-dev down

cluster-status: $(STAMP)  ## show whether the development cluster runs
	@$(BIN)/fma-dev status

lock: $(STAMP)  ## re-pin requirements/lock.txt from pyproject.toml
	@$(PYTHON) -m venv /tmp/fma-lock-venv
	@/tmp/fma-lock-venv/bin/pip install --quiet -e '.[dev]'
	@{ head -3 requirements/lock.txt; /tmp/fma-lock-venv/bin/pip freeze --exclude-editable; } > requirements/lock.txt.new
	@mv requirements/lock.txt.new requirements/lock.txt
	@rm -rf /tmp/fma-lock-venv

clean:  ## remove the virtualenv and Python caches (not the binary cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
