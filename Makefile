# rewardsmith: `make demo` runs the main job, `make test` runs the tests. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch (a wheel of it is on disk on our machines). On a GPU machine:
#   make install TORCH=torch
TORCH ?= torch==2.13.0

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip warns about every local index folder that lacks a package; hide only those lines
QUIET_PIP := 2>&1 | grep -v '^WARNING: Location' || true

.PHONY: install test-install demo test lint bench clean system-deps soak bytecode

# what `rewardsmith solve` needs (idempotent: redone only when pyproject.toml changes)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@bash scripts/system-deps.sh runtime
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)" $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . $(QUIET_PIP)
	@$(BIN)/python -c "import rewardsmith.cli, torch" || { echo "install failed" >&2; exit 1; }
	@touch $@

# what the tests need on top: pytest, MuJoCo, SB3, the Docker SDK, Ray; tmux, chromium, OSMesa
test-install: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed
	@bash scripts/system-deps.sh test
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,docker,ray]' $(QUIET_PIP)
	@$(BIN)/python -c "import pytest, docker, ray, mujoco" || { echo "test install failed" >&2; exit 1; }
	@touch $@

system-deps:
	@bash scripts/system-deps.sh test

# the package's bytecode, written here because the sandboxes see the checkout read-only (and
# PYTHONDONTWRITEBYTECODE may be set): without it every warm worker and the host compile the
# package again, ~0.1 s of a core each
bytecode: install
	@$(BIN)/python -m compileall -q rewardsmith > /dev/null

demo: install bytecode
	$(BIN)/rewardsmith solve tasks/cartpole.yaml --model builtin

# The docker sandbox tests need an engine and the image: started and built here when we are root
# (scripts/docker-up.sh), stopped again afterwards if this started it.
test: test-install bytecode
	@bash scripts/docker-up.sh $(BIN)/python
	@$(BIN)/python tests/parts.py
	$(BIN)/python -m pytest; status=$$?; bash scripts/docker-down.sh; exit $$status

# the gate CI runs before the tests: ruff (style, imports, common bugs) and mypy (types) over the package
lint: test-install
	$(BIN)/ruff check rewardsmith tests benchmarks
	$(BIN)/mypy

# the full soak: 100 candidates in a row, checked for leftover processes, files and memory (~12 min)
soak: test-install bytecode
	@bash scripts/docker-up.sh $(BIN)/python
	$(BIN)/python -m pytest -m slow -s tests/test_soak.py; status=$$?; bash scripts/docker-down.sh; exit $$status

bench: test-install bytecode
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]' $(QUIET_PIP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
