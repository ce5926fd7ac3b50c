# Two commands from a fresh clone: `make serve` runs the gateway, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-test lint format bench bench-compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

# The gateway on its embedded default: 127.0.0.1:8080, SQLite in ./torouter.db, in-process limits.
serve: install
	$(BIN)/torouter serve $(if $(CONFIG),--config $(CONFIG),)

# The coding agents the tests drive (Claude Code, Codex CLI, Gemini CLI); skipped without npm.
CLIENTS := tests/clients/node_modules/.installed
$(CLIENTS): tests/clients/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the Claude Code, Codex and Gemini CLI tests will skip"; fi

test: install-test $(CLIENTS)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench

format: install-test
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install-test
	$(BIN)/python bench/run.py

bench-compare: install-test
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
