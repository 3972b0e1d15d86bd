"""`dataops data ...`: deliveries into the environments' file drops."""

from __future__ import annotations

from pathlib import Path

import click

from dataops.cli.context import Context, pass_context


@click.group()
def data() -> None:
    """Deliveries into each environment's file drop (.dataops/data/ENV/incoming/), which the
    pipelines' `source.path` reads."""


@data.command("put")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Only ENV's file drop (repeatable); default: every environment's.",
)
@pass_context
def put(ctx: Context, paths: tuple[Path, ...], envs: tuple[str, ...]) -> None:
    """Copy files into the file drop: a file lands at its name, a folder's files at their
    paths under it (`dataops data put data/` puts data/reference/a.csv at reference/a.csv).

    Each file is replaced atomically (a running extract reads the old file or the new one);
    a file already there with the same bytes is left alone, so running it again changes
    nothing. Nothing is deleted from the drop."""
    from dataops.project.file_drop import deliveries
    from dataops.project.file_drop import put as deliver

    project = ctx.project()
    items = deliveries(list(paths))
    targets = [ctx.environment(name) for name in envs] or list(project.environments())
    project.state.ensure(tuple(env.name for env in targets))
    for env in targets:
        drop = env.data_dir / "incoming"
        written, unchanged = deliver(items, drop)
        ctx.console.print(
            f"[green]ok[/] {env.name}: {written} file(s) written, {unchanged} unchanged in {drop}"
        )


def register(group: click.Group) -> None:
    group.add_command(data)
