"""`dataops migrate`: versioned warehouse migrations, per environment."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option, json_option
from dataops.core.branches import require_main
from dataops.errors import ExitCode

if TYPE_CHECKING:
    from dataops.release.migrator import Migrator

ENV = env_option("Environment whose warehouse to migrate.")


def _migrator(ctx: Context, env: str, writing: str = "") -> Migrator:
    """The environment's migrator; `writing` names a command that changes the warehouse."""
    from dataops.release.migrator import Migrator
    from dataops.release.releases import Releases

    environment = ctx.environment(env)
    folder = Releases(ctx.project(), ctx.report).migrations_for(environment, bool(writing))
    if writing and folder is None:
        # The working tree's migrations into a shared warehouse: main's alone (a branch's
        # `dataops ci run` plans them; `migrate plan` shows them).
        require_main(ctx.project().branch, f"migrate {writing} --env {env}")
    if folder is not None:
        ctx.report(f"{env} receives releases: migrations from the release it runs ({folder})")
    return Migrator.for_environment(environment, ctx.report, folder)


@click.group()
def migrate() -> None:
    """Versioned warehouse migrations (migrations/V*__*.sql, R__*.sql), per environment.

    dev uses the working tree's migrations/; an environment that receives releases (staging,
    prod: gates.promote_from) uses the migrations of the release it runs, never the tree.

    Applied migrations are recorded in dataops.schema_history with their checksum; an applied
    file that was edited or deleted stops every command before any DDL runs."""


def _print_warnings(ctx: Context, warnings: list[str]) -> None:
    for warning in warnings:
        ctx.err.print(f"[yellow]warning[/] {warning}", markup=True, highlight=False)


@migrate.command()
@ENV
@json_option()
@pass_context
def plan(ctx: Context, env: str, as_json: bool) -> None:
    """Print the SQL `apply` would run now, in order; touches nothing."""
    status = _migrator(ctx, env).plan()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "script": m.script,
                        "version": m.version_label,
                        "checksum": m.checksum,
                        "transactional": m.transactional,
                        "statements": list(m.statements),
                    }
                    for m in status.pending
                ],
                indent=2,
            )
        )
        return
    _print_warnings(ctx, status.warnings)
    if not status.pending:
        ctx.console.print(f"{env}: up to date, nothing to apply")
        return
    for m in status.pending:
        mode = "" if m.transactional else " (no transaction)"
        click.echo(f"-- {m.script}{mode} checksum {m.checksum[:12]}")
        for statement in m.statements:
            click.echo(statement.rstrip() + ";")
        click.echo("")
    ctx.console.print(f"{len(status.pending)} migration(s) would be applied to {env}")


@migrate.command()
@ENV
@json_option()
@click.option(
    "--lock-timeout",
    default=300.0,
    show_default=True,
    help="Seconds to wait for another apply holding the lock.",
)
@pass_context
def apply(ctx: Context, env: str, as_json: bool, lock_timeout: float) -> None:
    """Apply pending migrations under a database lock, each in its own transaction.

    Validates first (edited, deleted, duplicate or out-of-order migrations stop it before any
    DDL). A warehouse with objects in the managed schemas but no history is refused: baseline
    it first. Concurrent applies wait for each other and apply every migration exactly once.

    Only main migrates an environment from the working tree (dev): on another branch this is
    refused with exit 2 (`migrate plan` shows what the branch would apply)."""
    applied, warnings = _migrator(ctx, env, writing="apply").apply(lock_timeout=lock_timeout)
    if as_json:
        click.echo(json.dumps([asdict(a) for a in applied], indent=2))
        return
    _print_warnings(ctx, warnings)
    if not applied:
        ctx.console.print(f"{env}: up to date, nothing applied")
        return
    for item in applied:
        ctx.console.print(f"[green]applied[/] {item.script} ({item.ms} ms)")
    ctx.console.print(f"{len(applied)} migration(s) applied to {env}")


@migrate.command()
@ENV
@json_option()
@pass_context
def status(ctx: Context, env: str, as_json: bool) -> None:
    """Applied and pending migrations, problems, and drift: objects in the managed schemas
    changed outside migrations (exit 1 when there is drift or a problem)."""
    result = _migrator(ctx, env).status()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "history": [
                        {**asdict(r), "installed_at": r.installed_at.isoformat()}
                        for r in result.history
                    ],
                    "pending": [m.script for m in result.pending],
                    "drift": result.drift,
                    "problems": result.warnings,
                },
                indent=2,
            )
        )
    else:
        from rich.table import Table

        table = Table("version", "script", "state", "installed", "by", "ms", "checksum")
        for r in result.history:
            state = r.type if r.success else "[red]FAILED[/]"
            table.add_row(
                r.version or "",
                r.script,
                state,
                f"{r.installed_at:%Y-%m-%d %H:%M}",
                r.installed_by,
                str(r.execution_ms),
                (r.checksum or "")[:12],
            )
        for m in result.pending:
            table.add_row(
                m.version_label, m.script, "[yellow]pending[/]", "", "", "", m.checksum[:12]
            )
        ctx.console.print(table)
        for problem in result.warnings:
            ctx.console.print(f"[yellow]problem[/] {problem}", highlight=False)
        if result.drift:
            ctx.console.print(
                "[red]drift[/]: changed outside migrations "
                "(- was there after the last migration, + is new):"
            )
            for line in result.drift:
                ctx.console.print(f"  {line}", markup=False, highlight=False)
        else:
            ctx.console.print("no drift: the managed schemas are what the migrations made")
    if result.drift or result.errors:
        raise SystemExit(int(ExitCode.FAILED))


@migrate.command()
@ENV
@pass_context
def validate(ctx: Context, env: str) -> None:
    """Check the files against the environment's history without changing anything: edited or
    deleted applied migrations, duplicate versions, out-of-order files, destructive changes."""
    status = _migrator(ctx, env).validate()
    _print_warnings(ctx, status.warnings)
    ctx.console.print(f"[green]ok[/] {env}: history consistent, {len(status.pending)} pending")


@migrate.command()
@ENV
@click.option(
    "--version",
    "version",
    required=True,
    help="The last migration version the database already has.",
)
@click.option("--description", default="baseline", show_default=True)
@pass_context
def baseline(ctx: Context, env: str, version: str, description: str) -> None:
    """Adopt an existing database: record VERSION as applied, so apply starts after it."""
    _migrator(ctx, env, writing="baseline").baseline(version, description)
    ctx.console.print(f"[green]ok[/] {env} baselined at V{version}")


@migrate.command()
@ENV
@click.option("--version", "version", required=True, help="The one version to repair.")
@pass_context
def repair(ctx: Context, env: str, version: str) -> None:
    """Repair one version: forget its failed attempt, or record its edited file's checksum."""
    ctx.console.print(_migrator(ctx, env, writing="repair").repair(version))


def register(group: click.Group) -> None:
    group.add_command(migrate)
