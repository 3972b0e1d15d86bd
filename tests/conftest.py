"""Shared helpers: the repository root, the fixture project, and running the real `dataops`
command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The toolkit's tests read this copy of the reference project, never the working tree's
# project (which a team replaces with its own): tests/fixtures/project/README.md.
PROJECT = ROOT / "tests" / "fixtures" / "project"
DATAOPS = [sys.executable, "-m", "dataops.cli.main"]


def copy_project(target: Path, *names: str) -> Path:
    """The fixture project's files `names` (all of them if none) copied into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names or [p.name for p in PROJECT.iterdir() if p.name != "README.md"]:
        source = PROJECT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "target", "logs")
            shutil.copytree(source, target / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy(source, target / name)
    return target


def run_dataops(
    *args: str, config: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if config is not None:
        full_env["DATAOPS_CONFIG"] = str(config)
    return subprocess.run(
        [*DATAOPS, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def platform_up() -> dict[str, str]:
    """The real local platform, up and healthy; returns its local secrets."""
    result = run_dataops("up", "--no-install")
    assert result.returncode == 0, f"dataops up failed:\n{result.stdout}\n{result.stderr}"
    # The dev warehouse's raw and dataops schemas come from migrations, before any load.
    result = run_dataops("migrate", "apply", "--env", "dev")
    assert result.returncode == 0, f"migrate apply failed:\n{result.stdout}\n{result.stderr}"
    from dataops.project.secrets import read_env_file

    return read_env_file(ROOT / ".dataops" / "secrets.env")
