# The two things a new user types: `make demo` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint protos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/neurender demo --out out/demo

test: setup
	$(BIN)/python -m pytest -q

protos: setup
	$(BIN)/python -m neurender.proto.generate

clean:
	rm -rf $(VENV) out runs
