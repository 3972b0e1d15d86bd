"""dbt's artifacts as data: a manifest pointed at another database, and a build's results.

Pure JSON in and out; the transform task and slim CI both read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

_MANIFEST_SECTIONS = ("nodes", "sources", "seeds", "snapshots", "unit_tests")


@dataclass
class BuildSummary:
    """What one `dbt build` ran, from its run_results.json."""

    models: int = 0
    tests: int = 0
    failures: list[str] = field(default_factory=list)


def retarget_manifest(manifest: Path, out_dir: Path, database: str) -> Path:
    """A copy of a dbt manifest whose relations live in `database`.

    The image's manifest was compiled when the image was built, and the same image runs in
    every environment, each with its own warehouse database; deferred references must resolve
    in the database this run uses (Postgres cannot read across databases)."""
    document = json.loads(manifest.read_text())
    for section in _MANIFEST_SECTIONS:
        for node in (document.get(section) or {}).values():
            if node.get("database"):
                node["database"] = database
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
        if status in ("fail", "error"):
            message = (item.get("message") or "").strip().splitlines()
            result.failures.append(f"{status}: {unique_id}: {message[0] if message else ''}")
    return result
