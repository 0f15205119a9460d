# The commands of the README. Each makes .venv if it is missing and installs what it needs.
#   make demo   the main job
#   make test   the whole test suite: tests/ and every notebook (fast mode), as CI runs it
#   make dist   the sdist and the wheel, in dist/ (what would be uploaded to a package index)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The package alone (what `make demo` needs) ...
$(VENV)/.installed-base: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# ... and with every backend and the test tools (what `make test` needs).
$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,jax,torch]"
	touch $@ $(VENV)/.installed-base

# ... or only the build front end (what `make dist` needs; it builds in an isolated env).
$(VENV)/.installed-dist: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "build>=1"
	touch $@

demo: $(VENV)/.installed-base
	$(BIN)/keras-unet demo

test: $(VENV)/.installed-test
	KERAS_UNET_FAST=1 TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest

# dist/ holds exactly this version's two files: the sdist is built from the checkout, the
# wheel from the sdist (so a file missing from the sdist breaks the wheel here, not later).
dist: $(VENV)/.installed-dist
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	@ls -l dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
