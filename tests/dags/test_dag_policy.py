"""The team's own policy for DAGs (separate from the toolkit's integrity checks).

Exceptions go in policy_exceptions.yml with a reason, never as skips here.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.dags.conftest import HERE

EXCEPTIONS: dict[str, dict[str, str]] = yaml.safe_load((HERE / "policy_exceptions.yml").read_text())


def allowed(dag_id: str, rule: str) -> bool:
    return rule in EXCEPTIONS.get(dag_id, {})


@pytest.fixture(scope="module")
def dags(parsed: dict[str, Any]) -> dict[str, Any]:
    assert parsed["dags"], "no DAGs parsed"
    return dict(parsed["dags"])


def test_every_dag_has_an_owner(dags: dict[str, Any]) -> None:
    bad = [
        d for d, dag in dags.items() if dag["owner"] in ("", "airflow") and not allowed(d, "owner")
    ]
    assert bad == []


def test_every_dag_has_tags(dags: dict[str, Any]) -> None:
    bad = [d for d, dag in dags.items() if len(dag["tags"]) < 2 and not allowed(d, "tags")]
    assert bad == []  # env:<name> is always there; at least one tag of the team's own


def test_every_task_retries_at_least_twice(dags: dict[str, Any]) -> None:
    bad = [d for d, dag in dags.items() if dag["retries"] < 2 and not allowed(d, "retries")]
    assert bad == []
