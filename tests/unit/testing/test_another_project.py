"""Nothing in the toolkit's tests depends on the reference project: in a copy of this repository
whose nycflights13 example is replaced by another team's pipeline, the toolkit's tests
(tests/unit, tests/dags) and the project's tests (tests/project) all pass.

Slow (it runs the suite again): `-m "not slow"` leaves it out, as the copy's own run does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ORDERS_SPEC = """\
# yaml-language-server: $schema=../../schemas/pipeline.schema.json
pipeline: orders
description: The shop's orders (one row per order), merged on `order_id`.
owner: shop-analytics
tags: [shop, orders]
schedule: "@daily"
start_date: 2024-01-01
catchup: false
retries: 3
source:
  type: file_drop
  path: "orders/{interval_start:%Y-%m-%d}.csv"
target:
  table: raw.orders
  mode: merge
  key: [order_id]
  columns:
    order_id: bigint
    customer_id: bigint
    ordered_at: timestamptz
    amount_cents: integer
    status: text
dbt:
  select: "stg_shop__orders+"
"""
ORDERS_STUB = '''"""Airflow DAG of dags/pipelines/orders.yml (the spec is the source of truth)."""

from dataops.airflow.factory import dag_for_stub

dag = dag_for_stub(__file__)
'''
SOURCES = """version: 2
sources:
  - name: shop
    schema: raw
    tables:
      - name: orders
"""
ORDERS_MODEL = """with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        ordered_at,
        amount_cents / 100.0 as amount,
        status as order_status
    from source

)

select * from renamed
"""
MIGRATION = """create schema if not exists raw;
create table raw.orders (
    order_id bigint primary key,
    customer_id bigint not null,
    ordered_at timestamptz not null,
    amount_cents integer not null,
    status text not null
);
"""
GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"]


def working_tree_copy(target: Path) -> Path:
    """The repository's tracked and untracked-not-ignored files as they are now (a `git clone`
    would miss uncommitted changes), in a git repository of their own with one commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # deleted but not yet committed: gone here too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*GIT, *args], cwd=target, check=True, capture_output=True)
    return target


def replace_the_example(repo: Path) -> None:
    """Another team's project: no nycflights13 pipeline, model or migration; one `orders`
    pipeline with another key, other columns, its own stub, dbt model and migration."""
    # The example goes: its pipelines, models, migrations (not V1, the toolkit's own tables
    # every project has), its data script and that script's tests.
    for pattern in (
        "dags/pipeline_*.py",
        "dags/pipelines/*.yml",
        "migrations/V[2-9]*.sql",
        "migrations/R__*.sql",
        "tests/project/test_nycflights13_script.py",
    ):
        for path in repo.glob(pattern):
            path.unlink()
    shutil.rmtree(repo / "dbt_project" / "models")
    shutil.rmtree(repo / "scripts")
    (repo / "dags" / "pipelines" / "orders.yml").write_text(ORDERS_SPEC)
    (repo / "dags" / "pipeline_orders.py").write_text(ORDERS_STUB)
    models = repo / "dbt_project" / "models" / "staging" / "shop"
    models.mkdir(parents=True)
    (models / "_shop__sources.yml").write_text(SOURCES)
    (models / "stg_shop__orders.sql").write_text(ORDERS_MODEL)
    (repo / "migrations" / "V2__orders.sql").write_text(MIGRATION)
    config = repo / "dataops.yml"
    text = config.read_text()
    assert "[[airlines, airports, planes, weather], [flights]]" in text
    config.write_text(
        text.replace("[[airlines, airports, planes, weather], [flights]]", "[[orders]]")
    )
    leftovers = subprocess.run(
        ["git", "grep", "-l", "-i", "nycflights", "--", "dags", "dbt_project/models", "migrations"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert leftovers.stdout == ""
    for args in (["add", "-A"], ["commit", "-q", "-m", "Replace the example with orders"]):
        subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


def pytest_in(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    env.pop("DATAOPS_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_the_toolkits_tests_pass_without_the_example(tmp_path: Path) -> None:
    repo = working_tree_copy(tmp_path / "repo")
    replace_the_example(repo)

    # Every toolkit test but the example's own (`dataops init --example flights` ships the
    # example, which is gone here).
    toolkit = pytest_in(
        repo, "-m", "not slow", "-k", "not flights_example", "tests/unit", "tests/dags"
    )
    assert toolkit.returncode == 0, toolkit.stdout[-6000:] + toolkit.stderr[-3000:]
    assert re.search(r"\b\d{3,} passed", toolkit.stdout), toolkit.stdout[-2000:]

    project = pytest_in(repo, "-rA", "tests/project")
    assert project.returncode == 0, project.stdout[-6000:] + project.stderr[-3000:]
    ran = set(re.findall(r"^PASSED \S+::(test_\w+\[\w+\])", project.stdout, re.M))
    assert {
        "test_dag_file_imports_without_errors[orders]",
        "test_dag_follows_the_policy[orders]",
        "test_dbt_selection_matches_a_node[orders]",
    } <= ran, project.stdout[-3000:]
    assert not any("flights" in test or "airlines" in test for test in ran)
