# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := setup.cfg pyproject.toml $(shell find blockhub twisted -name '*.py' -o -name '*.sql' 2>/dev/null)


.PHONY: all demo demo-cluster test netlab lint docs bench bench-quick fuzz flood clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# The project is installed (not editable) so twistd finds its plugins in
# site-packages; the stamp reinstalls it whenever a source file changes.
$(STAMP): $(BIN)/python $(SOURCES)
	@rm -rf build  # a stale build/lib would be installed in place of newer sources
	$(BIN)/python -m pip install --quiet '.[test]'
	@rm -rf build
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

# Two gateway nodes on one Redis (docs/cluster.md); needs redis-server.
demo-cluster: $(STAMP)
	$(BIN)/python tools/demo_cluster.py

test: $(STAMP)
	@$(BIN)/python tools/runtests.py

# The NAT lab alone (docs/nat.md): real daemons in network namespaces behind nftables
# routers.  It needs root, ip and nft; without them it prints one SKIPPED line and why.
netlab: $(STAMP)
	$(BIN)/python -m twisted.trial tests.netlab

lint: $(STAMP)
	$(BIN)/ruff check blockhub tests twisted tools benchmarks

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet '.[docs]'
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

# Benchmarks: their own packages (the peer mailbox server, matplotlib) go into .venv
# only here; they are never runtime dependencies.
$(VENV)/.bench: $(STAMP) benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	@touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/run.py

bench-quick: $(VENV)/.bench
	$(BIN)/python benchmarks/run.py --quick

fuzz: $(STAMP)
	$(BIN)/python tools/fuzz.py $(FUZZ_COUNT)

flood: $(STAMP)
	$(BIN)/python tools/flood.py
	$(BIN)/python tools/request_flood.py

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp docs/_build
