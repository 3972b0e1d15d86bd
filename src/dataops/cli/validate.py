"""`dataops validate`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ConfigError, ExitCode


@click.command()
@pass_context
def validate(ctx: Context) -> None:
    """Check the project files without side effects: dataops.yml, every pipeline spec
    (dags/pipelines/*.yml, each with its dags/pipeline_<name>.py stub) and the migration files
    (names, duplicate versions, destructive changes without the allow annotation).

    Every problem is reported as file:line:col with the key and what is allowed; exit 2 when
    any is found."""
    from dataops.core.migrations import destructive_changes, read_migrations
    from dataops.core.pipeline import load_spec, spec_files

    loaded = ctx.loaded()
    envs = ", ".join(loaded.config.environments)
    source = loaded.document.source
    ctx.console.print(
        f"[green]ok[/] {source}: project {loaded.config.project!r}, environments {envs}"
    )
    problems: list[str] = []
    dags = loaded.root / "dags"
    specs = spec_files(dags / "pipelines")
    for path in specs:
        try:
            spec = load_spec(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        stub = dags / f"pipeline_{spec.pipeline}.py"
        if not stub.exists():
            problems.append(f"dags/pipelines/{path.name}: no DAG stub dags/{stub.name}")
            continue
        target = f"{spec.target.table} ({spec.target.mode.value})"
        ctx.console.print(f"[green]ok[/] dags/pipelines/{path.name}: {target}")
    names = {p.stem for p in specs}
    for stub in sorted(dags.glob("pipeline_*.py")):
        name = stub.stem.removeprefix("pipeline_")
        if name not in names:
            problems.append(f"dags/{stub.name}: no spec dags/pipelines/{name}.yml")
    folder = loaded.root / loaded.config.migrations.path
    try:
        found = read_migrations(folder)
    except ConfigError as exc:
        problems.append(str(exc))
    else:
        for migration in [*found.versioned, *found.repeatable]:
            problems += [str(f) for f in destructive_changes(migration)]
        count = len(found.versioned) + len(found.repeatable)
        ctx.console.print(f"[green]ok[/] {loaded.config.migrations.path}/: {count} migration(s)")
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(int(ExitCode.USAGE))


def register(group: click.Group) -> None:
    group.add_command(validate)
