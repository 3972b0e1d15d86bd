"""A run with no logical date gets an interval before its templates render (Airflow 3 allows
such runs; our task templates need data_interval_start/end and ts_nodash)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from airflow.sdk import DAG

from dataops.airflow.operators import failed_tests, missing_interval


def test_a_monthly_run_with_no_logical_date_runs_the_last_complete_month() -> None:
    dag = DAG("monthly", schedule="@monthly", start_date=datetime(2013, 1, 1, tzinfo=UTC))
    after = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    context: dict = {"dag_run": SimpleNamespace(run_after=after), "data_interval_start": None}
    interval = missing_interval(context, dag)
    assert interval is not None
    assert (context["data_interval_start"], context["data_interval_end"]) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert context["ts_nodash"] == "20261201T103000"


def test_a_run_with_an_interval_is_left_alone() -> None:
    dag = DAG("unscheduled", schedule=None, start_date=datetime(2013, 1, 1, tzinfo=UTC))
    start = datetime(2013, 1, 1, tzinfo=UTC)
    context: dict = {"data_interval_start": start, "ts_nodash": "x"}
    assert missing_interval(context, dag) is None
    assert context == {"data_interval_start": start, "ts_nodash": "x"}


def test_the_failing_tests_are_read_from_the_container_output() -> None:
    lines = [
        b"dbt build failed: nothing was published",
        b"  fail: test.flights.relationships_x_carrier_code.1a2b: Got 100 results",
        "  fail: unit_test.flights.weather_buckets: actual differs",
        b"  fail: test.flights.relationships_x_carrier_code.1a2b: Got 100 results",
    ]
    assert failed_tests(lines) == [
        "test.flights.relationships_x_carrier_code.1a2b",
        "unit_test.flights.weather_buckets",
    ]
