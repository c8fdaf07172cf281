# `make help` lists the targets.
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help run test setup lock wheel doctor lint format locales-extract locales-update bench soak

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run:  ## set up (venv, PostgreSQL, Redis, migrate) and run everything on local defaults
	./scripts/run.sh

test:  ## set up and run the whole suite: ruff, ruff format --check, mypy, pytest
	./scripts/test.sh

setup:  ## create .venv with the locked dependencies (requirements/dev.lock) and volspike, editable
	bash -c 'source scripts/lib.sh && setup_venv'

lock:  ## re-lock requirements/*.lock after changing pyproject.toml (ARGS=--upgrade for newer releases)
	./scripts/lock.sh $(ARGS)

wheel:  ## build dist/volspike-*.whl (catalogs compiled by the build hook)
	bash -c 'source scripts/lib.sh && ensure_uv && uv build --wheel -o dist'

doctor:  ## check settings and every dependency (PostgreSQL, Redis, Binance, bot token, ...)
	$(VENV)/volspike doctor

lint:  ## ruff + mypy + lint-imports (the layering) only
	$(VENV)/ruff check . && $(VENV)/ruff format --check . && $(VENV)/mypy && $(VENV)/lint-imports

format:  ## apply ruff's formatting and safe fixes
	$(VENV)/ruff format . && $(VENV)/ruff check --fix .

locales-extract:  ## extract messages from bot/, core/ and the templates into locales/messages.pot
	$(VENV)/pybabel extract -F babel.cfg -k N_ -k t --no-location --sort-output --project=VolSpike -o locales/messages.pot .

locales-update: locales-extract  ## merge the .pot into every locales/<lang>/LC_MESSAGES/messages.po
	$(VENV)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete -w 110

bench:  ## run every benchmark in bench/: one table, bench-results/results.json and a chart (ARGS=--full)
	$(VENV)/volspike bench $(ARGS)

soak:  ## the whole system against the simulator for an hour: memory growth, alerts, log problems (ARGS=...)
	$(VENV)/volspike soak $(ARGS)
