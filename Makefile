# The two commands: `make run` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench install clean audit lock

$(STAMP): pyproject.toml requirements.txt requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c requirements.lock
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/ocm serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m tools.audit
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# The locked dependencies against PyPI's advisories (security/accepted-advisories.toml).
audit: $(STAMP)
	$(BIN)/python -m tools.audit

# Re-resolve requirements.lock from pyproject.toml in a clean venv, then refresh the
# audit's offline snapshot; commit both.
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,/^[^#]/{/^#/p}' requirements.lock; .venv-lock/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock
	$(MAKE) install
	$(BIN)/python -m tools.audit --write-snapshot

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .ocm .pytest_cache .mypy_cache .ruff_cache
