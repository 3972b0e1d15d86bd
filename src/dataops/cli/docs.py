"""`dataops docs`: the dbt docs site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import DataOpsError


@click.command()
@click.option("--env", "env", default="dev", show_default=True, help="Warehouse to document.")
@click.option("--serve", is_flag=True, help="Serve the site on 127.0.0.1 after generating it.")
@click.option("--port", default=8081, show_default=True, help="Port for --serve.")
@pass_context
def docs(ctx: Context, env: str, serve: bool, port: int) -> None:
    """Generate the dbt docs site (models, columns, tests, lineage) for an environment.

    Runs `dbt docs generate` against the environment's warehouse (credentials from the
    variables dataops.yml names) into .dataops/dbt-docs/ENV/. Open its index.html, or pass
    --serve to browse it on http://127.0.0.1:PORT."""
    from dataops.platform.state import LocalSecrets, StateDir

    loaded = ctx.loaded()
    warehouse = loaded.environment(env).warehouse
    state = StateDir.of(loaded)
    password = loaded.resolve_secret(
        ("environments", env, "warehouse", "password_env"), LocalSecrets(state).values()
    )
    target = state.root / "dbt-docs" / env
    project = loaded.root / "dbt_project"
    environ = {
        **os.environ,
        "PGHOST": warehouse.host,
        "PGPORT": str(warehouse.port),
        "PGDATABASE": warehouse.database,
        "PGUSER": warehouse.user,
        "PGPASSWORD": password,
        "DBT_PROFILES_DIR": str(project),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(state.logs / "dbt"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).parent / "dbt"
    ctx.report(f"dbt docs generate --target {env}")
    result = subprocess.run(
        [str(dbt), "docs", "generate", "--target", env],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (target / "index.html").exists():
        tail = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise DataOpsError(f"dbt docs generate failed:\n{tail}", "dataops status; then retry")
    ctx.console.print(f"[green]ok[/] docs site: {target / 'index.html'}")
    if serve:
        ctx.console.print(f"serving on http://127.0.0.1:{port} (Ctrl-C to stop)")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "-d",
                str(target),
            ],
            check=False,
        )
    else:
        ctx.console.print(
            f"browse it: dataops docs --env {env} --serve   (http://127.0.0.1:{port})"
        )


def register(group: click.Group) -> None:
    group.add_command(docs)
