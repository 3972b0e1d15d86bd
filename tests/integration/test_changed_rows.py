"""Tests of the changed rows only: what the dbt step passes (`changed_since_publish`, from the
real load and publish records) and what the toolkit's `get_where_subquery` makes of a test's
`where` in a real `dbt build`, in another team's project that ships its own where macro.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dataops.clients import dbt
from dataops.core.config import DbtConfig
from dataops.task.transform import changed_since_publish, record_publish
from tests.integration.conftest import dev_warehouse

pytestmark = pytest.mark.integration

KEY = ("stg_orders+", "project-sha", "dev")


@pytest.fixture
def conn(platform_up: dict[str, str]) -> Iterator[psycopg.Connection]:
    with dev_warehouse(platform_up) as connection:
        yield connection


@pytest.fixture
def pipeline(conn: psycopg.Connection) -> Iterator[str]:
    """A pipeline name of this test's own; its load and publish records are removed after."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    conn.execute("delete from dataops.load_audit where pipeline = %s", (name,))
    if conn.execute("select to_regclass('dataops.dbt_publishes')").fetchone() != (None,):
        conn.execute("delete from dataops.dbt_publishes where audit = %s", (name,))


def load(conn: psycopg.Connection, pipeline: str, month: str) -> int:
    """A load record of `pipeline` for the month starting `month` (a point interval, as
    Airflow 3's cron schedules give a run)."""
    row = conn.execute(
        "insert into dataops.load_audit (pipeline, target, interval_start, interval_end, batch,"
        " mode, rows, sha256, started_at, duration_ms)"
        " values (%s, 'raw.orders', %s, %s, 'b', 'replace_partition', 1, 'x', now(), 1)"
        " returning id",
        (pipeline, month, month),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_changed_rows_are_the_loads_since_the_last_publish_of_the_same_key(
    conn: psycopg.Connection, pipeline: str
) -> None:
    first = load(conn, pipeline, "2024-01-01T00:00:00+00:00")
    load(conn, pipeline, "2024-02-01T00:00:00+00:00")
    # No publish of this key yet (a release's first build): every row is tested.
    assert changed_since_publish(conn, pipeline, KEY, first + 1) is None
    record_publish(conn, pipeline, KEY, first + 1, [])
    # Nothing loaded since: every row again, not none.
    assert changed_since_publish(conn, pipeline, KEY, first + 1) is None
    again = load(conn, pipeline, "2024-01-01T00:00:00+00:00")  # January re-loaded
    changed = changed_since_publish(conn, pipeline, KEY, again)
    assert changed is not None
    assert changed["loads"] == (again, again) and changed["since"] == first + 1
    # Up to the start of the next interval loaded after it (February), not its point end.
    assert changed["from"].startswith("2024-01-01") and changed["to"].startswith("2024-02-01")
    march = load(conn, pipeline, "2024-03-01T00:00:00+00:00")
    changed = changed_since_publish(conn, pipeline, KEY, march)
    assert changed is not None and changed["loads"] == (again, march)
    assert changed["from"].startswith("2024-01-01") and changed["to"] == "infinity"
    # Another dbt project (a new release) has no publish: it tests every row.
    other = (KEY[0], "another-project", KEY[2])
    assert changed_since_publish(conn, pipeline, other, march) is None


SHOP = {
    "dbt_project.yml": """
        name: shop
        version: "1.0.0"
        config-version: 2
        profile: shop
        model-paths: ["models"]
        macro-paths: ["macros"]
    """,
    # The team's own where macro: its `__before_feb__` shorthand must keep working.
    "macros/where.sql": """
        {% macro get_where_subquery(relation) -%}
            {%- set where = config.get('where', '') -%}
            {%- if where -%}
                {%- set feb = "ordered_at < date '2024-02-01'" -%}
                {%- set where = where | replace('__before_feb__', feb) -%}
                {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') shop_sub') -%}
            {%- endif -%}
            {%- do return(relation) -%}
        {%- endmacro %}
    """,
    "models/orders.sql": """
        {{ config(materialized='table') }}
        select * from (values
            (1, date '2024-01-05', 1250),
            (2, date '2024-02-02', null)
        ) as t (order_id, ordered_at, amount_cents)
    """,
    "models/_orders.yml": """
        version: 2
        models:
          - name: orders
            columns:
              - name: amount_cents
                data_tests:
                  - not_null:
                      name: amount_in_changed_months
                      config:
                        where: >-
                          ordered_at >= __dataops_changed_from__
                          and ordered_at < __dataops_changed_to__
                  - not_null:
                      name: amount_before_february
                      config:
                        where: "__before_feb__"
    """,
}


@pytest.fixture
def shop(tmp_path: Path, conn: psycopg.Connection) -> Iterator[tuple[Path, str]]:
    """The shop project's build copy and a schema of its own in warehouse_dev."""
    source = tmp_path / "shop"
    for name, text in SHOP.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip())
    copy = dbt.prepare_project(
        DbtConfig.model_validate({"project_dir": str(source)}),
        source,
        tmp_path / "copy" / "dbt_project",
        {"dev": "dev"},
        tmp_path / "logs",
        lambda _: None,
    )
    schema = f"t{uuid.uuid4().hex[:8]}"
    yield copy.path, schema
    conn.execute(f'drop schema if exists "{schema}" cascade')


def build(copy: Path, schema: str, secrets: dict[str, str], variables: dict) -> dict[str, str]:
    """`dbt build` of the copy in `schema`; {test name: status}."""
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": "5432",
        "PGDATABASE": "warehouse_dev",
        "PGUSER": "dataops",
        "PGPASSWORD": secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
        "DBT_SCHEMA": schema,
        "DBT_TARGET_PATH": str(copy / "target"),
    }
    command = [sys.executable, "-m", "dbt.cli.main", "build", "--project-dir", str(copy)]
    command += ["--profiles-dir", str(copy), "--vars", json.dumps(variables)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    results = json.loads((copy / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in results}
    assert "orders" in statuses, result.stdout[-3000:]
    return statuses


def test_a_where_naming_the_changed_bounds_reads_only_those_rows_and_others_are_the_teams(
    shop: tuple[Path, str], platform_up: dict[str, str]
) -> None:
    copy, schema = shop
    macros = (copy / "macros" / "where.sql").read_text()
    assert "macro dataops_project_get_where_subquery(" in macros  # the team's, renamed
    january = {"from": "2024-01-01T00:00:00+00:00", "to": "2024-02-01T00:00:00+00:00"}
    # January changed: February's null amount is not read; the team's shorthand still works.
    tested = build(copy, schema, platform_up, {"dataops_changed": january})
    assert tested["amount_in_changed_months"] == "pass"
    assert tested["amount_before_february"] == "pass"
    # February changed: its null amount fails the gate.
    february = {"from": "2024-02-01T00:00:00+00:00", "to": "infinity"}
    tested = build(copy, schema, platform_up, {"dataops_changed": february})
    assert tested["amount_in_changed_months"] == "fail"
    assert tested["amount_before_february"] == "pass"
    # No changed bounds (CI, a release's first build): the where is dropped, every row is read.
    tested = build(copy, schema, platform_up, {})
    assert tested["amount_in_changed_months"] == "fail"
