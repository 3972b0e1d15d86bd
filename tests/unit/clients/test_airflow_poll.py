"""`AirflowClient.poll`: many runs' states and task instances in a few paged requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from dataops.clients.airflow_api import AirflowClient

JAN = datetime(2024, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return JAN + timedelta(days=n)


class FakeAirflow:
    """Airflow 3.3's listings, 100 items a page at most: `orders_daily` has 130 runs (ours are
    days 0..119, day 120..129 someone else's), `refunds` has one run whose id is also one of
    orders_daily's (ids are unique per DAG only)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.runs = {
            "orders_daily": [
                {"dag_run_id": f"scheduled__{n}", "logical_date": day(n), "state": "running"}
                for n in range(130)
            ],
            "refunds": [{"dag_run_id": "scheduled__3", "logical_date": day(3), "state": "failed"}],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        self.requests.append(f"{request.method} {path}")
        if request.method == "GET" and path.endswith("/dagRuns"):
            dag_id = path.split("/")[4]
            params = request.url.params
            low = datetime.fromisoformat(params["logical_date_gte"])
            high = datetime.fromisoformat(params["logical_date_lte"])
            found = [r for r in self.runs[dag_id] if low <= r["logical_date"] <= high]
            return self.page(found, int(params["offset"]), int(params["limit"]), "dag_runs")
        if path == "/api/v2/dags/~/dagRuns/~/taskInstances/list":
            body = json.loads(request.content)
            tis = [
                {"dag_id": dag_id, "dag_run_id": r["dag_run_id"], "task_id": task, "state": None}
                for dag_id, runs in self.runs.items()
                if dag_id in body["dag_ids"]
                for r in runs
                if r["dag_run_id"] in body["dag_run_ids"]
                for task in ("extract", "load")
            ]
            return self.page(tis, body["page_offset"], body["page_limit"], "task_instances")
        return httpx.Response(404, json={"detail": path})

    @staticmethod
    def page(items: list[dict[str, object]], offset: int, limit: int, field: str) -> httpx.Response:
        shown = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.items()}
            for item in items[offset : offset + min(limit, 100)]
        ]
        return httpx.Response(200, json={field: shown, "total_entries": len(items)})


def test_many_runs_of_two_dags_come_in_a_few_paged_requests() -> None:
    fake = FakeAirflow()
    client = AirflowClient("http://airflow.test", "admin", "pw")
    client._client = httpx.Client(base_url=client.url, transport=httpx.MockTransport(fake))
    ours = {
        "orders_daily": {f"scheduled__{n}": day(n) for n in range(120)},
        "refunds": {"scheduled__3": day(3)},
    }
    with client:
        states, tis = client.poll(ours)
    assert len(states) == 121
    assert states[("refunds", "scheduled__3")] == "failed"
    assert states[("orders_daily", "scheduled__3")] == "running"
    assert ("orders_daily", "scheduled__125") not in states  # not one of ours
    assert {len(found) for found in tis.values()} == {2} and len(tis) == 121
    assert [ti["dag_id"] for ti in tis[("refunds", "scheduled__3")]] == ["refunds", "refunds"]
    # 2 pages of orders_daily's runs, 1 of refunds', 3 pages of 242 task instances: 6 requests
    # where polling run by run takes 242.
    assert fake.requests == [
        "GET /api/v2/dags/orders_daily/dagRuns",
        "GET /api/v2/dags/orders_daily/dagRuns",
        "GET /api/v2/dags/refunds/dagRuns",
        *["POST /api/v2/dags/~/dagRuns/~/taskInstances/list"] * 3,
    ]
