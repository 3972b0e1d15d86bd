"""`dataops helm values`: the official Airflow Helm chart's values, per environment."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context


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
    from dataops.cli.generated import sync_files
    from dataops.core.helm import HELM_DIR, render

    loaded = ctx.loaded()
    known = loaded.config.environments
    unknown = [e for e in envs if e not in known]
    if unknown:
        raise click.UsageError(
            f"no environment named {unknown[0]!r} in dataops.yml ({', '.join(known)})"
        )
    files = {
        f"{HELM_DIR}/{env}/values.yaml": render(env, known[env], __version__)
        for env in envs or tuple(known)
    }
    sync_files(ctx, loaded.root, files, check, "dataops.yml", "dataops helm values")


def register(group: click.Group) -> None:
    group.add_command(helm)
