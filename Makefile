# Every target sets up what it needs: a local .venv with the project and its dev tools.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Parallel test workers: the suite mostly waits on sockets and child processes.
TEST_WORKERS ?= 4

.PHONY: setup test lint typecheck imports deadcode pytest demo run bench clean \
	i18n-extract i18n-update i18n-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Unused code; what only frameworks call is listed in pyproject.toml and vulture_whitelist.py.
deadcode: $(STAMP)
	$(BIN)/vulture

# Dependency arrows point one way: the contracts are [tool.importlinter] in pyproject.toml.
imports: $(STAMP)
	$(BIN)/lint-imports

# Languages (README, "Languages"): texts are marked with N_(...) (engine and cogs) or
# locale_str(...) (command fields); the .po files are read as they are at start-up.
LOCALES := de es fr ja pt_BR
CATALOG_DIR := bot/locale
POT := $(CATALOG_DIR)/messages.pot

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract --no-location --omit-header --sort-output -k N_ -k locale_str \
		-o $(POT) bot cogs

i18n-update: i18n-extract
	for lang in $(LOCALES); do \
		$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete --init-missing -w 100 \
			-i $(POT) -d $(CATALOG_DIR) -l $$lang || exit 1; \
	done

# Every catalog complete and faithful to its msgids, the template current, and every
# translated command field, form label and button within Discord's limits.
i18n-check: $(STAMP)
	$(BIN)/pytest -q -p no:randomly tests/unit/test_i18n_catalogs.py tests/unit/test_cogs_meta.py \
		tests/unit/test_moderator_alerts.py

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not alone"
	$(BIN)/pytest -q -m alone

test: lint typecheck imports deadcode pytest

demo: $(STAMP)
	$(BIN)/python -m bot demo

run: $(STAMP)
	$(BIN)/python -m bot run

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
