"""Connections to an environment's warehouse, with the password from its `*_env` variable."""

from __future__ import annotations

import psycopg

from dataops.core.config import LoadedConfig
from dataops.errors import NotReadyError
from dataops.platform.state import LocalSecrets, StateDir


def conninfo(loaded: LoadedConfig, env: str) -> str:
    warehouse = loaded.environment(env).warehouse
    password = loaded.resolve_secret(
        ("environments", env, "warehouse", "password_env"),
        LocalSecrets(StateDir.of(loaded)).values(),
    )
    return psycopg.conninfo.make_conninfo(
        host=warehouse.host,
        port=warehouse.port,
        dbname=warehouse.database,
        user=warehouse.user,
        password=password,
        connect_timeout=5,
    )


def connect(info: str, env: str, application: str = "dataops") -> psycopg.Connection:
    """An autocommit connection, or a NotReadyError that says how to bring the warehouse up."""
    try:
        return psycopg.connect(info, autocommit=True, application_name=application)
    except psycopg.OperationalError as exc:
        raise NotReadyError(
            f"cannot reach the {env} warehouse: {str(exc).strip().splitlines()[0]}",
            "dataops up",
        ) from None
