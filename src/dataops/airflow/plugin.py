"""The Airflow plugin every deployment loads: a Releases page for its environment.

Airflow 3's documented way (`fastapi_apps` + `external_views`): a FastAPI app mounted at
/dataops in the api-server, and a "Releases" entry in the UI's navigation. Airflow does not
authenticate plugin routes by itself, so every route depends on Airflow's own `get_user` (the
JWT of the UI's session cookie, or a bearer token): anonymous requests get 401.

It reads only its own environment: the active release from the deployment's active file, the
release record from its own registry, the history from its own warehouse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from dataops.airflow.bundle import active_release_id, registry_client
from dataops.airflow.runtime import environment, registry
from dataops.core.promotion import RELEASE_MEDIA, RELEASES_REPO
from dataops.core.release_page import page_data, render

PREFIX = "/dataops"
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


def _record(env: str, release_id: str) -> dict[str, Any]:
    with registry_client(env) as client:
        return dict(json.loads(client.artifact_layer(RELEASES_REPO, release_id, RELEASE_MEDIA)))


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
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(data)
    return HTMLResponse(render(data, registry()))


class DataopsPlugin(AirflowPlugin):
    name = "dataops"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "dataops releases"}]
    external_views = [
        {
            "name": "Releases",
            "href": f"{PREFIX}/releases",
            "destination": "nav",
            "url_route": "releases",
        }
    ]
