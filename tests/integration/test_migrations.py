"""`dataops migrate` against the real Postgres, each test in a scratch database of its own.

The project file of each test is a copy of dataops.yml whose dev warehouse is the scratch
database and whose migrations folder is the test's; the state dir (and so the local secrets)
is the checkout's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import DATAOPS, ROOT, run_dataops
from tests.integration.conftest import dev_warehouse

pytestmark = pytest.mark.integration


@dataclass
class Project:
    config: Path
    migrations: Path
    database: str
    secrets: dict[str, str]

    def write(self, name: str, sql: str) -> Path:
        path = self.migrations / name
        path.write_text(sql)
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_dataops(
            *args, config=self.config, env={"DATAOPS_STATE_DIR": str(ROOT / ".dataops")}
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "DATAOPS_CONFIG": str(self.config)}
        env["DATAOPS_STATE_DIR"] = str(ROOT / ".dataops")
        return subprocess.Popen(
            [*DATAOPS, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def connect(self) -> psycopg.Connection:
        """As dev's own role: what the team (and dataops) create in dev's warehouse."""
        return psycopg.connect(
            host="127.0.0.1",
            port=5432,
            dbname=self.database,
            user="dataops_dev",
            password=self.secrets["DATAOPS_WAREHOUSE_DEV_PASSWORD"],
            autocommit=True,
        )

    def query(self, sql: str) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql).fetchall()

    def history(self) -> list[tuple]:
        return self.query(
            "select version, script, success from dataops.schema_history order by installed_rank"
        )


@pytest.fixture
def project(platform_up: dict[str, str], tmp_path: Path) -> Iterator[Project]:
    database = f"mig_{uuid.uuid4().hex[:10]}"
    with dev_warehouse(platform_up) as conn:
        # Made by the admin, owned by dev's own role: the role the CLI migrates with.
        conn.execute(f"create database {database} owner dataops_dev")
    config = tmp_path / "dataops.yml"
    text = (ROOT / "dataops.yml").read_text().replace("warehouse_dev", database)
    text = text.replace("schemas: [raw, dataops]", "schemas: [app, dataops]")
    config.write_text(text)
    (tmp_path / "migrations").mkdir()
    yield Project(config, tmp_path / "migrations", database, platform_up)
    # A killed migrator's session may still sit in its statement (pg_sleep does not notice the
    # client is gone). It is dev's role's: the admin may not end it, the role itself may.
    with psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname="warehouse_dev",
        user="dataops_dev",
        password=platform_up["DATAOPS_WAREHOUSE_DEV_PASSWORD"],
        autocommit=True,
    ) as own:
        own.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and usename = 'dataops_dev'",
            (database,),
        )
    with dev_warehouse(platform_up) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


V1 = "create schema app;\ncreate table app.t (id integer primary key, name text);\n"
V2 = "insert into app.t select g, 'n' || g from generate_series(1, 100) g;\nselect pg_sleep(0.5);\n"
V3 = (
    "alter table app.t add column created_at timestamptz;\n"
    "-- verify\n"
    "select count(*) = 100 from app.t;\n"
)
R_VIEW = "create or replace view app.t_names as select id, name from app.t;\n"


def test_eight_concurrent_applies_apply_every_migration_exactly_once(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    project.write("V2__fill_t.sql", V2)
    project.write("V3__add_created_at.sql", V3)
    project.write("R__t_names.sql", R_VIEW)
    runs = [project.popen("migrate", "apply", "--env", "dev", "--json") for _ in range(8)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 8, [err for _, err in outputs]
    applied = [item["script"] for out, _ in outputs for item in json.loads(out)]
    assert sorted(applied) == [
        "R__t_names.sql",
        "V1__create_t.sql",
        "V2__fill_t.sql",
        "V3__add_created_at.sql",
    ]
    assert any("waiting for the migration lock" in err for _, err in outputs)
    assert project.history() == [
        ("1", "V1__create_t.sql", True),
        ("2", "V2__fill_t.sql", True),
        ("3", "V3__add_created_at.sql", True),
        (None, "R__t_names.sql", True),
    ]
    assert project.query("select count(*) from app.t") == [(100,)]

    again = project.run("migrate", "apply", "--env", "dev")
    assert again.returncode == 0, again.stderr
    assert "nothing applied" in again.stdout
    assert len(project.history()) == 4
    # A changed repeatable is applied again; an unchanged one is not.
    project.write("R__t_names.sql", R_VIEW.replace("id, name", "id, upper(name) as name"))
    changed = project.run("migrate", "apply", "--env", "dev", "--json")
    assert [item["script"] for item in json.loads(changed.stdout)] == ["R__t_names.sql"]


def test_an_edited_applied_migration_stops_validate_and_apply_before_any_ddl(
    project: Project,
) -> None:
    v1 = project.write("V1__create_t.sql", V1)
    assert project.run("migrate", "apply", "--env", "dev").returncode == 0
    recorded = project.history()
    # Only line endings changed: the same migration.
    v1.write_bytes(V1.replace("\n", "\r\n").encode())
    assert project.run("migrate", "validate", "--env", "dev").returncode == 0

    v1.write_text(V1.replace("name text", "name text not null"))
    project.write("V2__more.sql", "create table app.more (id integer);\n")
    from dataops.core.migrations import checksum

    old, new = checksum(V1), checksum(v1.read_text())
    for command in ("validate", "apply"):
        result = project.run("migrate", command, "--env", "dev")
        assert result.returncode == 1, result.stdout
        assert "V1__create_t.sql: V1 was edited after it was applied" in result.stderr
        assert old in result.stderr and new in result.stderr
    assert project.query("select to_regclass('app.more')") == [(None,)]
    assert project.history() == recorded

    # Deleting an applied migration is caught the same way.
    v1.unlink()
    result = project.run("migrate", "apply", "--env", "dev")
    assert result.returncode == 1
    assert "V1 (V1__create_t.sql) was applied but its file is gone" in result.stderr


def test_a_migration_failing_halfway_leaves_nothing_and_can_be_fixed(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    bad = project.write(
        "V2__half.sql",
        "create table app.half (id integer);\ninsert into app.half values (1);\nselect 1 / 0;\n",
    )
    result = project.run("migrate", "apply", "--env", "dev")
    assert result.returncode == 1
    assert "V2__half.sql: V2 failed and was rolled back" in result.stderr
    assert "line 3: division by zero" in result.stderr
    assert project.query("select to_regclass('app.half')") == [(None,)]
    assert project.history() == [("1", "V1__create_t.sql", True)]  # V1 stays applied

    bad.write_text("create table app.half (id integer);\ninsert into app.half values (1);\n")
    fixed = project.run("migrate", "apply", "--env", "dev")
    assert fixed.returncode == 0, fixed.stderr
    assert project.query("select count(*) from app.half") == [(1,)]


def test_a_killed_migrator_does_not_block_the_next_run(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    slow = project.write(
        "V2__slow.sql", "create table app.slow (id integer);\nselect pg_sleep(120);\n"
    )
    victim = project.popen("migrate", "apply", "--env", "dev")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sleeping = project.query(
            "select count(*) from pg_stat_activity where query like '%pg_sleep(120)%'"
            " and application_name = 'dataops-migrate'"
        )
        if sleeping[0][0]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the migrator never reached the slow migration")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL  # the fault happened

    slow.write_text("create table app.slow (id integer);\n")
    started = time.monotonic()
    result = project.run("migrate", "apply", "--env", "dev", "--lock-timeout", "60")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30  # the dead session's lock went with it
    assert project.history() == [("1", "V1__create_t.sql", True), ("2", "V2__slow.sql", True)]


def test_a_failed_non_transactional_migration_blocks_until_repaired(project: Project) -> None:
    project.write(
        "V1__create_t.sql",
        "create schema app;\ncreate table app.t (id integer);\n"
        "insert into app.t values (1), (1);\n",
    )
    project.write(
        "V2__unique_index.sql",
        "-- dataops:no-transaction\ncreate unique index concurrently t_id on app.t (id);\n",
    )
    result = project.run("migrate", "apply", "--env", "dev")
    assert result.returncode == 1
    assert "failed outside a transaction" in result.stderr
    assert "index app.t_id (INVALID)" in result.stderr
    assert project.history()[-1] == ("2", "V2__unique_index.sql", False)

    blocked = project.run("migrate", "apply", "--env", "dev")
    assert blocked.returncode == 1
    assert "V2 (V2__unique_index.sql) failed" in blocked.stderr
    assert "dataops migrate repair --env dev --version 2" in blocked.stderr

    with project.connect() as conn:  # what the operator does: clean up, fix the data
        conn.execute("drop index app.t_id")
        conn.execute("delete from app.t where ctid not in (select min(ctid) from app.t)")
    repaired = project.run("migrate", "repair", "--env", "dev", "--version", "2")
    assert repaired.returncode == 0, repaired.stderr
    assert "forgot the failed attempt of V2" in repaired.stdout
    done = project.run("migrate", "apply", "--env", "dev")
    assert done.returncode == 0, done.stderr
    assert project.history()[-1] == ("2", "V2__unique_index.sql", True)


def test_an_existing_database_must_be_baselined(project: Project) -> None:
    with project.connect() as conn:
        conn.execute("create schema app")
        conn.execute("create table app.legacy (id integer)")
    project.write("V1__create_legacy.sql", "create table app.legacy (id integer);\n")
    project.write("V2__more.sql", "create table app.more (id integer);\n")
    refused = project.run("migrate", "apply", "--env", "dev")
    assert refused.returncode == 2
    assert "app.legacy" in refused.stderr
    assert "dataops migrate baseline --env dev --version V" in refused.stderr

    assert project.run("migrate", "baseline", "--env", "dev", "--version", "1").returncode == 0
    applied = project.run("migrate", "apply", "--env", "dev", "--json")
    assert [item["script"] for item in json.loads(applied.stdout)] == ["V2__more.sql"]
    again = project.run("migrate", "baseline", "--env", "dev", "--version", "1")
    assert again.returncode == 2 and "already has a migration history" in again.stderr


def test_plan_prints_exactly_what_apply_then_runs(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    project.write("V2__fill_t.sql", V2)
    project.write("R__t_names.sql", R_VIEW)
    plan = project.run("migrate", "plan", "--env", "dev", "--json")
    assert plan.returncode == 0, plan.stderr
    assert project.query("select to_regclass('dataops.schema_history')") == [(None,)]  # untouched
    apply = project.run("migrate", "apply", "--env", "dev", "--json")
    planned = [(p["script"], p["checksum"], p["statements"]) for p in json.loads(plan.stdout)]
    applied = [(a["script"], a["checksum"], a["statements"]) for a in json.loads(apply.stdout)]
    assert planned == applied and len(planned) == 3
    text = project.run("migrate", "plan", "--env", "dev")
    assert "up to date" in text.stdout


def test_status_reports_drift_made_outside_migrations(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    assert project.run("migrate", "apply", "--env", "dev").returncode == 0
    clean = project.run("migrate", "status", "--env", "dev")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout
    with project.connect() as conn:
        conn.execute("alter table app.t add column sneaky integer")
        conn.execute("create index t_name on app.t (name)")
    drifted = project.run("migrate", "status", "--env", "dev", "--json")
    assert drifted.returncode == 1
    drift = json.loads(drifted.stdout)["drift"]
    assert "+ column app.t.sneaky integer" in drift
    assert any(line.startswith("+ index app.t_name: CREATE INDEX t_name") for line in drift)


def test_destructive_changes_need_the_annotation_in_prod(project: Project) -> None:
    project.write("V1__create_t.sql", V1)
    project.write("V2__drop_name.sql", "alter table app.t drop column name;\n")
    dev = project.run("migrate", "plan", "--env", "dev")
    assert dev.returncode == 0
    assert "V2__drop_name.sql:1:1 MIG01 destructive change (DROP COLUMN)" in dev.stderr
    prod_config = project.config.read_text().replace("warehouse_prod", project.database)
    project.config.write_text(prod_config)
    prod = project.run("migrate", "plan", "--env", "prod")
    assert prod.returncode == 1
    assert "prod requires the annotation" in prod.stderr
    project.write(
        "V2__drop_name.sql",
        "-- dataops:allow-destructive name moved to app.names in V1\n"
        "alter table app.t drop column name;\n",
    )
    assert project.run("migrate", "plan", "--env", "prod").returncode == 0
    # prod applies only what a promotion brings: not the working tree's migrations.
    refused = project.run("migrate", "apply", "--env", "prod")
    assert refused.returncode == 2
    assert "prod applies only the migrations of the release it runs" in refused.stderr
    assert project.query("select to_regclass('dataops.schema_history')") == [(None,)]
