"""Shared helpers: the project root, and running the real `dataops` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATAOPS = [sys.executable, "-m", "dataops.cli.main"]


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
