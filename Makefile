# dw_analytics — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_ORDERS ?= 200000
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: demo test test-sqlite test-postgres install browser-deps lint bench bench-quick bench-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml dw_analytics/extract/_decimal_text.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	rm -f dw_analytics/extract/_decimal_text*.so  # never test a stale build of the C kernel
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import dw_analytics.extract._decimal_text" || \
		{ echo "the C kernel did not build: install gcc and the Python headers" >&2; exit 1; }
	touch $@

## demo: install, migrate SQLite, generate demo data, run the nightly refresh, print a summary
demo: install
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py generate_demo_data --orders $(DEMO_ORDERS)
	$(PY) manage.py refresh_warehouse

## browser-deps: Debian's chromium + chromedriver for the end-to-end browser test
browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

## test: the whole suite on SQLite, then on PostgreSQL (a missing server fails)
test: install browser-deps
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	env -u DATABASE_URL $(PY) -m pytest

test-postgres:
	DATABASE_URL=$(POSTGRES_URL) DW_REQUIRE_POSTGRES=1 $(PY) -m pytest

lint: install
	$(PY) -m ruff check dw_analytics transforms tests benchmarks
	$(PY) -m ruff format --check dw_analytics transforms tests benchmarks

## bench: every benchmark at full size (hours) -> benchmarks/RESULTS.md, RESULTS.jsonl, scale_curve.png
BENCH_ARGS ?=
bench: install
	$(PY) benchmarks/run_all.py --out-dir benchmarks $(BENCH_ARGS)

## bench-quick: every benchmark at 100,000 rows (CI); fails when a script fails; results in BENCH_QUICK_DIR
BENCH_QUICK_DIR ?= $(or $(TMPDIR),/tmp)/dw_bench_quick
bench-quick: install
	$(PY) benchmarks/run_all.py --quick --out-dir $(BENCH_QUICK_DIR) $(BENCH_ARGS)

## bench-check: the last `make bench` run against the goals of the issues (not part of CI)
bench-check:
	$(PY) benchmarks/check.py benchmarks/RESULTS.jsonl

clean:
	rm -rf data/out data/dw.sqlite3* .pytest_cache
