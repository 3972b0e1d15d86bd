"""The dbt docs site of an environment: generated against its warehouse, served on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dataops.clients import dbt
from dataops.core.progress import Report
from dataops.errors import DataOpsError
from dataops.project.environment import Environment


def generate(env: Environment, report: Report) -> Path:
    """`dbt docs generate --target ENV` into the state dir's dbt-docs/ENV/; its index.html."""
    target = env.state.dbt_docs(env.name)
    config = env.project.config
    prepared = dbt.prepare_project(
        config.dbt,
        env.project.loaded.dbt_dir,
        target.parent / f"{env.name}-project",
        dbt.targets_of(config.dbt, list(config.environments)),
        env.state.dbt_logs,
        report,
    )
    environ = dbt.environment(
        prepared.path, target, env.state.dbt_logs, env.config.warehouse, env.warehouse_password
    )
    name = config.dbt.target(env.name)
    report(f"dbt docs generate --target {name}")
    result = dbt.run(["docs", "generate", "--target", name], prepared.path, environ)
    index = target / "index.html"
    if result.returncode != 0 or not index.exists():
        tail = dbt.output_tail(result, 15)
        raise DataOpsError(f"dbt docs generate failed:\n{tail}", "dataops status; then retry")
    return index


def serve(folder: Path, port: int) -> None:
    """Serve `folder` on http://127.0.0.1:PORT until interrupted."""
    subprocess.run(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(folder)],
        check=False,
    )
