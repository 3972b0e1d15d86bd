"""`dataops helm values`: the official Airflow Helm chart's values, per environment."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ExitCode


@click.group()
def helm() -> None:
    """Run the environments on a Kubernetes cluster with the official Airflow Helm chart."""


@helm.command("values")
@click.option("--env", "envs", multiple=True, help="Environment (repeatable); default: all.")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when a file differs from what dataops.yml renders (for CI).",
)
@pass_context
def values(ctx: Context, envs: tuple[str, ...], check: bool) -> None:
    """Render infra/helm/ENV/values.yaml for the official Apache Airflow Helm chart.

    From dataops.yml: the executor (CeleryExecutor with its workers' queues, visibility timeout
    heartbeat and queued timeouts, or LocalExecutor), the release DAG bundle as the only DAG source,
    tasks as KubernetesPodOperator pods (the runtime's namespace, data claim and warehouse
    Secret), and every secret as a Kubernetes Secret by name (no value is ever written).
    Idempotent: an unchanged file is left alone."""
    from dataops import __version__
    from dataops.core.helm import HELM_DIR, render
    from dataops.project.state import atomic_write

    loaded = ctx.loaded()
    known = loaded.config.environments
    unknown = [e for e in envs if e not in known]
    if unknown:
        raise click.UsageError(
            f"no environment named {unknown[0]!r} in dataops.yml ({', '.join(known)})"
        )
    stale = []
    for env in envs or tuple(known):
        path = loaded.root / HELM_DIR / env / "values.yaml"
        text = render(env, known[env], __version__)
        current = path.read_text() if path.exists() else None
        if current == text:
            ctx.console.print(f"[green]ok[/] {HELM_DIR}/{env}/values.yaml is up to date")
        elif check:
            stale.append(f"{HELM_DIR}/{env}/values.yaml")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text, 0o644)
            ctx.console.print(f"[green]wrote[/] {HELM_DIR}/{env}/values.yaml")
    if stale:
        click.echo(
            f"error: {', '.join(stale)} differ from what dataops.yml renders; run "
            "`dataops helm values` and commit the result",
            err=True,
        )
        raise SystemExit(int(ExitCode.FAILED))


def register(group: click.Group) -> None:
    group.add_command(helm)
