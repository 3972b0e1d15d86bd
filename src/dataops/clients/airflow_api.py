"""A small client of Airflow 3's REST API (/api/v2): trigger a DAG run and follow it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from dataops.errors import DataOpsError, NotReadyError

FINISHED = {"success", "failed"}


@dataclass
class AirflowClient:
    url: str
    username: str
    password: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=self.timeout)
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            try:
                response = self._client.post(
                    "/auth/token", json={"username": self.username, "password": self.password}
                )
            except httpx.HTTPError as exc:
                raise NotReadyError(
                    f"Airflow at {self.url} does not answer ({type(exc).__name__})",
                    "dataops up   (then dataops status)",
                ) from None
            if response.status_code != 201:
                raise NotReadyError(
                    f"Airflow at {self.url} refused the login of {self.username!r} "
                    f"({response.status_code})",
                    "check the password variable named in dataops.yml (airflow.password_env)",
                )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            headers = {**self._auth(), **kwargs.pop("headers", {})}
            return self._client.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise NotReadyError(
                f"Airflow at {self.url} failed to answer {method} {path}: {type(exc).__name__}",
                "dataops status",
            ) from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return _checked(self.request(method, path, **kwargs), method, path)

    # -- DAGs ----------------------------------------------------------------------------------
    def import_error(self, filename_part: str) -> str | None:
        errors = self.json("GET", "/importErrors", params={"limit": 100})["import_errors"]
        for error in errors:
            if filename_part in error["filename"]:
                return str(error["stack_trace"])
        return None

    def wait_for_dag(
        self, dag_id: str, timeout: float, report: Callable[[str], None]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        said = False
        while True:
            response = self.request("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return dict(response.json())
            error = self.import_error(f"pipeline_{dag_id}.py")
            if error:
                raise DataOpsError(
                    f"DAG {dag_id} does not load: {error.strip().splitlines()[-1]}",
                    f"fix dags/pipelines/{dag_id}.yml (`dataops validate` shows every problem)",
                )
            if time.monotonic() > deadline:
                raise DataOpsError(
                    f"no DAG {dag_id!r} in Airflow after {timeout:.0f}s",
                    f"is there a dags/pipelines/{dag_id}.yml? `dataops validate` checks the specs",
                )
            if not said:
                report(f"waiting for Airflow to parse DAG {dag_id}")
                said = True
            time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.json("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, start: datetime, end: datetime, note: str) -> dict[str, Any]:
        run_id = f"dataops__{start:%Y%m%dT%H%M%S}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        body = {
            "dag_run_id": run_id,
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "note": note,
        }
        return dict(self.json("POST", f"/dags/{dag_id}/dagRuns", json=body))

    def backfill(
        self,
        dag_id: str,
        first: datetime,
        last: datetime,
        max_active_runs: int,
        report: Callable[[str], None] = lambda _message: None,
        sleep: Callable[[float], None] = time.sleep,
        close_timeout: float = 90.0,
    ) -> dict[str, Any]:
        """An Airflow backfill of the runs whose logical dates are `first`..`last` (an interval
        that has a run already is run again), on the DAG's latest version.

        Airflow allows one open backfill per DAG, and its scheduler closes a backfill only on a
        30 s timer after the last run ends: a backfill asked for right after the previous one
        finished waits for that (saying so), one whose runs are still going is refused."""
        body = {
            "dag_id": dag_id,
            "from_date": first.isoformat(),
            "to_date": last.isoformat(),
            "reprocess_behavior": "completed",
            "max_active_runs": max_active_runs,
            "run_on_latest_version": True,
        }
        deadline: float | None = None
        while (response := self.request("POST", "/backfills", json=body)).status_code == 409:
            open_ids = [
                str(b["id"])
                for b in self.json(
                    "GET", "/backfills", params={"dag_id": dag_id, "order_by": "-id", "limit": 100}
                )["backfills"]
                if b.get("completed_at") is None
            ]
            busy = self.json(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={"run_type": "backfill", "state": ["queued", "running"], "limit": 1},
            )["total_entries"]
            named = f"backfill {', '.join(open_ids) or '?'} of {dag_id}"
            if busy:
                raise DataOpsError(
                    f"{named} is still running ({busy} run(s) queued or running)",
                    "wait for it to finish, or cancel it in the Backfills tab of the web UI, "
                    "then run this again",
                )
            if deadline is None:
                deadline = time.monotonic() + close_timeout
                report(
                    f"waiting for Airflow to close {named}: its runs have finished, and the "
                    "scheduler closes backfills every 30 s"
                )
            elif time.monotonic() > deadline:
                raise DataOpsError(
                    f"Airflow has not closed {named} {close_timeout:.0f}s after its runs finished",
                    "is the scheduler running? dataops status",
                )
            sleep(2)
        return dict(_checked(response, "POST", "/backfills"))

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        self.json("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"note": note})

    def run_for_interval(self, dag_id: str, start: datetime) -> str | None:
        """The id of the run whose logical date is `start` (Airflow allows one per date)."""
        params = {"logical_date_gte": start.isoformat(), "logical_date_lte": start.isoformat()}
        runs = self.json("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]
        return str(runs[0]["dag_run_id"]) if runs else None

    def clear(self, dag_id: str, run_id: str) -> None:
        """Re-run every task of an existing run (Airflow's own way to run an interval again),
        on the DAG's latest version: the release the deployment runs now."""
        self.json(
            "POST",
            f"/dags/{dag_id}/dagRuns/{run_id}/clear",
            json={"dry_run": False, "run_on_latest_version": True},
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.dag_run(dag_id, run_id)["state"])

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG the deployment serves now (not the stale ones)."""
        data = self.json("GET", "/dags", params={"limit": 1000, "exclude_stale": True})
        return [d for d in data["dags"] if not d.get("is_stale")]

    def scheduler_health(self) -> str:
        """The scheduler's status in the deployment's health endpoint (`healthy`, `unhealthy`,
        or `unknown` when the endpoint does not answer)."""
        try:
            body = self._client.get("/api/v2/monitor/health", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return "unknown"
        return str((body.get("scheduler") or {}).get("status") or "unknown")

    def poll(
        self, runs: dict[str, dict[str, datetime]]
    ) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], list[dict[str, Any]]]]:
        """The state and task instances of many runs (`{dag_id: {run_id: logical date}}`) in one
        request per DAG plus one for all their task instances, instead of two per run: a
        12-month backfill polled every 2 s cost the API server 24 requests a poll.

        Returns ({(dag_id, run_id): state}, {(dag_id, run_id): [task instance, ...]}); a run
        Airflow does not list is left out of the states."""
        states: dict[tuple[str, str], str] = {}
        for dag_id, dates in runs.items():
            params = {
                "logical_date_gte": min(dates.values()).isoformat(),
                "logical_date_lte": max(dates.values()).isoformat(),
            }
            for run in self._pages("GET", f"/dags/{dag_id}/dagRuns", "dag_runs", params=params):
                if run["dag_run_id"] in dates:
                    states[(dag_id, str(run["dag_run_id"]))] = str(run["state"])
        body = {
            "dag_ids": sorted(runs),
            "dag_run_ids": sorted({run_id for dates in runs.values() for run_id in dates}),
        }
        tis: dict[tuple[str, str], list[dict[str, Any]]] = {}
        path = "/dags/~/dagRuns/~/taskInstances/list"
        for ti in self._pages("POST", path, "task_instances", json=body):
            key = (str(ti["dag_id"]), str(ti["dag_run_id"]))
            if key[1] in runs.get(key[0], {}):  # run ids are unique per DAG only
                tis.setdefault(key, []).append(ti)
        return states, tis

    def _pages(self, method: str, path: str, field: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paged listing (Airflow answers at most `maximum_page_limit`, 100 by
        default, per request): `limit`/`offset` in the query of a GET, `page_limit`/
        `page_offset` in the body of a POST."""
        items: list[dict[str, Any]] = []
        while True:
            if method == "GET":
                kwargs["params"] = {**kwargs.get("params", {}), "limit": 100, "offset": len(items)}
            else:
                kwargs["json"] = {**kwargs["json"], "page_limit": 100, "page_offset": len(items)}
            data = self.json(method, path, **kwargs)
            page = list(data[field])
            items += page
            if not page or len(items) >= int(data.get("total_entries", 0)):
                return items

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(data["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        response = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        if response.status_code != 200:
            return f"(log unavailable: {response.status_code})"
        content = response.json().get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(render_log_event(event) for event in content)


def render_log_event(event: object) -> str:
    """One line of a structured Airflow 3 task log: its event, plus the exception if any."""
    if not isinstance(event, dict):
        return str(event)
    text = str(event.get("event", ""))
    for error in event.get("error_detail") or []:
        if isinstance(error, dict):
            text += f"\n  {error.get('exc_type')}: {error.get('exc_value')}"
    return text


def _checked(response: httpx.Response, method: str, path: str) -> Any:
    """The response's JSON, or a DataOpsError with Airflow's status and answer."""
    if response.status_code >= 400:
        raise DataOpsError(
            f"Airflow answered {response.status_code} to {method} {path}: {response.text[:500]}"
        )
    return response.json()
