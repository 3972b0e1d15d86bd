"""Slim CI for dbt against the real dev warehouse and the manifest baked into dev's image."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration


def project_with(tmp_path: Path, model: str, edit: Callable[[str], str]) -> Path:
    """A copy of the dbt project with the SQL of the staging `model` edited."""
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / "models" / "staging" / "nycflights" / f"{model}.sql"
    before = path.read_text()
    path.write_text(edit(before))
    assert path.read_text() != before
    return project


def descendants(manifest: dict, unique_id: str) -> set[str]:
    """The models downstream of `unique_id`, from the manifest's child map (not dbt's selector)."""
    found: set[str] = set()
    todo = [unique_id]
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child.startswith("model.") and child not in found:
                found.add(child)
                todo.append(child)
    return found


def schemas_like(conn: psycopg.Connection, prefix: str) -> list[str]:
    rows = conn.execute(
        "select nspname from pg_namespace where nspname = %s or nspname like %s",
        (prefix, prefix.replace("_", r"\_") + r"\_%"),
    ).fetchall()
    return sorted(r[0] for r in rows)


def test_a_changed_staging_model_builds_exactly_it_and_its_descendants(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    project = project_with(tmp_path, "stg_nycflights__airports", lambda sql: "-- changed\n" + sql)

    result = run_dataops(
        "ci",
        "dbt",
        "--env",
        "dev",
        "--project-dir",
        str(project),
        "--schema",
        "ci_slim_test",
        "--json",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    changed = "model.flights.stg_nycflights__airports"
    graph = json.loads(Path(report["run_results"]).with_name("manifest.json").read_text())
    expected = {changed} | descendants(graph, changed)
    assert len(expected) >= 2  # the change has descendants, or this would prove little
    run_results = json.loads(Path(report["run_results"]).read_text())
    built = {r["unique_id"] for r in run_results["results"] if r["unique_id"].startswith("model.")}
    assert built == expected
    assert all(r["status"] in ("success", "pass") for r in run_results["results"])
    reasons = {s["unique_id"]: s["reason"] for s in report["selected"]}
    assert reasons[changed] == "modified: SQL changed"
    for other in expected - {changed}:
        assert reasons[other] == "downstream of stg_nycflights__airports"
    # The selection is printed for people too (stderr), and the CI schemas are gone.
    assert f"{changed}: modified: SQL changed" in result.stderr
    assert report["dropped_schemas"] and all(
        s.startswith("ci_slim_test") for s in report["dropped_schemas"]
    )
    assert schemas_like(ready, "ci_slim_test") == []
    assert (
        ready.execute(
            "select count(*) from dataops.ci_schemas where schema_name = 'ci_slim_test'"
        ).fetchone()[0]
        == 0
    )


def test_an_unchanged_project_builds_nothing(ready: psycopg.Connection) -> None:
    result = run_dataops("ci", "dbt", "--env", "dev", "--schema", "ci_unchanged", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["selected"] == [] and report["executed_models"] == []
    assert "nothing to build" in result.stderr


def test_a_failing_test_fails_slim_ci_and_still_drops_its_schemas(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    # Every airline gets the same code: the unique test on carrier_code must fail.
    project = project_with(
        tmp_path,
        "stg_nycflights__airlines",
        lambda sql: sql.replace("carrier as carrier_code", "'AA' as carrier_code"),
    )
    result = run_dataops(
        "ci", "dbt", "--env", "dev", "--project-dir", str(project), "--schema", "ci_failing"
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "unique_stg_nycflights__airlines_carrier_code" in result.stdout + result.stderr
    assert "slim CI failed in ci_failing" in result.stderr
    assert schemas_like(ready, "ci_failing") == []


def test_sweep_drops_only_ci_schemas_older_than_the_age(ready: psycopg.Connection) -> None:
    for name, age in (("ci_sweep_old", "2 days"), ("ci_sweep_new", "1 minute")):
        ready.execute(f"drop schema if exists {name}_marts cascade")
        ready.execute(f"create schema {name}_marts authorization dataops_dev")  # as CI would
        ready.execute(
            "insert into dataops.ci_schemas (schema_name, created_at, schemas)"
            " values (%s, now() - %s::interval, %s) on conflict (schema_name) do update"
            " set created_at = excluded.created_at, schemas = excluded.schemas",
            (name, age, [f"{name}_marts"]),
        )
    try:
        dry = run_dataops("ci", "sweep", "--env", "dev", "--older-than", "1d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would drop ci_sweep_old" in dry.stdout
        assert schemas_like(ready, "ci_sweep_old") == ["ci_sweep_old_marts"]

        swept = run_dataops("ci", "sweep", "--env", "dev", "--older-than", "1d", "--json")
        assert swept.returncode == 0, swept.stderr
        names = [s["schema"] for s in json.loads(swept.stdout)["schemas"]]
        assert "ci_sweep_old" in names and "ci_sweep_new" not in names
        assert schemas_like(ready, "ci_sweep_old") == []
        assert schemas_like(ready, "ci_sweep_new") == ["ci_sweep_new_marts"]
    finally:
        ready.execute("drop schema if exists ci_sweep_new_marts cascade")
        ready.execute("delete from dataops.ci_schemas where schema_name like 'ci_sweep_%'")


def test_sweep_rejects_an_age_it_cannot_read(ready: psycopg.Connection) -> None:
    result = run_dataops("ci", "sweep", "--older-than", "yesterday")
    assert result.returncode == 2
    assert "30m, 24h, 7d" in result.stderr


def test_sweep_refuses_a_registered_schema_its_role_does_not_own(
    ready: psycopg.Connection,
) -> None:
    """A registry row naming a schema someone else made (here the admin): the sweep refuses
    before any DROP, and both that schema and its table survive."""
    ready.execute("drop schema if exists ci_foreign_marts cascade")
    ready.execute("create schema ci_foreign_marts")  # as the admin, not dev's role
    ready.execute("create table ci_foreign_marts.keep_me as select 1 as id")
    ready.execute(
        "insert into dataops.ci_schemas (schema_name, created_at, schemas)"
        " values ('ci_foreign', now() - interval '3 days', %s) on conflict (schema_name)"
        " do update set created_at = excluded.created_at, schemas = excluded.schemas",
        (["ci_foreign_marts"],),
    )
    try:
        swept = run_dataops("ci", "sweep", "--env", "dev", "--older-than", "1d")
        assert swept.returncode == 1, swept.stdout + swept.stderr
        assert "ci_foreign_marts belong to another role (dataops), not dataops_dev" in swept.stderr
        assert "Traceback" not in swept.stderr
        assert ready.execute("select id from ci_foreign_marts.keep_me").fetchall() == [(1,)]
    finally:
        ready.execute("drop schema if exists ci_foreign_marts cascade")
        ready.execute("delete from dataops.ci_schemas where schema_name = 'ci_foreign'")


def test_a_schema_of_another_branchs_run_is_never_built_or_dropped(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    """Branch `feat` (+schema: staging -> ci_feat_staging) and branch `feat-staging` (CI schema
    ci_feat_staging) meet in one schema: the second run stops before any DDL, and the other
    run's schema and table survive."""
    ready.execute("drop schema if exists ci_feat_staging cascade")
    ready.execute("create schema ci_feat_staging authorization dataops_dev")
    ready.execute("create table ci_feat_staging.other_branch as select 7 as id")
    ready.execute(
        "insert into dataops.ci_schemas (schema_name, schemas) values (%s, %s)"
        " on conflict (schema_name) do update set schemas = excluded.schemas",
        ("ci_feat_staging", ["ci_feat_staging"]),
    )
    project = project_with(tmp_path, "stg_nycflights__airports", lambda sql: "-- b\n" + sql)
    try:
        result = run_dataops(
            "ci", "dbt", "--env", "dev", "--project-dir", str(project), "--schema", "ci_feat"
        )
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert "ci_feat_staging belong to another registered CI run" in result.stderr
        assert ready.execute("select id from ci_feat_staging.other_branch").fetchall() == [(7,)]
        assert schemas_like(ready, "ci_feat") == ["ci_feat_staging"]
    finally:
        ready.execute("drop schema if exists ci_feat_staging cascade")
        ready.execute("delete from dataops.ci_schemas where schema_name = 'ci_feat_staging'")
