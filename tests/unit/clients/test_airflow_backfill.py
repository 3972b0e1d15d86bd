"""`AirflowClient.backfill` when Airflow still has the DAG's previous backfill open (409)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from dataops.clients.airflow_api import AirflowClient
from dataops.errors import DataOpsError

FIRST, LAST = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 2, 1, tzinfo=UTC)


class FakeAirflow:
    """Answers like Airflow 3.3's API: backfill 7 of `orders_daily` is open until `closes_after`
    more POSTs have been refused; `busy` runs of it are still queued or running."""

    def __init__(self, closes_after: int, busy: int = 0) -> None:
        self.closes_after = closes_after
        self.busy = busy
        self.posts: list[dict[str, object]] = []
        self.run_queries: list[httpx.QueryParams] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        if path == "/api/v2/backfills" and request.method == "POST":
            self.posts.append(json.loads(request.content))
            if len(self.posts) <= self.closes_after:
                detail = "There is already a running backfill for dag orders_daily"
                return httpx.Response(409, json={"detail": detail})
            return httpx.Response(200, json={"id": 8, "dag_id": "orders_daily"})
        if path == "/api/v2/backfills":
            params = request.url.params
            assert (params["dag_id"], params["order_by"]) == ("orders_daily", "-id")  # newest first
            closed = len(self.posts) > self.closes_after
            backfills = [
                {"id": 6, "completed_at": "2026-12-01T10:00:00Z"},
                {"id": 7, "completed_at": "2026-12-03T10:00:00Z" if closed else None},
            ]
            return httpx.Response(200, json={"backfills": backfills, "total_entries": 2})
        if path == "/api/v2/dags/orders_daily/dagRuns":
            self.run_queries.append(request.url.params)
            return httpx.Response(200, json={"dag_runs": [], "total_entries": self.busy})
        return httpx.Response(404, json={"detail": f"unexpected {request.method} {path}"})


def client_of(fake: FakeAirflow) -> AirflowClient:
    client = AirflowClient("http://airflow.test", "admin", "pw")
    client._client = httpx.Client(base_url=client.url, transport=httpx.MockTransport(fake))
    return client


def call(fake: FakeAirflow, **kwargs: object) -> tuple[dict[str, object], list[str], list[float]]:
    said: list[str] = []
    slept: list[float] = []
    sleep: Callable[[float], None] = slept.append
    with client_of(fake) as client:
        made = client.backfill(
            "orders_daily", FIRST, LAST, 4, report=said.append, sleep=sleep, **kwargs
        )
    return made, said, slept


def test_a_backfill_right_after_the_last_one_finished_waits_for_airflow_to_close_it() -> None:
    fake = FakeAirflow(closes_after=3)
    made, said, slept = call(fake)
    assert made["id"] == 8
    assert len(fake.posts) == 4 and slept == [2, 2, 2]  # refused three times, then created
    assert fake.posts[-1]["from_date"] == FIRST.isoformat()
    assert said == [
        "waiting for Airflow to close backfill 7 of orders_daily: its runs have finished, "
        "and the scheduler closes backfills every 30 s"
    ]  # said once, naming the open backfill
    query = fake.run_queries[0]
    assert query["run_type"] == "backfill"
    assert query.get_list("state") == ["queued", "running"]


def test_no_open_backfill_means_no_wait() -> None:
    made, said, slept = call(FakeAirflow(closes_after=0))
    assert made["id"] == 8 and said == [] and slept == []


def test_a_backfill_whose_runs_are_still_going_is_refused_at_once() -> None:
    fake = FakeAirflow(closes_after=100, busy=3)
    with pytest.raises(DataOpsError) as caught:
        call(fake)
    assert "backfill 7 of orders_daily is still running (3 run(s) queued or running)" in str(
        caught.value
    )
    assert "Backfills tab" in (caught.value.instruction or "")
    assert len(fake.posts) == 1  # nothing retried, nothing created


def test_a_backfill_airflow_never_closes_gives_up_with_the_scheduler_named() -> None:
    fake = FakeAirflow(closes_after=10_000)
    with pytest.raises(DataOpsError) as caught:
        call(fake, close_timeout=0.0)
    assert "Airflow has not closed backfill 7 of orders_daily 0s after its runs finished" in str(
        caught.value
    )
    assert "dataops status" in (caught.value.instruction or "")
    assert len(fake.posts) == 2  # the first refusal starts the clock, the second ends it


def test_another_refusal_is_reported_as_airflow_gave_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        return httpx.Response(422, json={"detail": "from_date must be before to_date"})

    client = AirflowClient("http://airflow.test", "admin", "pw")
    client._client = httpx.Client(base_url=client.url, transport=httpx.MockTransport(refuse))
    with pytest.raises(DataOpsError, match="Airflow answered 422 to POST /backfills"):
        client.backfill("orders_daily", LAST, FIRST, 4)
