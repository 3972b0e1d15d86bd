"""`dataops up | down | status`: the local platform."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click
from rich.table import Table

from dataops.cli.context import Context, pass_context
from dataops.cli.options import json_option
from dataops.errors import ExitCode

if TYPE_CHECKING:
    from dataops.local.platform import LocalPlatform
    from dataops.local.service import ServiceStatus


def _platform(ctx: Context) -> LocalPlatform:
    from dataops.local.platform import LocalPlatform

    return LocalPlatform(ctx.project())


@click.command()
@click.argument("services", nargs=-1)
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Only ENV's registry and Airflow deployment (and PostgreSQL, Docker); repeatable.",
)
@click.option("--no-install", is_flag=True, help="Do not apt-get install missing Debian packages.")
@pass_context
def up(ctx: Context, services: tuple[str, ...], envs: tuple[str, ...], no_install: bool) -> None:
    """Bring up the local platform and wait until every service is healthy.

    PostgreSQL (one warehouse and one Airflow metadata DB per environment, each with its own
    role), the Docker engine, one registry per environment (staging and prod with htpasswd
    auth), the base image, and one Airflow 3 deployment per environment (api-server with the
    web UI, scheduler, dag-processor, triggerer; dev :8080, staging :8081, prod :8082), each
    running its environment's active release. SERVICES (e.g. airflow-prod registry-prod) or
    --env limit what starts. Installs missing Debian packages when run as root. Idempotent: a
    second run changes nothing and says so. Data, logs and pid files live in the state dir
    (.dataops/)."""
    platform = _platform(ctx)
    for name in envs:
        ctx.environment(name)  # a usage error naming the known environments
    services = (*services, *(platform.services_of(list(envs)) if envs else ()))
    _check_names(platform, services)
    started = time.monotonic()
    result = platform.up(ctx.report, only=list(services) or None, install=not no_install)
    for name in result.generated_secrets:
        ctx.report(f"generated {name} into {platform.state.secrets_file}")
    _print_table(ctx, result.statuses)
    elapsed = time.monotonic() - started
    if result.changed:
        ctx.console.print(
            f"\n[green]Up[/] in {elapsed:.0f}s (changed: {', '.join(result.changed)})."
        )
    else:
        ctx.console.print(
            f"\n[green]Everything was already up; nothing changed[/] ({elapsed:.1f}s)."
        )
    for deployment in platform.deployments:
        if not services or deployment.name in services:
            user, password = deployment.admin_credentials()
            ctx.console.print(
                f"Airflow web UI ({deployment.env.name}): {deployment.url}  "
                f"login: {user} / {password}"
            )
    ctx.console.print(f"Logs: {platform.state.logs}")


@click.command()
@click.argument("services", nargs=-1)
@pass_context
def down(ctx: Context, services: tuple[str, ...]) -> None:
    """Stop the services dataops started, keeping all their data.

    A Docker engine that dataops did not start is left running. `dataops up` starts them again
    on the same data."""
    platform = _platform(ctx)
    _check_names(platform, services)
    stopped = platform.down(ctx.report, only=list(services) or None)
    if stopped:
        ctx.console.print(f"Stopped: {', '.join(stopped)}. Data kept in {platform.state.root}.")
    else:
        ctx.console.print("Nothing was running; nothing changed.")


@click.command()
@json_option("Machine-readable: one object per service.")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Show each service with its state, address and health.

    Exits 0 when every service is healthy, 3 otherwise."""
    platform = _platform(ctx)
    statuses = platform.status()
    healthy = all(s.health.value == "healthy" for s in statuses)
    if as_json:
        payload = {
            "healthy": healthy,
            "state_dir": str(platform.state.root),
            "services": [s.to_json() for s in statuses],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        _print_table(ctx, statuses)
    if not healthy:
        raise SystemExit(int(ExitCode.NOT_READY))


def _check_names(platform: LocalPlatform, services: tuple[str, ...]) -> None:
    known = [s.name for s in platform.services]
    unknown = [name for name in services if name not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )


def _print_table(ctx: Context, statuses: list[ServiceStatus]) -> None:
    colors = {"healthy": "green", "unhealthy": "red", "unknown": "yellow"}
    table = Table(box=None, header_style="bold")
    for column in ("service", "state", "health", "address", "pid", "detail"):
        table.add_column(column)
    for s in statuses:
        color = colors[s.health.value]
        table.add_row(
            s.name,
            s.state.value,
            f"[{color}]{s.health.value}[/]",
            s.address,
            str(s.pid or ""),
            s.detail,
        )
    ctx.console.print(table)


def register(group: click.Group) -> None:
    for command in (up, down, status):
        group.add_command(command)
