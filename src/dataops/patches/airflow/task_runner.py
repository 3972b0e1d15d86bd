"""Whether this process is one Airflow's supervisor runs (a task, dag-processor or triggerer).

Targets apache-airflow 3.3.2 (apache-airflow-task-sdk 1.3.2). Private internal read: the module
global `SUPERVISOR_COMMS` of `airflow.sdk.execution_time.task_runner`, which the task runner
(and the dag-processor's and triggerer's children) set first thing, and the api-server never
does. Nothing is imported to find out: the module is looked up in `sys.modules` only, as
importing it in the api-server would cost it the task runner's imports.

`dataops.airflow.plugin` asks, so that a supervised process does not import the plugin's pages
(Airflow's API server, 1.5 s); tests/dags/test_plugin_processes.py sets the global as the task
runner does and checks both kinds of process.
"""

from __future__ import annotations

import sys

from dataops.patches.airflow import TARGET, TASK_SDK

TARGETS = (TARGET, TASK_SDK)
UPGRADE_CHECK = (
    "airflow/sdk/execution_time/task_runner.py: the module is still named so and still has a "
    "global SUPERVISOR_COMMS that a supervised process (task, dag-processor, triggerer child) "
    "sets before it loads plugins and the api-server never sets; run "
    "tests/dags/test_plugin_processes.py and look at a task's 'Pre Execute' time on a Celery "
    "worker (0.16 s, not 1.65 s)"
)
TASK_RUNNER = "airflow.sdk.execution_time.task_runner"


def in_supervised_process() -> bool:
    """A task (or dag-processor, triggerer) process: Airflow sets the task runner's
    SUPERVISOR_COMMS there, and nowhere in the api-server."""
    return getattr(sys.modules.get(TASK_RUNNER), "SUPERVISOR_COMMS", None) is not None
