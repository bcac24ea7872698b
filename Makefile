# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The test suite's processes: most of its time is spent waiting on workers, browsers and SMTP.
TEST_PROCESSES ?= 2

$(BIN)/vialflow: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

.PHONY: setup demo test bench fuzz
setup: $(BIN)/vialflow

demo: setup
	$(BIN)/vialflow demo

test: setup
	.ci/system-packages
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES)

bench: setup
	$(BIN)/python -m bench

fuzz: setup
	$(BIN)/python -m bench fuzz --seconds 60
