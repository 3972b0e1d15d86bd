"""A secrets backend that records every connection or variable lookup and finds nothing.

`parse_dags` names it as Airflow's `[secrets] backend` (a public extension point: Airflow asks
the configured backend first, for the model's and the task SDK's lookups alike), so a DAG file
that reads a Connection or a Variable while it is parsed is caught without patching Airflow.
"""

from __future__ import annotations

from airflow.secrets.base_secrets import BaseSecretsBackend

LOOKUPS: list[str] = []


class LookupTrap(BaseSecretsBackend):
    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        LOOKUPS.append(f"connection({conn_id})")
        raise RuntimeError(f"connection {conn_id!r} looked up while parsing DAGs")

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        LOOKUPS.append(f"variable({key})")
        raise RuntimeError(f"variable {key!r} looked up while parsing DAGs")
