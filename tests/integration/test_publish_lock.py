"""The dbt step's publish lock against the real warehouse: what waits for it and what does not.

`dataops.task.transform.transform` in this process, with dbt's two in-process calls replaced
(`_prepare`, which loads dbt and the baked manifest, and `_run_in_process`, the build) by
recorders; the lock, the load and publish records and the publish itself are the real ones in
warehouse_dev. Another session holds the publish lock, as a step of another pipeline would.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dataops.task import transform as step
from tests.integration.conftest import dev_warehouse

pytestmark = pytest.mark.integration

MONTH = "2024-05-01T00:00:00+00:00"
JUNE = "2024-06-01T00:00:00+00:00"


@pytest.fixture
def conn(platform_up: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "PGHOST": "127.0.0.1",
        "PGPORT": "5432",
        "PGDATABASE": "warehouse_dev",
        "PGUSER": "dataops",
        "PGPASSWORD": platform_up["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
    }.items():
        monkeypatch.setenv(name, value)
    with dev_warehouse(platform_up) as connection:
        yield connection


@pytest.fixture
def names(conn: psycopg.Connection) -> Iterator[tuple[str, str]]:
    """(pipeline, published schema) of this test's own; their records and schemas go after."""
    pipeline, schema = f"t{uuid.uuid4().hex[:8]}", f"p{uuid.uuid4().hex[:8]}"
    yield pipeline, schema
    conn.execute("delete from dataops.load_audit where pipeline = %s", (pipeline,))
    if conn.execute("select to_regclass('dataops.dbt_publishes')").fetchone() != (None,):
        conn.execute("delete from dataops.dbt_publishes where audit = %s", (pipeline,))
    for name in (schema, f"{schema}__audit_{pipeline}"):
        conn.execute(f"drop schema if exists {name} cascade")


def lock_holders(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select count(*) from pg_locks where locktype = 'advisory' and granted"
        " and (classid::bigint << 32) + objid::bigint = %s",
        (step.PUBLISH_LOCK,),
    ).fetchone()
    return int(row[0]) if row else 0


def waiting_for_lock(conn: psycopg.Connection, pipeline: str) -> bool:
    waiting = conn.execute(
        "select wait_event_type from pg_stat_activity where application_name = %s",
        (f"dataops-dbt-{pipeline}",),
    ).fetchall()
    return waiting == [("Lock",)]


def test_dbt_loads_before_the_lock_and_only_the_build_and_publish_wait_for_it(
    conn: psycopg.Connection,
    names: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, schema = names

    def load(month: str) -> int:
        row = conn.execute(
            "insert into dataops.load_audit (pipeline, target, interval_start, interval_end,"
            " batch, mode, rows, sha256, started_at, duration_ms)"
            " values (%s, 'raw.t', %s, %s, 'b', 'replace_partition', 1, 'x', now(), 1)"
            " returning id",
            (pipeline, month, month),
        ).fetchone()
        assert row is not None
        return int(row[0])

    load(MONTH)
    manifest = tmp_path / "state" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"nodes": {}}))
    calls: list[tuple[str, float]] = []

    def prepare(*args: Any) -> step._Baked:
        calls.append(("prepare", time.monotonic()))
        return step._Baked(manifest=None, templates=0, defer_state=None)

    def build(args: list[str], *rest: Any) -> int:
        calls.append(("build", time.monotonic()))
        # What dbt leaves: the selection built in the audit schema of this pipeline.
        conn.execute(f"create schema {schema}__audit_{pipeline}")
        conn.execute(f"create table {schema}__audit_{pipeline}.t as select 1 as x")
        return 0

    monkeypatch.setattr(step, "_prepare", prepare)
    monkeypatch.setattr(step, "_run_in_process", build)

    def run(month: str = MONTH) -> step.TransformResult:
        return step.transform(
            "t+",
            "dev",
            pipeline,
            project_dir=tmp_path,
            state_manifest=manifest,
            work_dir=tmp_path / "work",
            interval_start=month,
        )

    results: list[step.TransformResult] = []
    with dev_warehouse({"DATAOPS_POSTGRES_ADMIN_PASSWORD": conn.info.password}) as other:
        other.execute("select pg_advisory_lock(%s)", (step.PUBLISH_LOCK,))
        assert lock_holders(conn) == 1
        worker = threading.Thread(target=lambda: results.append(run()))
        worker.start()
        time.sleep(2)
        # dbt is loaded while the other session holds the lock; the build waits for it.
        assert [name for name, _ in calls] == ["prepare"], calls
        assert waiting_for_lock(conn, pipeline)
        released = time.monotonic()
        other.execute("select pg_advisory_unlock(%s)", (step.PUBLISH_LOCK,))
        worker.join(30)
        assert not worker.is_alive()
        assert [name for name, _ in calls] == ["prepare", "build"]
        assert calls[1][1] >= released
        assert results[0].exit_code == 0 and results[0].published == [f"{schema}.t"]
        assert conn.execute(f"select x from {schema}.t").fetchall() == [(1,)]

        # The interval is published now: another step of it ends without the lock (still held
        # by the other session) and without loading dbt.
        other.execute("select pg_advisory_lock(%s)", (step.PUBLISH_LOCK,))
        calls.clear()
        again = threading.Thread(target=lambda: results.append(run()))
        again.start()
        again.join(10)
        alive = again.is_alive()
        other.execute("select pg_advisory_unlock(%s)", (step.PUBLISH_LOCK,))
        again.join(30)
        assert not alive, "a step of a published interval waited for the lock"
        assert calls == [] and results[1].coalesced is not None and results[1].published == []

        # June is not published when its step starts: it loads dbt and waits. Meanwhile a build
        # that read June's load publishes it: under the lock the step sees that and ends
        # without building.
        june = load(JUNE)
        other.execute("select pg_advisory_lock(%s)", (step.PUBLISH_LOCK,))
        calls.clear()
        third = threading.Thread(target=lambda: results.append(run(JUNE)))
        third.start()
        deadline = time.monotonic() + 30
        while not waiting_for_lock(conn, pipeline):
            assert time.monotonic() < deadline and third.is_alive(), calls
            time.sleep(0.1)
        key = ("t+", hashlib.sha256(manifest.read_bytes()).hexdigest(), "dev")
        step.record_publish(other, pipeline, key, june, [f"{schema}.t"])
        other.execute("select pg_advisory_unlock(%s)", (step.PUBLISH_LOCK,))
        third.join(30)
        assert not third.is_alive()
        assert [name for name, _ in calls] == ["prepare"]  # loaded, never built
        assert results[2].coalesced is not None and results[2].published == []
    assert lock_holders(conn) == 0
