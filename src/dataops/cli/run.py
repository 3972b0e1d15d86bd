"""`dataops run PIPELINE --env E [--date D | --from D --to D]`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import DataOpsError, ExitCode


def _parse_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command()
@click.argument("pipeline")
@click.option(
    "--env", "env", default="dev", show_default=True, help="Environment whose Airflow runs it."
)
@click.option("--date", "date", help="A moment inside the data interval to run (default: now).")
@click.option("--from", "from_", help="Backfill: the first interval (with --to).")
@click.option("--to", "to", help="Backfill: the last interval (inclusive).")
@click.option("--timeout", default=3600, show_default=True, help="Seconds to wait for the runs.")
@pass_context
def run(
    ctx: Context,
    pipeline: str,
    env: str,
    date: str | None,
    from_: str | None,
    to: str | None,
    timeout: int,
) -> None:
    """Trigger PIPELINE's DAG through Airflow's REST API and follow it task by task.

    A run covers the schedule interval that contains --date (a month for a @monthly
    pipeline); --from/--to backfills every interval between them. An interval that already
    has a run is run again (its tasks are cleared), so re-running is safe: loads are
    idempotent. Prints each task's state as it changes, the log of any failed task, and where
    the logs live; exits 0 only when every run succeeds (1 when any fails)."""
    from dataops.core.pipeline import load_spec
    from dataops.platform.airflow_api import AirflowClient, intervals
    from dataops.platform.state import LocalSecrets, StateDir

    if (from_ is None) != (to is None) or (from_ and date):
        raise click.UsageError("use --date D, or --from D --to D (both)")
    loaded = ctx.loaded()
    spec_path = loaded.root / "dags" / "pipelines" / f"{pipeline}.yml"
    if not spec_path.exists():
        raise DataOpsError(
            f"no pipeline {pipeline!r} (no {spec_path.relative_to(loaded.root)})",
            "ls dags/pipelines/ for the pipelines there are",
            exit_code=ExitCode.USAGE,
        )
    spec = load_spec(spec_path)
    first = _parse_date(from_ or date) or datetime.now(UTC)
    last = _parse_date(to) or first
    spans = intervals(spec.schedule, first, last)
    state = StateDir.of(loaded)
    client = AirflowClient.for_env(loaded, env, LocalSecrets(state).values())
    dag = client.wait_for_dag(pipeline, 120, ctx.report)
    if dag.get("is_paused"):
        ctx.report(f"unpausing DAG {pipeline}")
        client.set_paused(pipeline, False)
    runs: dict[str, str] = {}
    for start, end in spans:
        existing = client.run_for_interval(pipeline, start)
        if existing:
            client.clear(pipeline, existing)
            run_id, verb = existing, "re-running"
        else:
            run_id, verb = client.trigger(pipeline, start, end)["dag_run_id"], "triggered"
        label = f"{start:%Y-%m-%d}" if len(spans) > 1 else ""
        runs[run_id] = label
        ctx.console.print(
            f"{verb} {pipeline} for {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC: "
            f"{client.url}/dags/{pipeline}/runs/{run_id}"
        )
    states = _follow(ctx, client, pipeline, runs, timeout)
    logs = state.airflow_home / "logs" / f"dag_id={pipeline}"
    failed = [run_id for run_id, s in states.items() if s != "success"]
    if not failed:
        ctx.console.print(f"[green]success[/]: {len(runs)} run(s) of {pipeline}. Task logs: {logs}")
        return
    for run_id in failed:
        for ti in client.task_instances(pipeline, run_id):
            if ti.get("state") == "failed" and ti.get("try_number"):
                text = client.task_log(pipeline, run_id, ti["task_id"], int(ti["try_number"]))
                local = logs / f"run_id={run_id}" / f"task_id={ti['task_id']}"
                local = local / f"attempt={ti['try_number']}.log"
                if text.startswith("(log unavailable") and local.exists():
                    text = _events(local.read_text())
                tail = "\n".join(text.strip().splitlines()[-25:])
                ctx.err.print(f"[red]--- {run_id} {ti['task_id']} (try {ti['try_number']}) ---[/]")
                ctx.err.print(tail, markup=False, soft_wrap=True)
    raise DataOpsError(
        f"{len(failed)} of {len(runs)} run(s) of {pipeline} failed",
        f"read the task logs above, or under {logs}, or in the web UI",
    )


def _events(text: str) -> str:
    """Each JSON line of an Airflow task log file rendered (other lines as they are)."""
    import json

    from dataops.platform.airflow_api import render_log_event

    lines = []
    for line in text.splitlines():
        try:
            lines.append(render_log_event(json.loads(line)))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)


def _follow(
    ctx: Context, client, pipeline: str, runs: dict[str, str], timeout: int
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from dataops.platform.airflow_api import FINISHED

    seen: dict[tuple[str, str], str] = {}
    states = {run_id: "queued" for run_id in runs}
    started = time.monotonic()
    while True:
        for run_id, label in runs.items():
            if states[run_id] in FINISHED:
                continue
            for ti in client.task_instances(pipeline, run_id):
                current = str(ti.get("state") or "none")
                if seen.get((run_id, ti["task_id"])) != current:
                    seen[(run_id, ti["task_id"])] = current
                    elapsed = time.monotonic() - started
                    ctx.console.print(f"  [{elapsed:6.1f}s] {label} {ti['task_id']:<10} {current}")
            states[run_id] = client.run_state(pipeline, run_id)
        if all(s in FINISHED for s in states.values()):
            return states
        if time.monotonic() - started > timeout:
            waiting = [r for r, s in states.items() if s not in FINISHED]
            raise DataOpsError(
                f"{len(waiting)} run(s) still not finished after {timeout}s",
                "follow them in the web UI, or run again with a longer --timeout",
            )
        time.sleep(2)


def register(group: click.Group) -> None:
    group.add_command(run)
