# The two commands of the README. Each makes .venv if it is missing and installs what it needs.
#   make demo   the main job
#   make test   the whole test suite: tests/ and every notebook (fast mode), as CI runs it
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

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

demo: $(VENV)/.installed-base
	$(BIN)/keras-unet demo

test: $(VENV)/.installed-test
	KERAS_UNET_FAST=1 TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
