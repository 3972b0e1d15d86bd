"""`dataops run PIPELINE... --env E [--date D | --from D --to D]`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option
from dataops.errors import DataOpsError


@click.command()
@click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...")
@env_option("Environment whose Airflow runs it.")
@click.option("--date", "date", help="A moment inside the data interval to run (default: now).")
@click.option("--from", "from_", help="Backfill: the first interval (with --to).")
@click.option("--to", "to", help="Backfill: the last interval (inclusive).")
@click.option("--timeout", default=3600, show_default=True, help="Seconds to wait for the runs.")
@pass_context
def run(
    ctx: Context,
    pipelines: tuple[str, ...],
    env: str,
    date: str | None,
    from_: str | None,
    to: str | None,
    timeout: int,
) -> None:
    """Trigger each PIPELINE's DAG in ENV's own Airflow deployment and follow it task by task.

    The run uses the release ENV runs (its DAG code and its images by digest from ENV's
    registry): the command waits until the deployment serves that release, and refuses an
    Airflow whose DAGs are not tagged env:ENV, so --env prod can only ever touch prod.

    A run covers the schedule interval that contains --date (a month for a @monthly
    pipeline); --from/--to creates one Airflow backfill of every interval between them (the
    Backfills tab of the web UI shows it). An interval that already has a run is run again
    (its tasks are cleared), so re-running is safe: loads are idempotent. Every run's note
    names who started it and the release it runs. Several pipelines (`dataops run airlines
    airports --date 2013-01-01`) run side by side: every name, DAG and deployment is checked
    before any run is triggered, and each line of progress starts with its pipeline. Prints
    each task's state as it changes, the log of any failed task, and where the logs live;
    exits 0 only when every run succeeds (1 when any fails)."""
    from dataops.core.timespan import parse_date
    from dataops.release.runs import PipelineRunner, StartedRun, TaskChange, follow_all

    if (from_ is None) != (to is None) or (from_ and date):
        raise click.UsageError("use --date D, or --from D --to D (both)")
    names = list(dict.fromkeys(pipelines))  # a name given twice runs once
    first_text = from_ or date
    first = parse_date(first_text) if first_text else datetime.now(UTC)
    last = parse_date(to) if to else first
    from dataops.release.releases import Releases

    environment = ctx.environment(env)
    release_id, dags = Releases(ctx.project(), ctx.report).active_dags(environment)
    runners = [PipelineRunner(environment, name, ctx.report, release_id, dags) for name in names]
    spans = {runner.pipeline: runner.intervals(first, last) for runner in runners}  # all exist

    def started(pipeline: str) -> Callable[[StartedRun], None]:
        def show(run: StartedRun) -> None:
            verb = "re-running" if run.rerun else "triggered"
            ctx.console.print(
                f"{verb} {pipeline} for {run.start:%Y-%m-%d %H:%M} .. "
                f"{run.end:%Y-%m-%d %H:%M} UTC: {run.url}"
            )

        return show

    def changed(change: TaskChange) -> None:
        ctx.console.print(
            f"  [{change.seconds:6.1f}s] {change.label} {change.task_id:<10} {change.state}"
        )

    failed: dict[str, list[str]] = {}
    total: dict[str, int] = {}
    try:
        for runner in runners:  # every deployment check passes before any run is triggered
            runner.prepare()
        groups = [(r, r.start(spans[r.pipeline], started(r.pipeline))) for r in runners]
        states = follow_all(groups, timeout, changed)
        for runner, runs in groups:
            total[runner.pipeline] = len(runs)
            bad = [run.run_id for run in runs if states[(runner.pipeline, run.run_id)] != "success"]
            if bad:
                failed[runner.pipeline] = bad
                continue
            ctx.console.print(
                f"[green]success[/]: {len(runs)} run(s) of {runner.pipeline}. "
                f"Task logs: {runner.logs}"
            )
        for runner in runners:
            for task in runner.failed_tasks(failed.get(runner.pipeline, [])):
                ctx.err.print(
                    f"[red]--- {runner.pipeline} {task.run_id} {task.task_id} "
                    f"(try {task.try_number}) ---[/]"
                )
                ctx.err.print(task.log_tail, markup=False, soft_wrap=True)
    finally:
        for runner in runners:
            runner.close()
    if not failed:
        return
    raise DataOpsError(
        ", ".join(f"{len(bad)} of {total[name]} run(s) of {name}" for name, bad in failed.items())
        + " failed",
        "read the task logs above, or under "
        + ", ".join(str(r.logs) for r in runners if r.pipeline in failed)
        + ", or in the web UI",
    )


def register(group: click.Group) -> None:
    group.add_command(run)
