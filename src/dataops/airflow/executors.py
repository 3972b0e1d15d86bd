"""The deployments' LocalExecutor: Airflow's own, in a scheduler whose task supervisors notice a
task's exit at once (`dataops.patches.airflow.supervisor`; `[core] executor` names this class,
`dataops.airflow.executors.LocalExecutor`).

The scheduler imports this module before it starts the executor, which forks its worker
processes, so each worker's supervisor has the fix.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor as _AirflowLocalExecutor

from dataops.patches.airflow.supervisor import install

install()


class LocalExecutor(_AirflowLocalExecutor):
    """Airflow's LocalExecutor, unchanged; importing it installs the supervisor fix."""
