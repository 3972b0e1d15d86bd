"""Write-audit-publish against the real warehouse: what `dataops-task transform` publishes.

Each test works in schemas of its own (`p<hex>_marts` and its audit twin) of warehouse_dev.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from dataops.task.files import TaskError
from dataops.task.transform import audit_schemas, publish
from tests.integration.conftest import dev_warehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(platform_up: dict[str, str]) -> Iterator[psycopg.Connection]:
    with dev_warehouse(platform_up) as connection:
        yield connection


@pytest.fixture
def names(conn: psycopg.Connection) -> Iterator[tuple[str, str, str]]:
    """(audit name, published staging schema, published marts schema); all dropped after."""
    name = f"t{uuid.uuid4().hex[:8]}"
    base = f"p{uuid.uuid4().hex[:8]}"
    staging, marts = f"{base}_staging", f"{base}_marts"
    yield name, staging, marts
    for schema in (staging, marts, f"{staging}__audit_{name}", f"{marts}__audit_{name}"):
        conn.execute(f"drop schema if exists {schema} cascade")
    conn.execute(f"drop schema if exists {base}_readers cascade")


def build(conn: psycopg.Connection, staging: str, marts: str, value: int, extra: str = "") -> None:
    """What dbt builds: a staging view and a mart table that reads it."""
    conn.execute(f"create schema if not exists {staging}")
    conn.execute(f"create schema if not exists {marts}")
    conn.execute(f"create view {staging}.stg as select {value} as amount, 'x' as code{extra}")
    conn.execute(f"create table {marts}.mart as select amount * 10 as total from {staging}.stg")


def test_publish_replaces_views_in_place_and_moves_tables(
    conn: psycopg.Connection, names: tuple[str, str, str]
) -> None:
    name, staging, marts = names
    build(conn, staging, marts, 1)  # what readers see now
    readers = staging.replace("_staging", "_readers")
    conn.execute(f"create schema {readers}")
    conn.execute(f"create view {readers}.report as select amount from {staging}.stg")
    build(conn, f"{staging}__audit_{name}", f"{marts}__audit_{name}", 2)
    assert audit_schemas(conn, name) == sorted(
        [f"{staging}__audit_{name}", f"{marts}__audit_{name}"]
    )

    published = publish(conn, name)

    assert published == [f"{marts}.mart", f"{staging}.stg"]
    assert conn.execute(f"select total from {marts}.mart").fetchone() == (20,)
    # The reader's view on the replaced staging view survives and sees the new definition.
    assert conn.execute(f"select amount from {readers}.report").fetchone() == (2,)
    assert audit_schemas(conn, name) == []
    definition = conn.execute(f"select pg_get_viewdef('{staging}.stg'::regclass)").fetchone()[0]
    assert "__audit_" not in definition


def test_a_reader_view_on_a_replaced_table_stops_the_publish_and_changes_nothing(
    conn: psycopg.Connection, names: tuple[str, str, str]
) -> None:
    name, staging, marts = names
    build(conn, staging, marts, 1)
    readers = staging.replace("_staging", "_readers")
    conn.execute(f"create schema {readers}")
    conn.execute(f"create view {readers}.on_mart as select total from {marts}.mart")
    build(conn, f"{staging}__audit_{name}", f"{marts}__audit_{name}", 2)

    with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="on_mart"):
        publish(conn, name)

    # One transaction: the staging view replaced before the failure is back as it was too.
    assert conn.execute(f"select total from {marts}.mart").fetchone() == (10,)
    assert conn.execute(f"select amount from {staging}.stg").fetchone() == (1,)
    assert len(audit_schemas(conn, name)) == 2  # the audited build is still there


def test_a_view_whose_columns_changed_is_recreated_unless_a_reader_depends_on_it(
    conn: psycopg.Connection, names: tuple[str, str, str]
) -> None:
    name, staging, marts = names
    build(conn, staging, marts, 1, extra=", 'old' as dropped_later")
    # The new build drops a column: `create or replace view` cannot do that.
    build(conn, f"{staging}__audit_{name}", f"{marts}__audit_{name}", 2)
    assert publish(conn, name) == [f"{marts}.mart", f"{staging}.stg"]
    columns = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = 'stg' order by ordinal_position",
        (staging,),
    ).fetchall()
    assert columns == [("amount",), ("code",)]

    # Again, now with a reader's view on the column that goes away.
    conn.execute(f"drop view {staging}.stg cascade")
    conn.execute(f"create view {staging}.stg as select 1 as amount, 'x' as code, 0 as gone")
    readers = staging.replace("_staging", "_readers")
    conn.execute(f"create schema {readers}")
    conn.execute(f"create view {readers}.uses_gone as select gone from {staging}.stg")
    build(conn, f"{staging}__audit_{name}", f"{marts}__audit_{name}", 3)
    with pytest.raises(
        TaskError, match=r"cannot publish .*\.stg: its columns changed and .*uses_gone"
    ):
        publish(conn, name)
    assert conn.execute(f"select gone from {readers}.uses_gone").fetchone() == (0,)
    assert conn.execute(f"select total from {marts}.mart").fetchone() == (20,)
