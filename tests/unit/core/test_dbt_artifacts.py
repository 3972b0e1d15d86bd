"""dbt artifacts as data: manifest retargeting and the run summary (the dbt step and slim CI)."""

from __future__ import annotations

import json
from pathlib import Path

from dataops.core.dbt_artifacts import results_url, retarget_manifest, summarize


def test_retarget_manifest_points_every_relation_at_the_running_database(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "nodes": {
                    "model.p.a": {"database": "built_with", "schema": "s"},
                    "model.p.b": {
                        "database": "built_with",
                        "schema": "s",
                        "relation_name": '"built_with"."s"."b"',
                    },
                },
                "sources": {
                    "source.p.r.t": {
                        "database": "built_with",
                        "schema": "raw",
                        "relation_name": "built_with.raw.t",  # a source quoted differently
                    }
                },
                "unit_tests": {},
                "metadata": {"dbt_version": "1.11.0"},
            }
        )
    )
    out = retarget_manifest(manifest, tmp_path / "state", "warehouse_prod")
    document = json.loads(out.read_text())
    assert document["nodes"]["model.p.a"] == {"database": "warehouse_prod", "schema": "s"}
    assert document["nodes"]["model.p.b"]["relation_name"] == '"warehouse_prod"."s"."b"'
    assert document["sources"]["source.p.r.t"]["database"] == "warehouse_prod"
    assert document["sources"]["source.p.r.t"]["relation_name"] == "warehouse_prod.raw.t"
    assert document["metadata"] == {"dbt_version": "1.11.0"}
    assert json.loads(manifest.read_text())["nodes"]["model.p.a"]["database"] == "built_with"


def test_summary_counts_models_and_tests_and_names_failures(tmp_path: Path) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.p.a", "status": "success"},
                    {"unique_id": "test.p.unique_a_id.1", "status": "fail", "message": "Got 2"},
                    {"unique_id": "unit_test.p.a.t", "status": "pass"},
                    {"unique_id": "model.p.b", "status": "skipped"},
                ]
            }
        )
    )
    summary = summarize(results)
    assert (summary.models, summary.tests) == (2, 2)
    assert summary.failures == ["fail: test.p.unique_a_id.1: Got 2"]
    # Every node with its status: what the "dbt results" page of the task shows.
    assert [(n["unique_id"], n["status"]) for n in summary.nodes] == [
        ("model.p.a", "success"),
        ("test.p.unique_a_id.1", "fail"),
        ("unit_test.p.a.t", "pass"),
        ("model.p.b", "skipped"),
    ]
    assert summary.nodes[1]["message"] == "Got 2"
    assert summarize(tmp_path / "missing.json").failures == []


def test_the_results_address_quotes_the_run_id() -> None:
    url = results_url("flights", "manual__2013-06-01T00:00:00+00:00", "dbt")
    assert url == "/dataops/dbt/flights/manual__2013-06-01T00%3A00%3A00%2B00%3A00/dbt"
    assert results_url("d", "r/x", "t", 2) == "/dataops/dbt/d/r%2Fx/t?map_index=2"
