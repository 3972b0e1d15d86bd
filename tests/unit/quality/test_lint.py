"""`dataops lint` on real files with the real tools (sqlfluff, hadolint), and no warehouse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT, ROOT, run_dataops

NO_WAREHOUSE = {k: "" for k in ("PGHOST", "PGPASSWORD", "PGUSER", "PGDATABASE")} | {
    f"DATAOPS_WAREHOUSE_{env}_PASSWORD": "" for env in ("DEV", "STAGING", "PROD")
}


# A model of another team's (the shipped models are linted by the CI lint stage and by
# tests/integration/test_shipped_lint.py: the unit tests never read them, so `dataops ci run`
# need not re-run the unit tests when only a model changes).
CUSTOMERS = """with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select
        id as customer_id,
        name as customer_name
    from source

)

select * from renamed
"""
SOURCES = """version: 2
sources:
  - name: shop
    schema: raw
    tables:
      - name: customers
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture project's config, specs, dbt settings and the toolkit's images with
    a dbt model of its
    own, in its own git repository, with one commit on main."""
    target = tmp_path / "project"
    target.mkdir()
    shutil.copy(PROJECT / "dataops.yml", target / "dataops.yml")
    for name in ("dbt_project", "images", "dags"):  # images/: the toolkit's Dockerfiles
        shutil.copytree(
            (ROOT if name == "images" else PROJECT) / name,
            target / name,
            ignore=shutil.ignore_patterns("__pycache__", "target", "models"),
        )
    models = target / "dbt_project" / "models" / "staging" / "shop"
    models.mkdir(parents=True)
    (models / "stg_shop__customers.sql").write_text(CUSTOMERS)
    (models / "_shop__sources.yml").write_text(SOURCES)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(target), *args], check=True, env=env, capture_output=True)
    return target


def break_customers_model(project: Path) -> Path:
    """Upper-case one identifier of the model (a CP02 finding sqlfluff can fix)."""
    model = project / "dbt_project/models/staging/shop/stg_shop__customers.sql"
    model.write_text(model.read_text().replace("name as customer_name", "NAME as customer_name"))
    return model


def lint(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**NO_WAREHOUSE, "DATAOPS_STATE_DIR": str(project / ".state")}
    return run_dataops("lint", *args, config=project / "dataops.yml", env=env, timeout=300)


def test_the_fixture_project_is_lint_clean_without_a_warehouse(project: Path) -> None:
    result = lint(project, "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 0 finding(s)" in result.stderr
    assert "1 sql" in result.stderr and "dockerfiles" in result.stderr


def test_an_injected_violation_is_reported_with_file_line_col_rule(project: Path) -> None:
    bad = project / "dbt_project" / "models" / "staging" / "shop" / "stg_bad.sql"
    bad.write_text("select\n    a,\n    b\nFROM t\n")
    result = lint(project, "--all")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        "dbt_project/models/staging/shop/stg_bad.sql:4:1 CP01 Keywords must be lower case." in lines
    )


def test_only_changed_files_by_default(project: Path) -> None:
    clean = lint(project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 sql" in clean.stderr  # nothing changed since main
    break_customers_model(project)
    changed = lint(project)
    assert changed.returncode == 1
    assert "1 sql" in changed.stderr
    assert all("stg_shop__customers.sql" in line for line in changed.stdout.splitlines())


def test_a_skipped_or_unparsable_model_is_a_failure(project: Path) -> None:
    models = project / "dbt_project" / "models"
    (models / "huge.sql").write_text("select 1 as a\n" + "union all select 1 as a\n" * 20000)
    (models / "broken.sql").write_text("select from where (\n")
    result = lint(project, "--all", "--format", "json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    rules = {(f["file"], f["rule"]) for f in findings}
    assert ("dbt_project/models/huge.sql", "SKIPPED") in rules
    assert ("dbt_project/models/broken.sql", "PRS") in rules


def test_dockerfiles_and_specs_are_linted_too(project: Path) -> None:
    dockerfile = project / "images" / "task.Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "ARG BASE_IMAGE=dataops/base:bookworm",
            "ARG BASE_IMAGE=debian:latest\nFROM debian:latest AS x\nRUN cd /tmp && true",
        )
    )
    spec = project / "dags" / "pipelines" / "airlines.yml"
    spec.write_text(spec.read_text().replace("mode: merge", "mode: mrege"))
    result = lint(project, "--all", "--format", "github")
    assert result.returncode == 1
    out = result.stdout
    assert "::error file=images/task.Dockerfile,line=" in out and "DL3007" in out
    assert "::error file=dags/pipelines/airlines.yml,line=" in out and "title=SCHEMA" in out


def test_fix_repairs_what_sqlfluff_can(project: Path) -> None:
    model = break_customers_model(project)
    result = lint(project, "--all", "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "name as customer_name" in model.read_text()
