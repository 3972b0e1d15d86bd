"""Fixtures of the integration tests that need the pipelines to have run."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import run_dataops

REFERENCE = ("airlines", "airports", "planes", "weather")


@pytest.fixture(scope="session")
def ready(platform_up: dict[str, str]) -> Iterator[psycopg.Connection]:
    """Images built and pushed to dev, the file drop delivered; a warehouse_dev connection."""
    steps = [("images", "build", "--push", "--env", "dev"), ("data", "nycflights13")]
    # The reference data first: the flights marts join weather, airlines and airports.
    steps += [("run", name, "--env", "dev", "--date", "2013-01-01") for name in REFERENCE]
    for args in steps:
        result = run_dataops(*args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with dev_warehouse(platform_up) as conn:
        yield conn


def dev_warehouse(secrets: dict[str, str]) -> psycopg.Connection:
    """An autocommit connection to warehouse_dev as the dataops role."""
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname="warehouse_dev",
        user="dataops",
        password=secrets["DATAOPS_WAREHOUSE_PASSWORD"],
        autocommit=True,
    )
