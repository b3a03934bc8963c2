# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := setup.cfg pyproject.toml $(shell find blockhub twisted -name '*.py' -o -name '*.sql' 2>/dev/null)

.PHONY: all demo test lint docs bench bench-quick clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# The project is installed (not editable) so twistd finds its plugins in
# site-packages; the stamp reinstalls it whenever a source file changes.
$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install --quiet '.[test]'
	@rm -rf build
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

test: $(STAMP)
	@$(BIN)/python tools/runtests.py

lint: $(STAMP)
	$(BIN)/ruff check blockhub tests twisted tools

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet '.[docs]'
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp docs/_build
