"""`dataops run PIPELINE --env E [--date D]`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import DataOpsError, ExitCode


def _parse_date(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
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
@click.option("--timeout", default=1800, show_default=True, help="Seconds to wait for the run.")
@pass_context
def run(ctx: Context, pipeline: str, env: str, date: str | None, timeout: int) -> None:
    """Trigger PIPELINE's DAG through Airflow's REST API and follow it task by task.

    The run covers the schedule interval that contains --date (a month for a @monthly
    pipeline). Prints each task's state as it changes, the log of any failed task, and where
    the logs live; exits 0 only when the run succeeds (1 when it fails)."""
    from dataops.core.pipeline import load_spec
    from dataops.platform.airflow_api import FINISHED, AirflowClient, interval_for
    from dataops.platform.state import LocalSecrets, StateDir

    loaded = ctx.loaded()
    spec_path = loaded.root / "dags" / "pipelines" / f"{pipeline}.yml"
    if not spec_path.exists():
        raise DataOpsError(
            f"no pipeline {pipeline!r} (no {spec_path.relative_to(loaded.root)})",
            "ls dags/pipelines/ for the pipelines there are",
            exit_code=ExitCode.USAGE,
        )
    spec = load_spec(spec_path)
    start, end = interval_for(spec.schedule, _parse_date(date))
    state = StateDir.of(loaded)
    client = AirflowClient.for_env(loaded, env, LocalSecrets(state).values())
    dag = client.wait_for_dag(pipeline, 120, ctx.report)
    if dag.get("is_paused"):
        ctx.report(f"unpausing DAG {pipeline}")
        client.set_paused(pipeline, False)
    existing = client.run_for_interval(pipeline, start)
    if existing:
        client.clear(pipeline, existing)
        run_id, verb = existing, "Re-running (cleared the earlier run of)"
    else:
        run_id, verb = client.trigger(pipeline, start, end)["dag_run_id"], "Triggered"
    ui = f"{client.url}/dags/{pipeline}/runs/{run_id}"
    span = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
    ctx.console.print(f"{verb} {pipeline} for {span}")
    ctx.console.print(f"  run {run_id}\n  web UI {ui}")
    seen: dict[str, str] = {}
    started = time.monotonic()
    state_now = "queued"
    while True:
        for ti in client.task_instances(pipeline, run_id):
            current = str(ti.get("state") or "none")
            if seen.get(ti["task_id"]) != current:
                seen[ti["task_id"]] = current
                elapsed = time.monotonic() - started
                ctx.console.print(f"  [{elapsed:6.1f}s] {ti['task_id']:<10} {current}")
        state_now = client.run_state(pipeline, run_id)
        if state_now in FINISHED:
            break
        if time.monotonic() - started > timeout:
            raise DataOpsError(
                f"run {run_id} still {state_now} after {timeout}s", f"follow it in the web UI: {ui}"
            )
        time.sleep(2)
    logs = state.airflow_home / "logs" / f"dag_id={pipeline}" / f"run_id={run_id}"
    if state_now == "success":
        ctx.console.print(
            f"[green]success[/] in {time.monotonic() - started:.0f}s. Task logs: {logs}"
        )
        return
    for ti in client.task_instances(pipeline, run_id):
        if ti.get("state") in ("failed", "upstream_failed") and ti.get("try_number"):
            text = client.task_log(pipeline, run_id, ti["task_id"], int(ti["try_number"]))
            tail = "\n".join(text.strip().splitlines()[-25:])
            ctx.err.print(f"[red]--- {ti['task_id']} (try {ti['try_number']}) log tail ---[/]")
            ctx.err.print(tail, markup=False)
    raise DataOpsError(
        f"run {run_id} of {pipeline} failed",
        f"read the task logs above, in {logs}, or in the web UI: {ui}",
    )


def register(group: click.Group) -> None:
    group.add_command(run)
