"""The example pipelines end to end: Airflow runs containers that load the real flights data."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest

from dataops.clients.airflow_api import AirflowClient
from tests.conftest import ROOT, run_dataops
from tests.integration.conftest import ready_secrets

pytestmark = pytest.mark.integration
INCOMING = ROOT / ".dataops" / "data" / "dev" / "incoming"


def state_of(conn: psycopg.Connection, table: str, where: str = "true") -> tuple[int, str]:
    row = conn.execute(
        "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
        f" from {table} t where {where}"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_full_year_backfill_loads_every_flight(ready: psycopg.Connection) -> None:
    before = ready.execute("select clock_timestamp()").fetchone()[0]
    result = run_dataops(
        "run", "flights", "--env", "dev", "--from", "2013-01-01", "--to", "2013-12-31"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "success: 12 run(s) of flights" in result.stdout
    assert ready.execute("select count(*) from raw.flights").fetchone()[0] == 336_776
    # The loads ran ahead of the dbt steps, which coalesced: fewer builds than months, and the
    # last publish (tested in its audit schemas) holds every load of the backfill.
    builds, watermark = ready.execute(
        "select count(*), max(load_watermark) from dataops.dbt_publishes"
        " where audit = 'flights' and published_at >= %s",
        (before,),
    ).fetchone()
    newest = ready.execute(
        "select max(id), count(*) filter (where finished_at >= %s)"
        " from dataops.load_audit where pipeline = 'flights'",
        (before,),
    ).fetchone()
    assert newest[1] == 12  # every month loaded
    assert 1 <= builds < 12 and watermark == newest[0], (builds, watermark, newest)
    # The dbt step ran in its container too: the staging view sees every row.
    count = ready.execute(
        "select count(*) from analytics_staging.stg_nycflights__flights"
    ).fetchone()
    assert count is not None and count[0] == 336_776
    # One Airflow backfill (the Backfills tab), every run noting its release.
    with dev_airflow(ready_secrets()) as client:
        backfills = client.json("GET", "/backfills", params={"dag_id": "flights"})["backfills"]
        latest = max(backfills, key=lambda b: b["id"])
        assert latest["from_date"].startswith("2013-01-01")
        assert latest["to_date"].startswith("2013-12-01")
        runs = client.json(
            "GET",
            "/dags/flights/dagRuns",
            params={"logical_date_gte": "2013-01-01T00:00:00Z", "limit": 100},
        )["dag_runs"]
        assert len(runs) >= 12
        assert all("on release " in (run.get("note") or "") for run in runs)
    # Another backfill straight after: Airflow closes the year's only on a 30 s timer, so this
    # one waits for that (or finds it closed) instead of failing with Airflow's 409.
    again = run_dataops(
        "run", "flights", "--env", "dev", "--from", "2013-11-01", "--to", "2013-12-31"
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "success: 2 run(s) of flights" in again.stdout


def dev_airflow(secrets: dict[str, str]) -> AirflowClient:
    return AirflowClient("http://127.0.0.1:8080", "admin", secrets["DATAOPS_AIRFLOW_DEV_PASSWORD"])


def test_a_run_with_no_logical_date_works_instead_of_failing_its_templates(
    ready: psycopg.Connection,
) -> None:
    """Airflow 3 lets a run be triggered with no logical date (API, CLI, the UI's trigger
    form): it runs the last complete interval of the schedule, and says so in the task log."""
    run_id = f"no_logical_date_{uuid.uuid4().hex[:8]}"
    with dev_airflow(ready_secrets()) as client:
        client.json(
            "POST",
            "/dags/airlines/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "note": "test"},
        )
        deadline = time.monotonic() + 600
        while (state := client.run_state("airlines", run_id)) not in ("success", "failed"):
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(3)
        tasks = client.task_instances("airlines", run_id)
        assert state == "success", [(t["task_id"], t["state"]) for t in tasks]
        assert {t["task_id"]: t["try_number"] for t in tasks} == {
            "extract": 1,
            "load": 1,
            "dbt": 1,
        }  # no retried template error
        log = client.task_log("airlines", run_id, "extract", 1)
        assert "this run has no logical date" in log


def test_marts_match_numbers_computed_from_the_raw_csv_files(ready: psycopg.Connection) -> None:
    # Independently of SQL and dbt: straight from the delivered files.
    ua_january = {"scheduled": 0, "cancelled": 0, "on_time": 0}
    ewr_july_delayed = 0
    total = 0
    for path in sorted((INCOMING / "flights").glob("2013-*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                total += 1
                cancelled = row["dep_time"] == "NA"
                if row["carrier"] == "UA" and row["month"] == "1":
                    ua_january["scheduled"] += 1
                    ua_january["cancelled"] += cancelled
                    on_time = (
                        not cancelled and row["arr_delay"] != "NA" and int(row["arr_delay"]) <= 15
                    )
                    ua_january["on_time"] += on_time
                if (
                    row["origin"] == "EWR"
                    and row["month"] == "7"
                    and not cancelled
                    and int(row["dep_delay"]) > 15
                ):
                    ewr_july_delayed += 1
    performance = ready.execute(
        "select scheduled_flights, cancelled_flights, on_time_flights, on_time_rate "
        "from analytics_marts.carrier_monthly_performance "
        "where carrier_code = 'UA' and departure_month = '2013-01-01'"
    ).fetchone()
    assert performance is not None
    assert performance[:3] == (
        ua_january["scheduled"],
        ua_january["cancelled"],
        ua_january["on_time"],
    )
    expected_rate = ua_january["on_time"] / (ua_january["scheduled"] - ua_january["cancelled"])
    assert float(performance[3]) == pytest.approx(expected_rate, abs=0.0001)
    delayed = ready.execute(
        "select delayed_departures from analytics_marts.airport_delay_causes "
        "where origin_airport_code = 'EWR' and departure_month = '2013-07-01'"
    ).fetchone()
    assert delayed == (ewr_july_delayed,)
    flights = ready.execute(
        "select sum(scheduled_flights) from analytics_marts.weather_impact"
    ).fetchone()
    assert flights == (total,) and total == 336_776


def test_running_an_interval_twice_gives_identical_tables(ready: psycopg.Connection) -> None:
    first = run_dataops("run", "flights", "--env", "dev", "--date", "2013-03-10")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    once = state_of(ready, "raw.flights", "month = 3")
    audits = ready.execute(
        "select count(*) from dataops.load_audit where pipeline = 'flights' "
        "and interval_start = '2013-03-01T00:00:00Z'"
    ).fetchone()[0]
    second = run_dataops("run", "flights", "--env", "dev", "--date", "2013-03-10")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "re-running flights" in second.stdout
    assert state_of(ready, "raw.flights", "month = 3") == once
    assert once[0] == 28834
    audits_after = ready.execute(
        "select count(*) from dataops.load_audit where pipeline = 'flights' "
        "and interval_start = '2013-03-01T00:00:00Z'"
    ).fetchone()[0]
    assert audits_after == audits + 1  # it really loaded again


def test_bad_rows_fail_the_quality_gate_and_leave_the_published_marts_unchanged(
    ready: psycopg.Connection,
) -> None:
    """Rows with a carrier no airline has: dbt's relationships test fails in the audit schema,
    the run fails without retries, and readers keep the marts of the last good build."""
    good = run_dataops("run", "flights", "--env", "dev", "--date", "2013-06-01")
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    marts = ("analytics_marts.carrier_monthly_performance", "analytics_marts.fct_flights")
    published = {table: state_of(ready, table) for table in marts}

    month = INCOMING / "flights" / "2013-06.csv"
    original = month.read_bytes()
    lines = original.decode().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    carrier = header.index("carrier")
    bad = []
    for line in lines[1:101]:  # 100 flights of an airline that does not exist
        fields = line.rstrip("\n").split(",")
        fields[carrier] = "ZZ"
        bad.append(",".join(fields) + "\n")
    month.write_text("".join([lines[0], *bad, *lines[101:]]))
    try:
        result = run_dataops("run", "flights", "--env", "dev", "--date", "2013-06-01")
    finally:
        month.write_bytes(original)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "relationships_stg_nycflights__flights_carrier_code" in output, output[-3000:]
    assert "nothing was published" in output
    assert "the quality gate" in output  # failed for good: no retry of the same bad data
    # The failing test is named in the task's failure message itself (the UI shows it).
    assert "(the quality gate): test.flights.relationships_stg_nycflights__flights" in output
    # The fault really happened: the rejected build holds the bad rows.
    rejected = ready.execute(
        "select count(*) from analytics_staging__audit_flights.stg_nycflights__flights"
        " where carrier_code = 'ZZ'"
    ).fetchone()[0]
    assert rejected == 100
    # The failed build recorded no publish: no later run may take June's bad load as published.
    assert (
        ready.execute(
            "select count(*) from dataops.dbt_publishes where load_watermark >="
            " (select max(id) from dataops.load_audit where pipeline = 'flights')"
        ).fetchone()[0]
        == 0
    )
    failing_run_is_readable_in_the_ui()
    # The tests read only the rows loaded since the last publish (dbt_project's `where`), and
    # June's rejected load is one of them for July too: a later month cannot publish June's.
    later = run_dataops("run", "flights", "--env", "dev", "--date", "2013-07-01")
    assert later.returncode == 1, later.stdout[-2000:] + later.stderr[-2000:]
    assert "relationships_stg_nycflights__flights_carrier_code" in later.stdout + later.stderr
    for table in marts:
        assert state_of(ready, table) == published[table], table
    assert (
        ready.execute(
            "select count(*) from analytics_marts.carrier_monthly_performance"
            " where carrier_code = 'ZZ'"
        ).fetchone()[0]
        == 0
    )

    repaired = run_dataops("run", "flights", "--env", "dev", "--date", "2013-06-01")
    assert repaired.returncode == 0, repaired.stdout[-2000:] + repaired.stderr[-2000:]
    for table in marts:
        assert state_of(ready, table) == published[table], table
    leftover = ready.execute(
        "select count(*) from pg_namespace where nspname like '%\\_\\_audit\\_flights'"
    ).fetchone()[0]
    assert leftover == 0


def failing_run_is_readable_in_the_ui() -> None:
    """The failed dbt step of June 2013: its "dbt results" link opens the plugin's page of
    every model and test with its status, and the container's stderr is logged at WARNING
    while its stdout (dbt's own output) is at INFO."""
    with dev_airflow(ready_secrets()) as client:
        run_id = client.run_for_interval("flights", datetime(2013, 6, 1, tzinfo=UTC))
        assert run_id
        base = f"/dags/flights/dagRuns/{quote(run_id, safe='')}/taskInstances/dbt"
        links = client.json("GET", f"{base}/links")
        url = links["extra_links"]["dbt results"]
        assert url.startswith("/dataops/dbt/flights/"), links
        auth = client._auth()
        page = httpx.get(f"{client.url}{url}", headers={**auth, "Accept": "application/json"})
        assert page.status_code == 200, page.text[:500]
        results = {n["unique_id"]: n["status"] for n in page.json()["results"]}
        failed = [u for u, status in results.items() if status == "fail"]
        assert failed and all("relationships_stg_nycflights__flights" in u for u in failed)
        assert any(u.startswith("model.") and s == "success" for u, s in results.items())
        html = httpx.get(f"{client.url}{url}", headers=auth)
        assert "relationships_stg_nycflights__flights" in html.text and 'class="fail"' in html.text
        assert httpx.get(f"{client.url}{url}").status_code == 401  # the plugin's auth

        tries = [t for t in client.task_instances("flights", run_id) if t["task_id"] == "dbt"]
        events = client.request(
            "GET",
            f"{base}/logs/{tries[0]['try_number']}",
            params={"full_content": "true"},
        ).json()["content"]
        levels = {}
        for event in events:
            if isinstance(event, dict):
                levels.setdefault(str(event.get("event", "")).strip(), event.get("level"))
        stderr = [e for e in levels if e.startswith("dbt build failed: nothing was published")]
        assert stderr and levels[stderr[0]] == "warning", stderr
        stdout = [e for e in levels if e.startswith("+ ") and " build --select " in e]
        assert stdout and levels[stdout[0]] == "info", stdout
        # dbt ran on the manifest baked into the image: no parse of the project in the task.
        assert "(baked manifest: no parse)" in stdout[0]
        # ... and on the Jinja code compiled into it (dataops.patches.dbt.jinja_cache).
        baked_code = re.search(r"\(baked Jinja code: (\d+) templates\)", stdout[0])
        assert baked_code and int(baked_code.group(1)) > 400, stdout[0]
        assert not [e for e in levels if "Starting full parse" in e or "partial pars" in e]


def test_a_failing_container_fails_the_run_with_its_error(ready: psycopg.Connection) -> None:
    planes = INCOMING / "reference" / "planes.csv"
    hidden = planes.with_suffix(".hidden")
    planes.rename(hidden)
    try:
        result = run_dataops("run", "planes", "--env", "dev", "--date", "2013-01-05")
    finally:
        hidden.rename(planes)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "no file reference/planes.csv in the drop" in result.stderr
    assert "1 of 1 run(s) of planes failed" in result.stderr


def test_a_container_left_by_a_killed_try_does_not_block_the_retry(
    ready: psycopg.Connection,
) -> None:
    name = "dataops-dev-airlines-extract-20130107T000000"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    orphan = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "dataops/base:bookworm",
            "sleep",
            "600",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert orphan.returncode == 0, orphan.stderr
    result = run_dataops("run", "airlines", "--env", "dev", "--date", "2013-01-07")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""
    assert ready.execute("select count(*) from raw.airlines").fetchone()[0] == 16


def test_run_of_an_unknown_pipeline_is_a_usage_error(ready: psycopg.Connection) -> None:
    result = run_dataops("run", "nope", "--env", "dev")
    assert result.returncode == 2
    assert "no pipeline 'nope'" in result.stderr


def test_data_dir_is_shared_with_the_containers(ready: psycopg.Connection) -> None:
    staged = Path(ROOT / ".dataops" / "data" / "dev" / "staged" / "flights" / "20130301T000000")
    assert (staged / "manifest.json").exists() and (staged / "data.csv").exists()


def test_docs_site_documents_the_marts(ready: psycopg.Connection) -> None:
    import json

    result = run_dataops("docs", "--env", "dev")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    site = ROOT / ".dataops" / "dbt-docs" / "dev"
    assert (site / "index.html").stat().st_size > 100_000
    catalog = json.loads((site / "catalog.json").read_text())
    assert "model.flights.carrier_monthly_performance" in catalog["nodes"]
    manifest = json.loads((site / "manifest.json").read_text())
    description = manifest["nodes"]["model.flights.carrier_monthly_performance"]["description"]
    assert "Grain: one row per carrier and departure month" in description


def test_loads_and_dbt_runs_leave_no_schema_drift(ready: psycopg.Connection) -> None:
    """The raw tables come from migrations; loads (partition swaps, merges) and dbt (its own
    schemas) change no managed object, so `migrate status` shows no drift after them."""
    result = run_dataops("migrate", "status", "--env", "dev", "--json")
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads(result.stdout)
    assert report["drift"] == []
    assert report["pending"] == [] and report["problems"] == []
    assert report["history"]  # the migrations were applied (or the warehouse baselined)
