"""The smoke test of a release in an environment: its images served by digest, its migrations
current, then real runs of the environment's `smoke.stages` in its own deployment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from dataops.core.progress import Report
from dataops.core.promotion import short
from dataops.core.timespan import parse_date
from dataops.project.environment import Environment
from dataops.release.migrator import Migrator
from dataops.release.releases import Releases
from dataops.release.runs import PipelineRunner, StartedRun, follow_all

SMOKE_TIMEOUT = 900


@dataclass(frozen=True)
class SmokeRun:
    pipeline: str
    run_id: str
    state: str
    bundle_version: str  # the release the run ran (Airflow's DAG bundle version)


class Smoke:
    """Smoke tests of the releases of one project (`Releases` knows their records)."""

    def __init__(self, releases: Releases) -> None:
        self.releases = releases
        self.report: Report = releases.report

    def check(self, env: Environment, release_id: str) -> tuple[list[str], list[SmokeRun]]:
        """The release in `env`, checked for real: every image manifest and blob served by
        digest from env's registry, env's migrations current, then the pipelines of env's
        `smoke.stages` run in env's own deployment on this release (each stage's side by side,
        stages in order). Returns (problems, runs); no problems means it passed."""
        problems: list[str] = []
        record = self.releases.record(env, release_id)
        with env.registry() as registry:
            for name, image in record.images.items():
                repo = f"dataops/{name}"
                raw, _, digest = registry.manifest(repo, image.digest)
                if digest != image.digest:
                    problems.append(f"{repo}: served {digest}, expected {image.digest}")
                document = json.loads(raw)
                for blob in [document.get("config"), *document.get("layers", [])]:
                    if blob and not registry.has_blob(repo, blob["digest"]):
                        problems.append(f"{repo}: blob {blob['digest']} missing")
        folder = self.releases.sources(env, release_id, "migrations")
        status = Migrator.for_environment(env, self.report, folder).status()
        if status.pending:
            problems.append(f"{len(status.pending)} migration(s) pending in {env.name}")
        problems += [f"schema drift: {line}" for line in status.drift]
        runs: list[SmokeRun] = []
        if problems:
            return problems, runs
        if self.releases.active(env) != release_id:
            problems.append(f"{short(release_id)} is not the release {env.name} runs")
            return problems, runs
        runs = self._runs(env, release_id)
        problems += [
            f"{r.pipeline} run {r.run_id}: {r.state}" for r in runs if r.state != "success"
        ]
        return problems, runs

    def _runs(self, env: Environment, release_id: str) -> list[SmokeRun]:
        smoke = env.config.smoke
        dags = self.releases.sources(env, release_id, "dags")
        moment = parse_date(smoke.date) if smoke.date else None
        runs: list[SmokeRun] = []
        for stage in smoke.stages:
            started: list[tuple[PipelineRunner, StartedRun]] = []
            for pipeline in stage:
                runner = PipelineRunner(env, pipeline, self.report, release_id, dags)
                when = moment or datetime.now(UTC)
                for run in runner.start(runner.intervals(when, when), lambda run: None):
                    self.report(f"smoke: {pipeline} {run.run_id} started in {env.name}")
                    started.append((runner, run))
            if not started:  # an empty stage (`stages: [[]]`) runs nothing
                continue
            try:  # the stage's runs followed together, each reported as it finishes
                states = follow_all(
                    [(runner, [run]) for runner, run in started],
                    SMOKE_TIMEOUT,
                    lambda change: None,
                    on_finished=lambda pipeline, run_id, state: self.report(
                        f"smoke: {pipeline} {run_id} {state}"
                    ),
                )
                for runner, run in started:
                    state = states[(runner.pipeline, run.run_id)]
                    version = runner.client.dag_run(runner.pipeline, run.run_id).get(
                        "bundle_version"
                    )
                    runs.append(SmokeRun(runner.pipeline, run.run_id, state, str(version)))
            finally:
                for runner, _ in started:
                    runner.close()
            if any(r.state != "success" for r in runs):
                break  # the next stage needs this one's data
        return runs
