"""`dataops validate`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ExitCode


@click.command()
@pass_context
def validate(ctx: Context) -> None:
    """Check the project files without side effects: dataops.yml, every pipeline spec
    (dags/pipelines/*.yml, each with its dags/pipeline_<name>.py stub) and the migration files
    (names, duplicate versions, destructive changes without the allow annotation), the dbt
    section (the project is there, its local packages exist, vendored packages are checked in),
    that each spec's dbt.select selects nodes of the dbt project (dbt parses it, with no
    warehouse connection; skipped, saying so, while packages.yml's packages are not
    installed), that each environment's smoke.stages name pipelines the project has, that
    every task's queue is served by a worker of each Celery environment, and that a task
    queued ahead there (celery.queue_ahead) cannot outwait
    celery.task_queued_timeout_seconds.

    Every problem is reported as file:line:col with the key and what is allowed; exit 2 when
    any is found."""
    from dataops.quality.validation import validate_project

    problems = validate_project(
        ctx.loaded(),
        lambda line: ctx.console.print(f"[green]ok[/] {line}"),
        lambda line: ctx.console.print(f"[yellow]skipped[/] {line}"),
    )
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(int(ExitCode.USAGE))


def register(group: click.Group) -> None:
    group.add_command(validate)
