"""Staging's deployment runs CeleryExecutor (dataops.yml): its own Redis broker and two
workers. The flights pipeline runs a quarter there on both workers and loads exactly what
LocalExecutor (dev) loads; a worker killed with SIGKILL mid-task loses nothing and duplicates
nothing, its task retried on the other worker; a Redis restart mid-run loses no run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from dataops.clients.airflow_api import AirflowClient
from dataops.local.process import group_members, process_alive
from tests.conftest import DATAOPS, ROOT
from tests.integration.conftest import AIRFLOW, dataops_ok

pytestmark = pytest.mark.integration
STATE = ROOT / ".dataops"
WORKERS = ("staging-worker-1", "staging-worker-2")
QUARTER = ("2013-01-01", "2013-03-31")


def ok(*args: str) -> str:
    return dataops_ok(*args).stdout


def active(env: str) -> str | None:
    path = STATE / "releases" / f"active-{env}.json"
    return json.loads(path.read_text())["release"] if path.exists() else None


def warehouse(secrets: dict[str, str], env: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        dbname=f"warehouse_{env}",
        user="dataops",
        password=secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
        autocommit=True,
    )


def flights(secrets: dict[str, str], env: str, months: tuple[int, ...]) -> tuple[int, str]:
    """Rows of raw.flights in `months` of 2013 and a hash of their content, in env's warehouse."""
    with warehouse(secrets, env) as conn:
        row = conn.execute(
            "select count(*), md5(coalesce(string_agg(f::text, '|' order by f::text), ''))"
            " from raw.flights f where year = 2013 and month = any(%s)",
            (list(months),),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def staging_airflow(secrets: dict[str, str]) -> AirflowClient:
    return AirflowClient(AIRFLOW["staging"], "admin", secrets["DATAOPS_AIRFLOW_STAGING_PASSWORD"])


def task_instances(client: AirflowClient, dag_id: str, start: datetime) -> list[dict[str, Any]]:
    run_id = client.run_for_interval(dag_id, start)
    assert run_id, f"no run of {dag_id} for {start}"
    return client.task_instances(dag_id, run_id)


def tries(client: AirflowClient, dag_id: str, start: datetime, task: str) -> list[dict[str, Any]]:
    """Every try of one task instance (Airflow keeps the earlier ones as its history)."""
    run_id = client.run_for_interval(dag_id, start)
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/tries"
    return list(client.json("GET", path)["task_instances"])


def queued_ahead(tis: list[dict[str, Any]]) -> list[str]:
    """The tasks queued before the task their worker ran just before them ended."""
    when = lambda t, key: datetime.fromisoformat(t[key].replace("Z", "+00:00"))  # noqa: E731
    found = []
    for ti in tis:
        before = [
            t
            for t in tis
            if t is not ti
            and t["hostname"] == ti["hostname"]
            and when(t, "end_date") <= when(ti, "start_date")
        ]
        if before:
            previous = max(before, key=lambda t: when(t, "end_date"))
            if when(ti, "queued_when") < when(previous, "end_date"):
                found.append(f"{ti['dag_run_id']}:{ti['task_id']}")
    return found


def worker_pid(name: str) -> int | None:
    """The pid of a staging worker (its process group leader), from its pid file."""
    component = name.removeprefix("staging-")
    path = STATE / "run" / f"airflow-staging-celery-worker-{component}.pid"
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def loaded(secrets: dict[str, str], env: str, table: str) -> bool:
    with warehouse(secrets, env) as conn:
        if conn.execute("select to_regclass(%s)", (table,)).fetchone() == (None,):
            return False
        row = conn.execute(f"select exists (select from {table})").fetchone()
    return bool(row and row[0])


def local_executor_months(secrets: dict[str, str], months: tuple[int, ...]) -> tuple[int, str]:
    """The same months as loaded by dev's LocalExecutor (test_pipelines' year backfill loaded
    them; run them in dev when a month is missing)."""
    with warehouse(secrets, "dev") as conn:
        have = (
            {
                r[0]
                for r in conn.execute(
                    "select distinct month from raw.flights where year = 2013 and month = any(%s)",
                    (list(months),),
                ).fetchall()
            }
            if conn.execute("select to_regclass('raw.flights')").fetchone() != (None,)
            else set()
        )
    for month in sorted(set(months) - have):
        ok("run", "flights", "--env", "dev", "--date", f"2013-{month:02d}-01")
    return flights(secrets, "dev", months)


@pytest.fixture(scope="module")
def staging_runs_devs_release(pipelines_ready: dict[str, str]) -> Iterator[dict[str, str]]:
    """Staging runs the release dev runs (promoted as make demo does), with the reference
    data loaded there (test_environments' smoke loads it; else it is run here); both workers
    up."""
    if active("staging") != active("dev"):
        ok("release", "check", "--env", "dev", "--name", "ci", "--passed")
        ok("promote", "--to", "staging")
    for name in ("airlines", "airports", "planes", "weather"):
        if not loaded(pipelines_ready, "staging", f"raw.{name}"):
            ok("run", name, "--env", "staging", "--date", "2013-01-01")
    assert all(worker_pid(w) for w in WORKERS), "both staging workers should run"
    yield pipelines_ready
    ok("up", "--env", "staging", "--no-install")  # a test may have stopped a worker or Redis


def test_a_quarter_runs_on_both_celery_workers_and_loads_what_local_executor_loads(
    staging_runs_devs_release: dict[str, str],
) -> None:
    secrets = staging_runs_devs_release
    status = json.loads(ok("status", "--json"))
    services = {s["name"]: s for s in status["services"]}
    assert services["redis-staging"]["health"] == "healthy"
    staging = services["airflow-staging"]
    assert "CeleryExecutor, 2 worker(s), 2 slot(s), 2 queued ahead" in staging["detail"]
    config = (STATE / "airflow" / "staging" / "airflow.cfg").read_text()
    assert "\nparallelism = 4\n" in config and "\ntask_queued_timeout = 3600\n" in config
    assert {"celery-worker-worker-1", "celery-worker-worker-2"} <= set(staging["components"])

    started = time.monotonic()
    ok("run", "flights", "--env", "staging", "--from", QUARTER[0], "--to", QUARTER[1])
    print(f"quarter on staging (Celery, 2 workers): {time.monotonic() - started:.1f}s")

    hosts: dict[str, set[str]] = {}
    ran: list[dict[str, Any]] = []
    with staging_airflow(secrets) as client:
        for month in (1, 2, 3):
            for ti in task_instances(client, "flights", datetime(2013, month, 1, tzinfo=UTC)):
                ran.append(ti)
                assert ti["state"] == "success", ti
                hosts.setdefault(ti["hostname"], set()).add(f"{month}:{ti['task_id']}")
                if ti["task_id"] == "load":
                    assert ti["queue"] == "heavy"  # flights.yml: queue: {load: heavy}
    assert set(hosts) == set(WORKERS), hosts  # tasks ran on both workers, and only there
    # celery.queue_ahead: 1 handed tasks to Redis ahead of a free slot: some task was queued
    # before the task its worker ran just before it had ended. (With one task per slot the
    # scheduler queues the next only after reading a result, so never.)
    assert queued_ahead(ran), [
        (t["hostname"], t["queued_when"], t["start_date"], t["end_date"]) for t in ran
    ]
    assert flights(secrets, "staging", (1, 2, 3)) == local_executor_months(secrets, (1, 2, 3))
    assert flights(secrets, "staging", (1, 2, 3))[0] > 80_000  # three real months


def test_a_worker_killed_mid_task_is_retried_on_the_other_worker_exactly_once(
    staging_runs_devs_release: dict[str, str],
) -> None:
    secrets = staging_runs_devs_release
    april = datetime(2013, 4, 1, tzinfo=UTC)
    run = subprocess.Popen(
        [*DATAOPS, "run", "flights", "--env", "staging", "--date", "2013-04-01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed: str | None = None
    try:
        with staging_airflow(secrets) as client:
            deadline = time.monotonic() + 300
            while killed is None:
                assert time.monotonic() < deadline, "the load never started"
                assert run.poll() is None, run.stdout.read() if run.stdout else ""
                run_id = client.run_for_interval("flights", april)
                tis = client.task_instances("flights", run_id) if run_id else []
                load = next((t for t in tis if t["task_id"] == "load"), None)
                if load and load["state"] == "running" and load["hostname"] in WORKERS:
                    killed, try_number = load["hostname"], load["try_number"]
                    pid = worker_pid(killed)
                    assert pid is not None
                    os.killpg(pid, signal.SIGKILL)  # the worker and every task it runs
                    for _ in range(100):
                        if not group_members(pid):
                            break
                        time.sleep(0.1)
                    assert not group_members(pid), "the worker's processes survived SIGKILL"
                    assert worker_pid(killed) is None  # the fault happened
                time.sleep(0.5)
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-3000:]
    with staging_airflow(secrets) as client:
        history = tries(client, "flights", april, "load")
    by_try = {t["try_number"]: t for t in history}
    assert by_try[try_number]["hostname"] == killed
    assert by_try[try_number]["state"] != "success"
    last = by_try[max(by_try)]
    assert last["state"] == "success" and max(by_try) > try_number
    assert last["hostname"] in set(WORKERS) - {killed}  # retried on the other worker
    # Exactly once: April as LocalExecutor loads it.
    assert flights(secrets, "staging", (4,)) == local_executor_months(secrets, (4,))
    ok("up", "--env", "staging", "--no-install")  # the killed worker comes back
    assert worker_pid(killed) is not None


def test_a_redis_restart_mid_run_loses_no_run_and_writes_nothing_twice(
    staging_runs_devs_release: dict[str, str],
) -> None:
    """The broker restarts while two monthly runs are under way: queued tasks survive it (its
    append-only file), workers and the scheduler reconnect, every run finishes, and the months
    hold exactly what a LocalExecutor run loads."""
    secrets = staging_runs_devs_release
    broker = STATE / "run" / "redis-staging.pid"
    before = int(broker.read_text().split()[0])
    run = subprocess.Popen(
        [
            *DATAOPS,
            "run",
            "flights",
            "--env",
            "staging",
            "--from",
            "2013-05-01",
            "--to",
            "2013-06-30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with staging_airflow(secrets) as client:
            deadline = time.monotonic() + 300
            while True:  # wait until a task of the burst runs, then restart the broker
                assert time.monotonic() < deadline, "no task of the burst started"
                run_id = client.run_for_interval("flights", datetime(2013, 5, 1, tzinfo=UTC))
                tis = client.task_instances("flights", run_id) if run_id else []
                if any(t["state"] == "running" for t in tis):
                    break
                time.sleep(0.5)
        os.kill(before, signal.SIGTERM)
        for _ in range(100):
            if not process_alive(before):
                break
            time.sleep(0.1)
        assert not process_alive(before), "redis-server did not stop"
        time.sleep(5)  # tasks finish and new ones are due while the broker is down
        ok("up", "--env", "staging", "--no-install")
        after = int(broker.read_text().split()[0])
        assert after != before and process_alive(after)  # the fault happened: a new broker
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-3000:]
    assert flights(secrets, "staging", (5, 6)) == local_executor_months(secrets, (5, 6))
