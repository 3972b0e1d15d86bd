"""dbt on the host: the environment it runs with, and manifests compiled without a warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dataops.core.config import WarehouseConfig
from dataops.errors import DataOpsError, NotReadyError

MANIFEST_PATH_IN_IMAGE = "/opt/dataops/dbt_state/manifest.json"


def executable() -> Path:
    dbt = Path(sys.executable).parent / "dbt"
    if not dbt.exists():
        raise NotReadyError("dbt is not installed in the venv", "make setup")
    return dbt


def environment(
    project: Path,
    target_path: Path,
    log_path: Path,
    warehouse: WarehouseConfig | None = None,
    password: str = "",
    schema: str | None = None,
) -> dict[str, str]:
    """os.environ plus what profiles.yml reads; a parse needs no real warehouse."""
    env = {
        **os.environ,
        "PGHOST": warehouse.host if warehouse else "127.0.0.1",
        "PGPORT": str(warehouse.port) if warehouse else "5432",
        "PGDATABASE": warehouse.database if warehouse else "unused",
        "PGUSER": warehouse.user if warehouse else "unused",
        "PGPASSWORD": password,
        "DBT_PROFILES_DIR": str(project),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(log_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",  # its output goes to logs and CI, not only terminals
    }
    if schema:
        env["DBT_SCHEMA"] = schema
    return env


def run(args: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dbt ARGS...` in `project`, its output captured; never raises on dbt's exit code."""
    return subprocess.run(
        [str(executable()), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def stream(
    args: list[str], project: Path, env: dict[str, str], echo: Callable[[str], None] | None
) -> int:
    """`dbt ARGS...` with each line of its output handed to `echo` as it comes; its exit code."""
    with subprocess.Popen(
        [str(executable()), *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if echo:
                echo(line.rstrip("\n"))
        return process.wait()


def output_tail(result: subprocess.CompletedProcess[str], lines: int) -> str:
    """The last `lines` lines dbt printed (stdout, then stderr): where it says what failed."""
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def parse_manifest(project: Path, out_dir: Path, log_path: Path) -> Path:
    """`dbt parse` of `project` into `out_dir`/manifest.json (no warehouse connection)."""
    result = run(["parse", "--no-partial-parse"], project, environment(project, out_dir, log_path))
    manifest = out_dir / "manifest.json"
    if result.returncode != 0 or not manifest.exists():
        tail = output_tail(result, 10)
        raise DataOpsError(
            f"dbt parse of {project} failed:\n{tail}",
            "fix the dbt project (`dataops lint` and `dbt parse` in dbt_project/ show where)",
        )
    return manifest


def manifest_of_image(cache: Path, ref: str, report: Callable[[str], None]) -> Path:
    """The dbt manifest baked into the transform image `ref` (cached by digest)."""
    digest = ref.rsplit("@", 1)[-1].replace("sha256:", "")
    cached = cache / f"{digest}.json"
    if cached.exists():
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    report(f"reading the dbt manifest baked into {ref}")
    created = subprocess.run(["docker", "create", ref], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        raise NotReadyError(
            f"cannot read {ref}: {created.stderr.strip()}",
            "dataops up; then dataops images build --push",
        )
    container = created.stdout.strip()
    try:
        partial = cached.with_suffix(".part")
        subprocess.run(
            ["docker", "cp", f"{container}:{MANIFEST_PATH_IN_IMAGE}", str(partial)],
            capture_output=True,
            check=True,
        )
        partial.replace(cached)
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True, check=False)
    return cached
