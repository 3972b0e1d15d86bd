"""`dataops doctor`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from dataops.cli.context import Context, pass_context
from dataops.cli.options import json_option
from dataops.errors import ExitCode


@click.command()
@json_option("Print the checks as JSON.")
@pass_context
def doctor(ctx: Context, as_json: bool) -> None:
    """Check this host for what the local platform needs.

    Prints, for every missing piece, the exact command that fixes it. Exits 3 when anything
    is missing (0 when the host is ready)."""
    from dataops.local.doctor import run_checks

    checks = run_checks(ctx.project())
    failed = [c for c in checks if not c.ok]
    if as_json:
        click.echo(
            json.dumps({"ready": not failed, "checks": [c.to_json() for c in checks]}, indent=2)
        )
    else:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("check")
        table.add_column("")
        table.add_column("detail")
        for check in checks:
            table.add_row(
                check.name, "[green]ok[/]" if check.ok else "[red]MISSING[/]", check.detail
            )
        ctx.console.print(table)
        if failed:
            ctx.console.print("\n[bold]To fix:[/]")
            for check in failed:
                ctx.console.print(f"  {check.name}: [yellow]{check.fix}[/]")
        else:
            ctx.console.print("\n[green]This host is ready.[/] Next: dataops up")
    if failed:
        raise SystemExit(int(ExitCode.NOT_READY))


def register(group: click.Group) -> None:
    group.add_command(doctor)
