# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# axe-core checks the widget's accessibility in the browser tests (tests/test_browser.py).
AXE_VERSION := 4.14.1
AXE := $(VENV)/axe/.installed-axe-core-$(AXE_VERSION)

.PHONY: run test typecheck docs translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[swagger-ui]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml $(AXE)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $@

$(AXE): $(BIN)/python
	npm install --prefix $(VENV)/axe --no-save --no-audit --no-fund axe-core@$(AXE_VERSION)
	touch $@

## Serve example_app on http://$(HOST):$(PORT) (SQLite, demo widget, codes in the log).
run: $(VENV)/.installed-run
	FLASK_RUN_HOST=$(HOST) FLASK_RUN_PORT=$(PORT) $(BIN)/flask --app example_app run

## Run the whole test suite, check the types and lint, then build the docs with warnings as errors.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest
	$(MAKE) typecheck
	$(MAKE) docs

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/ruff check .

docs: $(VENV)/.installed-test
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

## Extract the marked texts (babel.cfg) and merge them into every catalogue.
translations: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		--project flask-sdkauth -o $(VENV)/sdkauth.pot .
	$(BIN)/pybabel update -D sdkauth -i $(VENV)/sdkauth.pot -d flask_sdkauth/translations \
		--no-fuzzy-matching --width 100

clean:
	rm -rf $(VENV) docs/_build *.egg-info
