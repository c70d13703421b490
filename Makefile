# The two commands a new user needs: `make demo` runs the main job, `make test` runs the tests.
# Both create the virtual environment and install what they need first.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
CHILDREN ?= 2000

.PHONY: demo test lint install clean

$(BIN)/cci: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

# GOV.UK Frontend for the review pages and axe-core for the browser tests, pinned in
# package-lock.json, installed with the machine's npm (node_modules/ is git-ignored).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(BIN)/cci node_modules/.package-lock.json

# Main job on the embedded default (SQLite file + DuckDB) over generated demo data:
# key -> synthetic raw records -> pseudonymise (exit 3: some rows rejected, as planted)
# -> ingest + link -> a few CCIs and the run summary.
demo: install
	@rm -f $(DEMO)/cci.db $(DEMO)/cci.db-wal $(DEMO)/cci.db-shm
	@mkdir -p $(DEMO)
	@test -f $(DEMO)/linkage.key || $(BIN)/cci keygen --out $(DEMO)/linkage.key
	$(BIN)/cci demo-data --children $(CHILDREN) --out $(DEMO)/raw --seed 7
	$(BIN)/cci pseudonymise --key-file $(DEMO)/linkage.key $(DEMO)/raw/records.csv $(DEMO)/pseudonymised.csv || test $$? -eq 3
	$(BIN)/cci link --database-url sqlite:///$(DEMO)/cci.db --input $(DEMO)/pseudonymised.csv --output $(DEMO)/assignments.csv
	@echo "first assignments (source_system,record_id,cci):" && head -6 $(DEMO)/assignments.csv
	$(BIN)/cci sources list --database-url sqlite:///$(DEMO)/cci.db

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy linkage

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info .pytest_cache .ruff_cache .mypy_cache
