"""The pages of the toolkit's Airflow plugin (`plugin.py`): a Releases page for its environment,
and the results page of each dbt step (its task's "dbt results" link).

Airflow 3's documented way (`fastapi_apps` + `external_views`): a FastAPI app mounted at
/dataops in the api-server, and a "Releases" entry in the UI's navigation. Airflow does not
authenticate plugin routes by itself, so every route depends on Airflow's own `get_user` (the
JWT of the UI's session cookie, or a bearer token): anonymous requests get 401.

It reads only its own environment: the active release from the deployment's active file, the
release record from its own registry, the history from its own warehouse (where the CLI also
records what the upstream environment would promote: the `candidate` rows); dbt results come
from the task's XCom in this deployment's Airflow database, behind Airflow's DAG permissions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from dataops.airflow.bundle import active_release_id, registry_client
from dataops.airflow.runtime import environment, registry
from dataops.core.dbt_artifacts import PLUGIN_PREFIX, RESULTS_ROUTE, RESULTS_XCOM
from dataops.core.promotion import RELEASE_MEDIA, RELEASES_REPO
from dataops.core.release_page import page_data, render, render_dbt_results
from dataops.core.release_record import ReleaseRecord

PREFIX = PLUGIN_PREFIX
app = FastAPI(title="dataops", description="Releases of this deployment's environment")


def _history(env: str, limit: int = 200) -> list[dict[str, Any]]:
    import psycopg

    uri = os.environ.get(f"AIRFLOW_CONN_WAREHOUSE_{env.upper()}", "")
    if not uri:
        return []
    with psycopg.connect(uri, connect_timeout=5) as c:
        rows = c.execute(
            "select id, release_id, action, actor, at, ok, detail from dataops.release_history"
            " order by id desc limit %s",
            (limit,),
        ).fetchall()
    return [
        {
            "id": r[0],
            "release_id": r[1],
            "action": r[2],
            "actor": r[3],
            "at": r[4].isoformat(timespec="seconds"),
            "ok": r[5],
            "detail": r[6],
        }
        for r in rows
    ]


def _record(env: str, release_id: str) -> ReleaseRecord:
    with registry_client(env) as client:
        payload = client.artifact_layer(RELEASES_REPO, release_id, RELEASE_MEDIA)
    return ReleaseRecord.parse(payload, f"{release_id} in {env}'s registry")


def releases(env: str) -> dict[str, Any]:
    active = active_release_id(Path(os.environ.get("DATAOPS_ACTIVE_FILE", "/nonexistent")))
    record = _record(env, active) if active else None
    return page_data(env, active, record, _history(env))


@app.get("/releases", response_model=None)
def releases_page(
    request: Request, user: Annotated[Any, Depends(get_user)]
) -> HTMLResponse | JSONResponse:
    """The Releases page (HTML), or its data with `Accept: application/json`."""
    data = releases(environment())
    if _wants_json(request):
        return JSONResponse(data)
    return HTMLResponse(render(data, registry()))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def dbt_results(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """The `dbt_results` XCom of one dbt step (a JSON string), or None."""
    from airflow.models.xcom import XComModel

    query = XComModel.get_many(
        run_id=run_id, key=RESULTS_XCOM, task_ids=task_id, dag_ids=dag_id, map_indexes=map_index
    )
    row = session.scalars(query).first()
    value = row.value if row is not None else None
    for _ in range(3):  # stored as JSON; the operator pushes a JSON string
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value if isinstance(value, dict) else None


@app.get(
    RESULTS_ROUTE.removeprefix(PREFIX) + "/{dag_id}/{run_id}/{task_id}",
    response_model=None,
    dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.XCOM))],
)
def dbt_results_page(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    session: SessionDep,
    map_index: int = -1,
) -> HTMLResponse | JSONResponse:
    """Which dbt models and tests one dbt step ran and how each ended (HTML, or JSON)."""
    data = dbt_results(session, dag_id, run_id, task_id, map_index)
    if data is None:
        raise HTTPException(404, f"no dbt results for {dag_id} / {run_id} / {task_id}")
    data = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, **data}
    if _wants_json(request):
        return JSONResponse(data)
    return HTMLResponse(render_dbt_results(data))
