# make run   create .venv, install, serve the demo shop with its dashboard at http://127.0.0.1:8080
# make test  the whole suite (starts and stops its own throwaway PostgreSQL)
# make test-fast  the suite less the tests marked slow, on every core (the inner loop; make test runs them all, one at a time)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test test-fast package bench bench-ingest clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/stagesync --config connector/examples/demo.toml demo

test: $(INSTALLED)
	bash tests/e2e/install_browser.sh
	$(BIN)/pytest

test-fast: $(INSTALLED)
	$(BIN)/pytest -m "not slow" -n auto

package: $(INSTALLED)
	deploy/package.sh

bench: $(INSTALLED)
	$(BIN)/python bench/recompute.py
	$(BIN)/python bench/sync.py

bench-ingest: $(INSTALLED)  # needs wrk (apt-get install -y wrk): a bench setup step, not part of make test
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
