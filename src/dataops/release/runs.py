"""DAG runs of a pipeline in an environment's Airflow: trigger (or re-run) every interval, follow
the runs task by task, and fetch the logs of what failed.

Services never print: every step is handed to a callback the CLI renders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dataops.clients.airflow_api import FINISHED, AirflowClient, render_log_event
from dataops.core.pipeline import PipelineSpec, load_spec
from dataops.core.progress import Report
from dataops.core.promotion import dag_tags, serves, short
from dataops.core.timespan import intervals
from dataops.errors import DataOpsError, ExitCode, NotReadyError
from dataops.project.environment import Environment

# A poll is one listing per DAG and one task-instance batch (`AirflowClient.poll`), whatever the
# number of runs, so once a second costs the API server little; a run's end is seen 0.5 s
# sooner on average than with 2 s.
POLL_SECONDS = 1.0
# How often `follow` asks the deployment's health endpoint, and after how many answers in a
# row without a healthy scheduler it stops waiting (Airflow reports a scheduler whose heartbeat
# is 30 s old as unhealthy): runs cannot progress without one.
HEALTH_EVERY_SECONDS = 15.0
UNHEALTHY_CHECKS = 4
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    start: datetime
    end: datetime
    rerun: bool  # the interval had a run already: its tasks were cleared
    url: str
    label: str  # the interval's date when there are several, else ""


@dataclass(frozen=True)
class TaskChange:
    seconds: float  # since following began
    label: str
    task_id: str
    state: str


@dataclass(frozen=True)
class FailedTask:
    run_id: str
    task_id: str
    try_number: int
    log_tail: str


class PipelineRunner:
    """Runs of one pipeline in `env`'s own Airflow deployment, through its REST API, on the
    release `env` runs: the spec (for the schedule) comes from that release's DAG code, and a
    run is started only once the deployment serves that release and says it is `env`'s."""

    def __init__(
        self, env: Environment, pipeline: str, report: Report, release_id: str, dags: Path
    ) -> None:
        self.env = env
        self.pipeline = pipeline
        self.report = report
        self.release_id = release_id
        self.spec_path = dags / "pipelines" / f"{pipeline}.yml"
        self._client: AirflowClient | None = None
        self._prepared = False

    @property
    def client(self) -> AirflowClient:
        if self._client is None:
            self._client = self.env.airflow()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def logs(self) -> Path:
        """Where the local Airflow writes this pipeline's task logs."""
        return self.env.airflow_home / "logs" / f"dag_id={self.pipeline}"

    def spec(self) -> PipelineSpec:
        if not self.spec_path.exists():
            raise DataOpsError(
                f"no pipeline {self.pipeline!r} in the release {self.env.name} runs "
                f"({short(self.release_id)} has no dags/pipelines/{self.pipeline}.yml)",
                "ls dags/pipelines/; a new pipeline runs once a release that has it is active",
                exit_code=ExitCode.USAGE,
            )
        return load_spec(self.spec_path)

    def check_deployment(self, dag: dict[str, Any], timeout: float = 60) -> None:
        """Refuse an Airflow that is not `env`'s own (its DAGs carry the tag env:<name>), and
        wait until it serves the release `env` runs."""
        tags = dag_tags(dag)
        if f"env:{self.env.name}" not in tags:
            other = sorted(t for t in tags if t.startswith("env:"))
            raise DataOpsError(
                f"the Airflow at {self.client.url} runs {', '.join(other) or 'no environment'}, "
                f"not env:{self.env.name}: refusing to run {self.pipeline} there",
                f"environments.{self.env.name}.airflow.url in dataops.yml must name "
                f"{self.env.name}'s own deployment",
                exit_code=ExitCode.USAGE,
            )
        deadline = time.monotonic() + timeout
        while not serves(dag, self.release_id):
            if time.monotonic() > deadline:
                raise NotReadyError(
                    f"{self.env.name}'s Airflow serves {self.pipeline} from release "
                    f"{short(str(dag.get('bundle_version')))}, not the active "
                    f"{short(self.release_id)}",
                    f"read {self.env.airflow_home}/logs/dag_processor",
                )
            self.report(
                f"waiting for {self.env.name}'s Airflow to load release {short(self.release_id)}"
            )
            time.sleep(1)
            dag = self.client.json("GET", f"/dags/{self.pipeline}")

    def intervals(self, first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
        """The pipeline's schedule intervals from the one containing `first` to `last`'s."""
        return intervals(self.spec().schedule, first, last)

    def prepare(self, dag_timeout: float = 120) -> None:
        """Wait for the DAG, check the deployment is env's and serves its release, unpause the
        DAG: everything `start` needs before it triggers anything (done once)."""
        if self._prepared:
            return
        dag = self.client.wait_for_dag(self.pipeline, dag_timeout, self.report)
        self.check_deployment(dag)
        if dag.get("is_paused"):
            self.report(f"unpausing DAG {self.pipeline}")
            self.client.set_paused(self.pipeline, False)
        self._prepared = True

    def start(
        self,
        spans: list[tuple[datetime, datetime]],
        on_start: Callable[[StartedRun], None],
        dag_timeout: float = 120,
    ) -> list[StartedRun]:
        """Trigger a run for each interval (or clear the one it has); unpause the DAG."""
        client = self.client
        self.prepare(dag_timeout)
        note = run_note(self.release_id)
        existing = {start: client.run_for_interval(self.pipeline, start) for start, _ in spans}
        runs: dict[datetime, str] = {}
        if len(spans) > 1:
            # Airflow's own backfill: the Backfills tab, one backfill id, the interval view.
            backfill = client.backfill(
                self.pipeline,
                spans[0][0],
                spans[-1][0],
                self.spec().max_active_runs,
                report=self.report,
            )
            self.report(f"backfill {backfill.get('id')} of {len(spans)} interval(s) created")
            for start, _ in spans:
                run_id = client.run_for_interval(self.pipeline, start)
                if run_id is None:
                    raise DataOpsError(
                        f"the backfill of {self.pipeline} made no run for {start:%Y-%m-%d}",
                        "look at the Backfills tab of the web UI; a run of that interval may "
                        "be running already",
                    )
                runs[start] = run_id
                client.set_note(self.pipeline, run_id, note)
        else:
            start, end = spans[0]
            found = existing[start]
            if found:
                client.clear(self.pipeline, found)
                client.set_note(self.pipeline, found, note)
                runs[start] = found
            else:
                runs[start] = client.trigger(self.pipeline, start, end, note)["dag_run_id"]
        started = []
        for start, end in spans:
            run_id = runs[start]
            run = StartedRun(
                run_id,
                start,
                end,
                rerun=existing[start] is not None,
                url=f"{client.url}/dags/{self.pipeline}/runs/{run_id}",
                label=f"{start:%Y-%m-%d}" if len(spans) > 1 else "",
            )
            on_start(run)
            started.append(run)
        return started

    def follow(
        self,
        runs: list[StartedRun],
        timeout: float,
        on_change: Callable[[TaskChange], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, str]:
        """Poll until every run finished; each task state change goes to `on_change`.
        Returns {run_id: final state}."""
        states = follow_all([(self, runs)], timeout, on_change, sleep)
        return {run_id: state for (_, run_id), state in states.items()}

    def failed_tasks(self, run_ids: list[str]) -> list[FailedTask]:
        """The failed tasks of these runs with the tail of each one's log (from the API, else
        from the local log file)."""
        found = []
        for run_id in run_ids:
            for ti in self.client.task_instances(self.pipeline, run_id):
                if ti.get("state") != "failed" or not ti.get("try_number"):
                    continue
                attempt = int(ti["try_number"])
                text = self.client.task_log(self.pipeline, run_id, ti["task_id"], attempt)
                local = self.logs / f"run_id={run_id}" / f"task_id={ti['task_id']}"
                local = local / f"attempt={attempt}.log"
                if text.startswith("(log unavailable") and local.exists():
                    text = render_log_file(local.read_text())
                tail = "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])
                found.append(FailedTask(run_id, ti["task_id"], attempt, tail))
        return found


def follow_all(
    groups: list[tuple[PipelineRunner, list[StartedRun]]],
    timeout: float,
    on_change: Callable[[TaskChange], None],
    sleep: Callable[[float], None] = time.sleep,
    on_finished: Callable[[str, str, str], None] = lambda _pipeline, _run_id, _state: None,
) -> dict[tuple[str, str], str]:
    """Follow the runs of one or more pipelines of one environment side by side, polling the
    unfinished runs every POLL_SECONDS (all in one `AirflowClient.poll`), until all finished.
    With several pipelines, a change's label starts with its pipeline; `on_finished(pipeline,
    run_id, state)` is called once per run as it finishes. Returns
    {(pipeline, run_id): final state} (run ids are only unique within a pipeline)."""
    several = len(groups) > 1
    first = groups[0][0]
    client = first.client  # one environment: one deployment answers for every group
    seen: dict[tuple[str, str, str], str] = {}
    states = {(r.pipeline, run.run_id): "queued" for r, runs in groups for run in runs}
    began = time.monotonic()
    next_health, unhealthy = began + HEALTH_EVERY_SECONDS, 0
    while True:
        pending = [
            (runner, run)
            for runner, runs in groups
            for run in runs
            if states[(runner.pipeline, run.run_id)] not in FINISHED
        ]
        asked: dict[str, dict[str, datetime]] = {}
        for runner, run in pending:
            asked.setdefault(runner.pipeline, {})[run.run_id] = run.start
        now_states, tis = client.poll(asked)
        for runner, run in pending:
            key = (runner.pipeline, run.run_id)
            for ti in tis.get(key, []):
                current = str(ti.get("state") or "none")
                if seen.get((*key, ti["task_id"])) != current:
                    seen[(*key, ti["task_id"])] = current
                    elapsed = time.monotonic() - began
                    label = f"{runner.pipeline} {run.label}".strip() if several else run.label
                    on_change(TaskChange(elapsed, label, ti["task_id"], current))
            # A run the listing lacks (deleted meanwhile) is asked for by id: Airflow's 404
            # ends the wait with its answer instead of at the timeout.
            states[key] = now_states.get(key) or client.run_state(runner.pipeline, run.run_id)
            if states[key] in FINISHED:
                on_finished(runner.pipeline, run.run_id, states[key])
        if all(state in FINISHED for state in states.values()):
            return states
        if time.monotonic() >= next_health:
            next_health = time.monotonic() + HEALTH_EVERY_SECONDS
            scheduler = first.client.scheduler_health()
            unhealthy = 0 if scheduler == "healthy" else unhealthy + 1
            if unhealthy >= UNHEALTHY_CHECKS:
                names = " ".join(r.pipeline for r, _ in groups)
                raise NotReadyError(
                    f"{first.env.name}'s Airflow scheduler is {scheduler}: its runs cannot "
                    "progress (they stay queued or running)",
                    "dataops status, then dataops up; the runs go on where they stopped "
                    f"(follow them with dataops run {names} --env {first.env.name} "
                    "again, or in the web UI)",
                )
        if time.monotonic() - began > timeout:
            waiting = [key for key, state in states.items() if state not in FINISHED]
            raise DataOpsError(
                f"{len(waiting)} run(s) still not finished after {timeout:.0f}s",
                "follow them in the web UI, or run again with a longer --timeout",
            )
        sleep(POLL_SECONDS)


def run_note(release_id: str) -> str:
    """The note every run dataops starts carries: who started it, on which release."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        user = "unknown"
    return f"dataops run by {user} on release {short(release_id)} ({release_id})"


def render_log_file(text: str) -> str:
    """Each JSON line of an Airflow task log file rendered (other lines as they are)."""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(render_log_event(json.loads(line)))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)
