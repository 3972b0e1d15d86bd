"""Slim CI's rules: the CI schema of a branch, and why each node of `state:modified+` was
selected. Pure: manifests come in as parsed JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def ci_schema_name(branch: str) -> str:
    """`ci_<branch>` as a Postgres identifier: lower case, [a-z0-9_], short enough for suffixes."""
    slug = re.sub(r"[^a-z0-9_]+", "_", branch.lower()).strip("_") or "detached"
    return f"ci_{slug}"[:40].rstrip("_")


@dataclass
class Selected:
    unique_id: str
    reason: str


def selection_reasons(
    current: dict[str, Any], baseline: dict[str, Any], selected: Iterable[str]
) -> list[Selected]:
    """Why each selected node was selected: what changed in it, or which changed parent it is
    downstream of (models, seeds and snapshots; tests follow their models)."""
    chosen = [u for u in selected if u.split(".")[0] in ("model", "seed", "snapshot")]
    nodes, old = current.get("nodes", {}), baseline.get("nodes", {})
    modified: dict[str, str] = {}
    for unique_id in chosen:
        node, before = nodes.get(unique_id, {}), old.get(unique_id)
        if before is None:
            modified[unique_id] = "new"
        elif node.get("checksum") != before.get("checksum"):
            modified[unique_id] = "modified: SQL changed"
        elif node.get("config") != before.get("config"):
            modified[unique_id] = "modified: config changed"
        elif node.get("description") != before.get("description") or node.get(
            "columns"
        ) != before.get("columns"):
            modified[unique_id] = "modified: description or columns changed"
        elif node.get("depends_on", {}).get("macros") and any(
            _macro_changed(current, baseline, m) for m in node["depends_on"]["macros"]
        ):
            modified[unique_id] = "modified: a macro it uses changed"
    parents = current.get("parent_map", {})
    reasons = []
    for unique_id in chosen:
        if unique_id in modified:
            reasons.append(Selected(unique_id, modified[unique_id]))
            continue
        ancestors = _ancestors(parents, unique_id) & set(modified)
        if ancestors:
            names = ", ".join(sorted(a.split(".")[-1] for a in ancestors))
            reasons.append(Selected(unique_id, f"downstream of {names}"))
        else:
            reasons.append(Selected(unique_id, "modified (dbt state:modified)"))
    return reasons


def _macro_changed(current: dict[str, Any], baseline: dict[str, Any], macro: str) -> bool:
    now = current.get("macros", {}).get(macro, {}).get("macro_sql")
    return bool(now != baseline.get("macros", {}).get(macro, {}).get("macro_sql"))


def _ancestors(parents: dict[str, list[str]], unique_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(parents.get(unique_id, []))
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(parents.get(parent, []))
    return seen
