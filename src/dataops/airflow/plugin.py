"""The Airflow plugin every deployment loads: the toolkit's pages (`web.py`: a Releases page in
the UI's navigation, each dbt step's results page) and the dbt step's "dbt results" link.

Every Airflow process loads every plugin, task processes too (for the macros). The pages import
Airflow's API server (FastAPI, its security and database dependencies: slow), which a task
never serves, so a task process skips them (the dag-processor's and triggerer's too; which kind
of process this is, `dataops.patches.airflow.task_runner` tells). On a LocalExecutor that cost
was hidden: its workers are forked from the scheduler, which had loaded the plugin. Each task
on a Celery worker paid it in its "Pre Execute".
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from dataops.airflow.operators import DbtResultsLink
from dataops.core.dbt_artifacts import PLUGIN_PREFIX
from dataops.patches.airflow.task_runner import in_supervised_process


def fastapi_apps() -> list[dict[str, Any]]:
    """The pages' FastAPI app, for every process but a supervised one (which serves none)."""
    if in_supervised_process():
        return []
    from dataops.airflow.web import app

    return [{"app": app, "url_prefix": PLUGIN_PREFIX, "name": "dataops releases"}]


class DataopsPlugin(AirflowPlugin):
    name = "dataops"
    fastapi_apps = fastapi_apps()
    operator_extra_links = [DbtResultsLink()]
    external_views = [
        {
            "name": "Releases",
            "href": f"{PLUGIN_PREFIX}/releases",
            "destination": "nav",
            "url_route": "releases",
        }
    ]
