"""`dataops ci run`: the CI stages in order, fail-fast, with a JUnit report and a summary.

Every stage is a `dataops` (or pytest) command run as a subprocess of the checkout being
tested, with its output in a log of its own; the same stages run from the git hook, GitHub
Actions and GitLab CI. Work that did not change since the last green run is skipped by the
commands themselves (images by content hash, dbt by `state:modified+`), and the summary says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataops.core.ci_report import CiRun, StageResult, junit, summary
from dataops.core.promotion import short
from dataops.project.state import atomic_write


@dataclass(frozen=True)
class Stage:
    name: str
    what: str
    argv: Callable[[CiContext], list[str] | None]  # None: skipped (the note says why)
    note: Callable[[str], str] = lambda output: ""
    skip_note: Callable[[CiContext], str] = lambda ctx: ""


MAIN_BRANCH = "main"


@dataclass
class CiContext:
    root: Path
    base: str
    branch: str
    env: str = "dev"

    @property
    def shared(self) -> bool:
        """Only main's CI changes the shared dev environment (migrations, its release);
        every other branch builds and tests in its own ci_<branch> scope."""
        return self.branch == MAIN_BRANCH


def _dataops(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataops.cli.main", *args]


def _json(output: str) -> Any:
    start = min((i for i in (output.find("{"), output.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        return json.loads(output[start:])
    except ValueError:
        return None


def _build_note(output: str) -> str:
    data = _json(output)
    if not isinstance(data, dict):
        return ""
    images = data.get("images", [])
    built = [i["name"] for i in images if i.get("built")]
    unchanged = [i["name"] for i in images if not i.get("built")]
    parts = []
    if built:
        parts.append(f"built {', '.join(built)}")
    if unchanged:
        parts.append(
            f"skipped {', '.join(unchanged)}: unchanged since the last build (content hash)"
        )
    return "; ".join(parts)


def _migrate_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, list):
        if data and "ms" not in data[0]:  # a plan (an apply reports each one's ms)
            return f"would apply {', '.join(a['script'] for a in data)} (plan only)"
        return f"applied {', '.join(a['script'] for a in data)}" if data else "nothing to apply"
    return ""


def _dbt_note(output: str) -> str:
    data = _json(output)
    if not isinstance(data, dict):
        return ""
    if not data.get("selected"):
        return "skipped dbt: no model changed since the release dev runs (state:modified+)"
    return (
        f"built {len(data.get('executed_models', []))} model(s) "
        f"(state:modified+), {data.get('tests', 0)} test(s) passed"
    )


def _release_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, dict) and data.get("release"):
        state = "new" if data.get("new") else "unchanged since the last run"
        return f"release {short(data['release'])} ({state})"
    return ""


def _smoke_note(output: str) -> str:
    data = _json(output)
    if isinstance(data, dict) and data.get("runs"):
        return f"{len(data['runs'])} run(s) passed in staging: " + ", ".join(
            r["pipeline"] for r in data["runs"]
        )
    return ""


STAGES: tuple[Stage, ...] = (
    Stage(
        "validate", "dataops.yml, pipeline specs, migration files", lambda c: _dataops("validate")
    ),
    Stage(
        "lint",
        "sqlfluff, hadolint, specs, migrations (files changed since --base)",
        lambda c: _dataops("lint", "--base", c.base),
    ),
    Stage(
        "unit",
        "unit tests and DAG integrity tests",
        lambda c: [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit",
            "tests/dags",
        ],
    ),
    Stage(
        "build",
        "build and push the task images to dev",
        lambda c: _dataops("images", "build", "--push", "--env", c.env, "--json"),
        note=_build_note,
    ),
    Stage(
        "migrate",
        "apply dev's migrations (main); plan them, touching nothing (other branches)",
        lambda c: _dataops("migrate", "apply" if c.shared else "plan", "--env", c.env, "--json"),
        note=_migrate_note,
    ),
    Stage(
        "integration",
        "slim dbt CI in dev (modified models and descendants)",
        lambda c: _dataops("ci", "dbt", "--env", c.env, "--json"),
        note=_dbt_note,
    ),
    Stage(
        "release",
        "create the dev release of this build and activate it in dev; record ci (main only)",
        lambda c: (
            _dataops("release", "create", "--env", c.env, "--json", "--passed-check", "ci")
            if c.shared
            else None
        ),
        note=_release_note,
        skip_note=lambda c: f"branch {c.branch!r} is not main: it never changes what dev runs",
    ),
    Stage(
        "promote",
        "promote to staging (main branch only)",
        lambda c: _dataops("promote", "--to", "staging", "--json") if c.shared else None,
        skip_note=lambda c: f"branch {c.branch!r} is not main",
    ),
    Stage(
        "smoke",
        "real runs of the release in staging's Airflow; records prod's smoke gate (main only)",
        lambda c: _dataops("release", "smoke", "--env", "staging", "--json") if c.shared else None,
        note=_smoke_note,
        skip_note=lambda c: f"branch {c.branch!r} is not main",
    ),
)


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def run_stages(
    ctx: CiContext,
    out_dir: Path,
    only: str | None,
    echo: Callable[[str], None],
    commit: str,
) -> CiRun:
    started = time.monotonic()
    run = CiRun(
        id=out_dir.name,
        commit=commit,
        branch=ctx.branch,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for stage in STAGES:
        if only and stage.name != only:
            continue
        if failed:
            run.stages.append(StageResult(stage.name, "not run", note="an earlier stage failed"))
            continue
        argv = stage.argv(ctx)
        if argv is None:
            result = StageResult(stage.name, "skipped", note=stage.skip_note(ctx))
            echo(f"- {stage.name:<12} skipped: {result.note}")
            run.stages.append(result)
            continue
        echo(f"> {stage.name:<12} {stage.what}")
        log = out_dir / f"{stage.name}.log"
        began = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=ctx.root,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - began
        log.write_text(f"$ {' '.join(argv)}\n{done.stdout}\n--- stderr ---\n{done.stderr}")
        if done.returncode == 0:
            result = StageResult(stage.name, "passed", seconds, stage.note(done.stdout), str(log))
            echo(
                f"  {stage.name:<12} PASSED in {seconds:.1f}s"
                + (f": {result.note}" if result.note else "")
            )
        else:
            tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-20:])
            result = StageResult(stage.name, "failed", seconds, tail, str(log))
            echo(f"  {stage.name:<12} FAILED in {seconds:.1f}s (exit {done.returncode}); log {log}")
            for line in tail.splitlines():
                echo(f"    {line}")
            failed = True
        run.stages.append(result)
    run.seconds = time.monotonic() - started
    atomic_write(out_dir / "result.json", json.dumps(asdict(run), indent=2) + "\n")
    atomic_write(out_dir / "junit.xml", junit(run))
    atomic_write(out_dir / "summary.md", summary(run))
    return run
