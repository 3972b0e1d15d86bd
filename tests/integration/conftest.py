"""Fixtures of the integration tests that need the pipelines to have run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ROOT, run_dataops

REFERENCE = ("airlines", "airports", "planes", "weather")


@pytest.fixture(scope="session", autouse=True)
def acts_as_main() -> Iterator[None]:
    """The suite's platform is this checkout's own: its commands act for main (they make and
    promote releases) whatever branch the checkout is on. A test that means a branch (or CI)
    sets DATAOPS_CI_BRANCH in its own command's environment."""
    saved = os.environ.get("DATAOPS_CI_BRANCH")
    os.environ.setdefault("DATAOPS_CI_BRANCH", "main")
    yield
    if saved is None:
        os.environ.pop("DATAOPS_CI_BRANCH", None)


@pytest.fixture(scope="session")
def pipelines_ready(platform_up: dict[str, str]) -> dict[str, str]:
    """Images built and pushed to dev and released there, the file drop delivered (the
    example's script, then `dataops data put`, as `make demo` does), the reference data loaded."""
    data = ROOT / ".dataops" / "nycflights13"
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "nycflights13.py"), str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert script.returncode == 0, script.stdout[-3000:] + script.stderr[-3000:]
    steps = [("images", "build", "--push", "--env", "dev"), ("release", "create", "--env", "dev")]
    steps += [("data", "put", str(data))]
    # The reference data first: the flights marts join weather, airlines and airports.
    # The four side by side, in one command (each progress line names its pipeline).
    steps += [("run", *REFERENCE, "--env", "dev", "--date", "2013-01-01")]
    for args in steps:
        result = run_dataops(*args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in REFERENCE:
        assert f"success: 1 run(s) of {name}." in result.stdout, result.stdout[-3000:]
        assert f"] {name} load       success" in result.stdout, result.stdout[-3000:]
    return platform_up


@pytest.fixture
def ready(pipelines_ready: dict[str, str]) -> Iterator[psycopg.Connection]:
    """The pipelines set up, and a fresh warehouse_dev connection (tests that restart the
    platform end older ones)."""
    with dev_warehouse(pipelines_ready) as conn:
        yield conn


def dev_warehouse(secrets: dict[str, str]) -> psycopg.Connection:
    """An autocommit connection to warehouse_dev as the dataops role."""
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname="warehouse_dev",
        user="dataops",
        password=secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
        autocommit=True,
    )


AIRFLOW = {
    "dev": "http://127.0.0.1:8080",
    "staging": "http://127.0.0.1:8081",
    "prod": "http://127.0.0.1:8082",
}


def airflow_token(env: str, secrets: dict[str, str]) -> str:
    """A bearer token of ENV's Airflow (its admin user), as the UI's login makes one."""
    response = httpx.post(
        f"{AIRFLOW[env]}/auth/token",
        json={"username": "admin", "password": secrets[f"DATAOPS_AIRFLOW_{env.upper()}_PASSWORD"]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def releases_json(env: str, secrets: dict[str, str]) -> dict:
    """ENV's Releases page (the dataops plugin in ENV's Airflow) as JSON."""
    headers = {
        "Authorization": f"Bearer {airflow_token(env, secrets)}",
        "Accept": "application/json",
    }
    response = httpx.get(f"{AIRFLOW[env]}/dataops/releases", headers=headers)
    assert response.status_code == 200, response.text[:500]
    return dict(response.json())


def ready_secrets() -> dict[str, str]:
    """The platform's generated secrets (what `dataops up` wrote to .dataops/secrets.env)."""
    from dataops.project.secrets import read_env_file

    return read_env_file(ROOT / ".dataops" / "secrets.env")


def dataops_ok(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = run_dataops(*args, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def promote_dev_to_prod(why: str) -> None:
    """dev's active release through the gates to prod, as `make demo` promotes it, with the
    staging smoke recorded as passed (`why`: the real smoke runs are test_environments')."""
    dataops_ok("release", "check", "--env", "dev", "--name", "ci", "--passed")
    dataops_ok("promote", "--to", "staging")
    detail = f"{why} (the real smoke runs are tested in test_environments)"
    dataops_ok(
        "release", "check", "--env", "staging", "--name", "smoke", "--passed", "--detail", detail
    )
    dataops_ok("promote", "--to", "prod", "--approve", "--approver", "root")
