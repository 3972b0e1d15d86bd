"""`dataops run` follows its runs and stops waiting, with a clear error, when the deployment's
scheduler is gone (a run would stay queued forever); a slow but healthy scheduler is waited for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dataops.errors import DataOpsError, NotReadyError
from dataops.release import runs
from dataops.release.runs import PipelineRunner, StartedRun


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeAirflow:
    """A deployment whose run stays queued; its scheduler's health is scripted."""

    def __init__(self, health: list[str], finish_after: int | None = None) -> None:
        self.health, self.polls, self.finish_after = health, 0, finish_after
        self.asked_for: list[dict[str, dict[str, datetime]]] = []

    def poll(
        self, runs: dict[str, dict[str, datetime]]
    ) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], list[dict[str, Any]]]]:
        """What AirflowClient.poll answers, from this fake's per-run answers."""
        self.asked_for.append(runs)
        keys = [(dag_id, run_id) for dag_id, dates in runs.items() for run_id in dates]
        return (
            {key: self.run_state(*key) for key in keys},
            {key: self.task_instances(*key) for key in keys},
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return [{"task_id": "extract", "state": None}]

    def run_state(self, dag_id: str, run_id: str) -> str:
        self.polls += 1
        done = self.finish_after is not None and self.polls >= self.finish_after
        return "success" if done else "queued"

    def scheduler_health(self) -> str:
        return self.health.pop(0) if len(self.health) > 1 else self.health[0]


def runner(client: FakeAirflow) -> PipelineRunner:
    env = SimpleNamespace(name="dev")
    r = PipelineRunner(env, "flights", lambda _: None, "sha256:" + "a" * 64, Path("/x"))  # type: ignore[arg-type]
    r._client = client  # type: ignore[assignment]
    return r


RUN = StartedRun(
    "r1", datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 2, 1, tzinfo=UTC), False, "", ""
)


def test_a_dead_scheduler_stops_the_wait_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(runs.time, "monotonic", clock.monotonic)
    client = FakeAirflow(["unhealthy"])
    with pytest.raises(NotReadyError) as caught:
        runner(client).follow([RUN], 3600, lambda change: None, sleep=clock.sleep)
    assert "dev's Airflow scheduler is unhealthy: its runs cannot progress" in caught.value.reason
    assert "dataops up" in (caught.value.instruction or "")
    waited = clock.now - 1000.0
    assert runs.HEALTH_EVERY_SECONDS * runs.UNHEALTHY_CHECKS <= waited < 120  # not the timeout


def test_a_scheduler_that_recovers_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(runs.time, "monotonic", clock.monotonic)
    # Unhealthy three times (a restart), then healthy: the count starts again.
    client = FakeAirflow(["unhealthy"] * 3 + ["healthy"] * 3 + ["unhealthy"] * 3 + ["healthy"], 200)
    states = runner(client).follow([RUN], 3600, lambda change: None, sleep=clock.sleep)
    assert states == {"r1": "success"}


class TwoDags(FakeAirflow):
    """Two DAGs whose runs have the same run id (ids are per DAG); `planes` fails."""

    def __init__(self) -> None:
        super().__init__(["healthy"])
        self.asked: list[str] = []

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        self.asked.append(dag_id)
        return [{"task_id": "load", "state": "success" if dag_id == "airlines" else "failed"}]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return "success" if dag_id == "airlines" else "failed"


def test_several_pipelines_are_followed_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(runs.time, "monotonic", clock.monotonic)
    client = TwoDags()
    first, second = runner(client), runner(client)
    first.pipeline, second.pipeline = "airlines", "planes"
    changes: list[runs.TaskChange] = []
    states = runs.follow_all(
        [(first, [RUN]), (second, [RUN])], 3600, changes.append, sleep=clock.sleep
    )
    assert states == {("airlines", "r1"): "success", ("planes", "r1"): "failed"}
    assert [(c.label, c.state) for c in changes] == [("airlines", "success"), ("planes", "failed")]
    assert client.asked == ["airlines", "planes"]  # one pass polled both: no waiting in turn
    # ... in one poll of the deployment, which named both DAGs' runs with their logical dates
    assert client.asked_for == [{"airlines": {"r1": RUN.start}, "planes": {"r1": RUN.start}}]


def test_finished_runs_are_not_polled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(runs.time, "monotonic", clock.monotonic)

    class OneLate(FakeAirflow):
        def run_state(self, dag_id: str, run_id: str) -> str:
            self.polls += 1
            return "success" if run_id == "r1" or self.polls >= 4 else "running"

    client = OneLate(["healthy"])
    late = StartedRun("r2", RUN.end, datetime(2013, 3, 1, tzinfo=UTC), False, "", "")
    finished: list[tuple[str, str, str]] = []
    states = runs.follow_all(
        [(runner(client), [RUN, late])],
        3600,
        lambda change: None,
        sleep=clock.sleep,
        on_finished=lambda *done: finished.append(done),
    )
    assert states == {("flights", "r1"): "success", ("flights", "r2"): "success"}
    assert finished == [("flights", "r1", "success"), ("flights", "r2", "success")]  # once each
    assert [sorted(asked["flights"]) for asked in client.asked_for] == [
        ["r1", "r2"],
        ["r2"],
        ["r2"],
    ]


def test_a_run_the_listing_lacks_is_asked_for_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(runs.time, "monotonic", clock.monotonic)

    class Deleted(FakeAirflow):
        """The run was deleted in the UI after it was triggered: the listing no longer has it
        and its own address answers 404."""

        def poll(self, runs: dict[str, dict[str, datetime]]) -> tuple[dict, dict]:  # type: ignore[type-arg]
            self.asked_for.append(runs)
            return {}, {}

        def run_state(self, dag_id: str, run_id: str) -> str:
            raise DataOpsError(f"Airflow answered 404 to GET /dags/{dag_id}/dagRuns/{run_id}")

    with pytest.raises(DataOpsError, match="answered 404 to GET /dags/flights/dagRuns/r1"):
        runner(Deleted(["healthy"])).follow([RUN], 3600, lambda change: None, sleep=clock.sleep)
    assert clock.now == 1000.0  # at once, not at the timeout
