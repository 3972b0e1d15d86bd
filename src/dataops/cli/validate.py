"""`dataops validate`."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ConfigError, ExitCode


@click.command()
@pass_context
def validate(ctx: Context) -> None:
    """Check the project files without side effects: dataops.yml and every pipeline spec
    (dags/pipelines/*.yml, each with its dags/pipeline_<name>.py stub).

    Every problem is reported as file:line:col with the key and what is allowed; exit 2 when
    any is found."""
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
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(int(ExitCode.USAGE))


def register(group: click.Group) -> None:
    group.add_command(validate)
