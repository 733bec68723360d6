# ChatGuard — two commands matter: `make demo` and `make test`.
#
# Both create the virtualenv in $(VENV) when it is missing and (re)install the
# package with its test extras when pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean packages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chatguard demo --scripted

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Servers and browsers the tests run against, from tools/debian-packages.txt.
packages:
	tools/ensure-packages

unit: $(STAMP) packages
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/relay.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info

# Tests marked slow (e.g. the shipped policy pack end to end over XMPP).
.PHONY: test-slow
test-slow: $(STAMP) packages
	$(BIN)/pytest -m slow

# irctest against ngIRCd directly and through ChatGuard (minutes in parallel; not
# part of `make test`). IRCTEST_DIR=/path/to/checkout to use an existing checkout.
.PHONY: irctest
irctest: $(STAMP) packages
	tools/run-irctest
