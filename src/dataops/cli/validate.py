"""`dataops validate`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context


@click.command()
@pass_context
def validate(ctx: Context) -> None:
    """Check the project files without side effects (today: dataops.yml and its schema).

    Every problem is reported as file:line:col with the key and what is allowed; exit 2 when
    any is found."""
    loaded = ctx.loaded()
    envs = ", ".join(loaded.config.environments)
    source = loaded.document.source
    ctx.console.print(
        f"[green]ok[/] {source}: project {loaded.config.project!r}, environments {envs}"
    )


def register(group: click.Group) -> None:
    group.add_command(validate)
