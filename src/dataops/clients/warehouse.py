"""Connections to a PostgreSQL warehouse."""

from __future__ import annotations

import psycopg

from dataops.core.config import WarehouseConfig
from dataops.errors import NotReadyError


def conninfo(config: WarehouseConfig, password: str) -> str:
    return psycopg.conninfo.make_conninfo(
        host=config.host,
        port=config.port,
        dbname=config.database,
        user=config.user,
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
