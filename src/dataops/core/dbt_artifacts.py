"""dbt's artifacts as data: a manifest pointed at another database, and a build's results.

Pure JSON in and out; the transform task and slim CI both read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

_MANIFEST_SECTIONS = ("nodes", "sources", "seeds", "snapshots", "unit_tests")
# The dbt step's results as an XCom of its task, and the plugin page that shows them.
RESULTS_XCOM = "dbt_results"
PLUGIN_PREFIX = "/dataops"  # where the api-server mounts the plugin's pages
RESULTS_ROUTE = f"{PLUGIN_PREFIX}/dbt"
MAX_NODES = 2000  # an XCom is a row in Airflow's database: keep it bounded


@dataclass
class BuildSummary:
    """What one `dbt build` ran, from its run_results.json."""

    models: int = 0
    tests: int = 0
    failures: list[str] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)


def retarget_manifest(manifest: Path, out_dir: Path, database: str) -> Path:
    """A copy of a dbt manifest whose relations live in `database`.

    The image's manifest was compiled when the image was built, and the same image runs in
    every environment, each with its own warehouse database; deferred references must resolve
    in the database this run uses (Postgres cannot read across databases). A node's
    `relation_name` (the quoted name dbt renders) is renamed with its database."""
    document = json.loads(manifest.read_text())
    for section in _MANIFEST_SECTIONS:
        for node in (document.get(section) or {}).values():
            old = node.get("database")
            if old:
                node["database"] = database
                name = node.get("relation_name")
                for prefix in (f'"{old}".', f"{old}."):
                    if isinstance(name, str) and name.startswith(prefix):
                        node["relation_name"] = prefix.replace(old, database) + name[len(prefix) :]
                        break
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "manifest.json"
    target.write_text(json.dumps(document))
    return target


def summarize(run_results: Path) -> BuildSummary:
    result = BuildSummary()
    if not run_results.exists():
        return result
    for item in json.loads(run_results.read_text()).get("results", []):
        unique_id: str = item.get("unique_id", "")
        status = item.get("status")
        if unique_id.startswith("model."):
            result.models += 1
        elif unique_id.startswith(("test.", "unit_test.")):
            result.tests += 1
        message = (item.get("message") or "").strip().splitlines()
        if status in ("fail", "error"):
            result.failures.append(f"{status}: {unique_id}: {message[0] if message else ''}")
        if len(result.nodes) < MAX_NODES:
            result.nodes.append(
                {
                    "unique_id": unique_id,
                    "status": status,
                    "seconds": round(float(item.get("execution_time") or 0), 2),
                    "failures": item.get("failures"),
                    "message": (message[0] if message else "")[:300],
                }
            )
    return result


def results_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The address (same origin as the Airflow UI) of one dbt step's results page."""
    parts = "/".join(quote(str(p), safe="") for p in (dag_id, run_id, task_id))
    return f"{RESULTS_ROUTE}/{parts}" + (f"?map_index={map_index}" if map_index >= 0 else "")
