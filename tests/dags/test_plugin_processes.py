"""The plugin's pages load in the api-server and not in a task process: a task never serves
them, and importing Airflow's API server cost every task on a Celery worker 1.5 s."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
if sys.argv[1] == "task":
    import airflow.sdk.execution_time.task_runner as task_runner
    task_runner.SUPERVISOR_COMMS = object()  # what the task runner's main() sets first
from dataops.airflow.plugin import DataopsPlugin
apps = DataopsPlugin.fastapi_apps
print("RESULT " + json.dumps({
    "apps": [a["url_prefix"] for a in apps],
    "routes": sorted(r.path for a in apps for r in a["app"].routes if "/dataops" in
        a["url_prefix"] + r.path and not r.path.startswith(("/docs", "/openapi", "/redoc"))),
    "links": [type(link).__name__ for link in DataopsPlugin.operator_extra_links],
    "views": [v["href"] for v in DataopsPlugin.external_views],
    "api_server_imported": "airflow.api_fastapi.core_api.security" in sys.modules,
    "web_imported": "dataops.airflow.web" in sys.modules,
}))
"""


def probe(kind: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def test_the_api_server_gets_the_pages() -> None:
    found = probe("api-server")
    assert found["apps"] == ["/dataops"]
    assert "/releases" in found["routes"]  # type: ignore[operator]
    assert any(str(r).startswith("/dbt/") for r in found["routes"])  # type: ignore[attr-defined]
    assert found["web_imported"] is True
    assert found["links"] == ["DbtResultsLink"]
    assert found["views"] == ["/dataops/releases"]


def test_a_task_process_skips_the_pages_and_keeps_the_link() -> None:
    found = probe("task")
    assert found["apps"] == []
    assert found["web_imported"] is False
    assert found["api_server_imported"] is False
    assert found["links"] == ["DbtResultsLink"]  # the task's "dbt results" link stays
    assert found["views"] == ["/dataops/releases"]
