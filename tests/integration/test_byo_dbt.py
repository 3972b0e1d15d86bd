"""Another team's dbt project (tests/fixtures/acme_dbt) through the toolkit, unchanged: its own
generate_schema_name, .sqlfluff, local packages, a seed and a snapshot.

The project-only tests need dbt but no platform; the rest run against the real dev warehouse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import yaml

from dataops.clients import dbt
from dataops.core.config import DbtConfig, DbtPackages
from dataops.core.pods import task_args
from dataops.errors import ConfigError, DataOpsError
from tests.conftest import ROOT, run_dataops
from tests.integration.conftest import dev_warehouse

pytestmark = pytest.mark.integration

FIXTURE = ROOT / "tests" / "fixtures" / "acme_dbt"
TARGETS = {"dev": "dev", "staging": "staging", "prod": "production", "ci": "ci"}
CRM = "acme_crm"
SELECT = "+fct_region_revenue customers_snapshot"  # the seed comes with `+`


def acme_copy(dest: Path) -> Path:
    """A copy of the acme fixture (its project and packages) at `dest`, packages not installed."""
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("dbt_packages"))
    return dest


def stranger(tmp_path: Path, **dbt_section: object) -> Path:
    """A checkout of the toolkit whose dataops.yml points at a copy of the acme project."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    acme_copy(project / "acme")
    for name in ("requirements.lock",):
        shutil.copy(ROOT / name, project / name)
    for name in ("images", "src", "dags", "migrations"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((ROOT / "dataops.yml").read_text())
    config["dbt"] = {"project_dir": "acme/analytics", **dbt_section}
    (project / "dataops.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def prepared(tmp_path: Path, source: Path, **config: object) -> dbt.PreparedProject:
    return dbt.prepare_project(
        DbtConfig.model_validate(config),
        source,
        tmp_path / "copy" / "dbt_project",
        TARGETS,
        tmp_path / "logs",
        lambda _: None,
    )


def nodes(manifest: Path) -> dict[str, str]:
    data = json.loads(manifest.read_text())
    return {
        uid: node["schema"]
        for uid, node in data["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }


# -- the project alone (dbt, no warehouse) ---------------------------------------------------------
def test_the_projects_own_schema_macro_is_wrapped_so_every_node_is_audited(
    tmp_path: Path,
) -> None:
    source = acme_copy(tmp_path / "acme")
    copy = prepared(tmp_path, source / "analytics")
    assert copy.name == "acme_analytics" and copy.profile == "acme_warehouse"
    assert copy.own_schema_macro and copy.packages == 2
    # The team's files are untouched; the copy carries the toolkit's profile and macros.
    own = (source / "analytics" / "macros" / "generate_schema_name.sql").read_text()
    assert "macro generate_schema_name(" in own
    assert "acme_warehouse:" in (copy.path / "profiles.yml").read_text()
    published = dbt.parse_manifest(copy.path, tmp_path / "published", tmp_path / "logs")
    audit = dbt.parse_manifest(
        copy.path, tmp_path / "audit", tmp_path / "logs", {"dataops_audit": "acme"}
    )
    before, after = nodes(published), nodes(audit)
    # The project's naming decides the published schemas (dev: target schema + custom) ...
    assert before["seed.acme_analytics.regions"] == "analytics_ref_data"
    assert before["snapshot.acme_analytics.customers_snapshot"] == "analytics_history"
    assert before["model.acme_analytics.fct_region_revenue"] == "analytics_mart"
    # ... and during the audit step every node is built in its audit twin instead: without the
    # wrapper, the project's own macro ignored dataops_audit and built straight into these.
    assert len(before) == 5
    assert after == {uid: schema + "__audit_acme" for uid, schema in before.items()}
    dbt.check_audit_routing(copy, published, tmp_path / "probe", tmp_path / "logs")


def test_a_dispatch_override_of_the_naming_is_honoured(tmp_path: Path) -> None:
    """A project with no generate_schema_name but a postgres__ override (custom schemas
    verbatim): the build copy publishes where plain dbt would, and still audits every node."""
    source = acme_copy(tmp_path / "acme")
    project = source / "analytics"
    (project / "macros" / "generate_schema_name.sql").write_text(
        "{% macro postgres__generate_schema_name(custom_schema_name, node) -%}\n"
        "{{ (custom_schema_name or target.schema) | trim }}\n"
        "{%- endmacro %}\n"
    )
    copy = prepared(tmp_path, project)  # runs dbt deps in the project
    plain = tmp_path / "plain"  # the project as dbt alone sees it, with a profile to parse
    shutil.copytree(project, plain)
    (plain / "profiles.yml").write_text(
        dbt.dbt_project.profiles_yml("acme_warehouse", ["local"], "local", "analytics", 1)
    )
    untouched = dbt.parse_manifest(plain, tmp_path / "untouched", tmp_path / "logs")
    assert not copy.own_schema_macro
    published = dbt.parse_manifest(copy.path, tmp_path / "published", tmp_path / "logs")
    assert nodes(published) == nodes(untouched)
    assert nodes(published)["seed.acme_analytics.regions"] == "ref_data"
    dbt.check_audit_routing(copy, published, tmp_path / "probe", tmp_path / "logs")


def test_a_node_that_would_skip_the_audit_schema_is_refused(tmp_path: Path) -> None:
    source = acme_copy(tmp_path / "acme")
    # A legacy snapshot names its schema itself: no generate_schema_name, no audit schema.
    (source / "analytics" / "snapshots" / "legacy_orders.sql").write_text(
        "{% snapshot legacy_orders %}\n"
        "{{ config(target_schema='history_legacy', unique_key='id', strategy='check',"
        " check_cols='all') }}\n"
        "select * from {{ source('crm', 'orders') }}\n"
        "{% endsnapshot %}\n"
    )
    copy = prepared(tmp_path, source / "analytics")
    published = dbt.parse_manifest(copy.path, tmp_path / "published", tmp_path / "logs")
    with pytest.raises(ConfigError) as refused:
        dbt.check_audit_routing(copy, published, tmp_path / "probe", tmp_path / "logs")
    message = str(refused.value)
    assert "snapshot.acme_analytics.legacy_orders would be built in 'history_legacy'" in message
    assert "generate_schema_name (wrapped by the toolkit)" in message
    assert "target_schema" in message  # the fix


def test_a_package_that_cannot_be_fetched_is_one_clear_error(tmp_path: Path) -> None:
    source = acme_copy(tmp_path / "acme")
    packages = source / "analytics" / "packages.yml"
    packages.write_text(
        packages.read_text() + "  - package: acme-internal/warehouse_utils\n    version: 1.0.0\n"
    )
    (source / "analytics" / "package-lock.yml").unlink()
    with pytest.raises(DataOpsError) as failed:
        prepared(tmp_path, source / "analytics")
    message = str(failed.value)
    assert "acme-internal/warehouse_utils (hub) must be downloaded" in message
    assert "dbt: {packages: vendored}" in message and "Traceback" not in message
    assert not (tmp_path / "copy" / "dbt_project").exists()  # nothing half-made

    # lint needs the package's macros: it runs dbt deps too, and says the same, exit 2.
    project = stranger(tmp_path / "lint")
    shutil.copy(packages, project / "acme" / "analytics" / "packages.yml")
    (project / "acme" / "analytics" / "package-lock.yml").unlink()
    linted = run_dataops(
        "lint",
        "--all",
        config=project / "dataops.yml",
        env={"DATAOPS_STATE_DIR": str(tmp_path / "state")},
    )
    assert linted.returncode == 2, linted.stdout + linted.stderr
    assert "acme-internal/warehouse_utils (hub) must be downloaded" in linted.stderr
    assert "Traceback" not in linted.stderr


def test_vendored_packages_need_no_download(tmp_path: Path) -> None:
    """A hub package the host cannot fetch, vendored: its checked-in folder is used as is."""
    source = acme_copy(tmp_path / "acme")
    project = source / "analytics"
    packages = project / "packages.yml"
    packages.write_text(
        packages.read_text() + "  - package: acme-internal/warehouse_utils\n    version: 1.0.0\n"
    )
    vendored = project / "dbt_packages"
    for name in ("acme_utils", "acme_dates"):
        shutil.copytree(source / "packages" / name, vendored / name)
    shutil.copytree(source / "packages" / "acme_dates", vendored / "warehouse_utils")
    (vendored / "warehouse_utils" / "dbt_project.yml").write_text(
        "name: warehouse_utils\nversion: '1.0.0'\nconfig-version: 2\n"
    )
    copy = prepared(tmp_path, project, packages="vendored")
    assert sorted(p.name for p in (copy.path / "dbt_packages").iterdir()) == [
        "acme_dates",
        "acme_utils",
        "warehouse_utils",
    ]
    dbt.parse_manifest(copy.path, tmp_path / "state", tmp_path / "logs")

    shutil.rmtree(vendored)
    with pytest.raises(ConfigError) as missing:
        prepared(tmp_path, project, packages=DbtPackages.VENDORED)
    assert "dbt.packages is vendored, but" in str(missing.value)


# -- lint ----------------------------------------------------------------------------------------
def test_lint_renders_its_macros_with_its_own_config_and_nothing_else(tmp_path: Path) -> None:
    project = stranger(tmp_path)
    # A config in a parent folder (as on a developer's machine) must not leak in.
    (tmp_path / ".sqlfluff").write_text("[sqlfluff]\ndialect = ansi\nmax_line_length = 10\n")
    config = project / "dataops.yml"
    env = {"DATAOPS_STATE_DIR": str(tmp_path / "state")}
    clean = run_dataops("lint", "--all", "--format", "json", config=config, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["checked"]["sql"] == 3 and report["findings"] == []
    assert "templater = dbt is replaced by the jinja templater" in clean.stderr

    # The team's rules apply (upper-case keywords), and its macros and its packages' render
    # (no TMP finding for acme_utils.cents_to_dollars, acme_dates.month_start, safe_ratio).
    model = project / "acme" / "analytics" / "models" / "staging" / "stg_crm__orders.sql"
    model.write_text(model.read_text().replace("SELECT", "select", 1))
    found = run_dataops("lint", "--all", "--format", "json", config=config, env=env)
    assert found.returncode == 1
    rules = [(f["file"], f["rule"]) for f in json.loads(found.stdout)["findings"]]
    assert rules == [("acme/analytics/models/staging/stg_crm__orders.sql", "CP01")]


def test_a_broken_sqlfluff_config_exits_2_with_sqlfluffs_reason(tmp_path: Path) -> None:
    project = stranger(tmp_path)
    config = project / "acme" / "analytics" / ".sqlfluff"
    config.write_text(config.read_text().replace("dialect = postgres", "dialect = postgress"))
    result = run_dataops(
        "lint",
        "--all",
        config=project / "dataops.yml",
        env={"DATAOPS_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sqlfluff gave no report" in result.stderr
    assert "KeyError: 'Unknown dialect'" in result.stderr  # sqlfluff's own words
    assert "Traceback" not in result.stderr


# -- slim CI and the dbt step against the dev warehouse ------------------------------------------
def make_crm(conn: psycopg.Connection) -> None:
    """The team's source schema in warehouse_dev (as the admin), readable by dev's role."""
    conn.execute(f"drop schema if exists {CRM} cascade")
    conn.execute(f"create schema {CRM}")
    conn.execute(
        f"create table {CRM}.customers (id int primary key, full_name text, region_code text)"
    )
    conn.execute(
        f"create table {CRM}.orders (id int primary key, customer_id int, ordered_at date,"
        " amount_cents int)"
    )
    conn.execute(
        f"insert into {CRM}.customers values (1, 'Ada', 'NE'), (2, 'Grace', 'SW'),"
        " (3, 'Edsger', 'MW')"
    )
    conn.execute(
        f"insert into {CRM}.orders values (10, 1, '2024-01-05', 1250),"
        " (11, 2, '2024-01-20', 990), (12, 3, '2024-02-02', 4000)"
    )
    conn.execute(f"grant usage on schema {CRM} to dataops_dev")
    conn.execute(f"grant select on all tables in schema {CRM} to dataops_dev")


def drop_published(conn: psycopg.Connection, prefix: str) -> None:
    """The schemas the acme project published under `prefix`_*, and their audit twins."""
    rows = conn.execute(
        "select nspname from pg_namespace where nspname like %s", (prefix + "\\_%",)
    ).fetchall()
    for (schema,) in rows:
        if schema != CRM:
            conn.execute(f'drop schema if exists "{schema}" cascade')


@pytest.fixture
def crm(platform_up: dict[str, str]) -> Iterator[psycopg.Connection]:
    with dev_warehouse(platform_up) as conn:
        make_crm(conn)
        yield conn
        conn.execute(f"drop schema if exists {CRM} cascade")


def test_slim_ci_with_no_baseline_builds_every_node_in_its_own_schemas(
    crm: psycopg.Connection, tmp_path: Path
) -> None:
    source = acme_copy(tmp_path / "acme")
    result = run_dataops(
        "ci",
        "dbt",
        "--env",
        "dev",
        "--project-dir",
        str(source / "analytics"),
        "--schema",
        "ci_acme",
        "--json",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert "no baseline for acme_analytics in dev (first run)" in result.stderr
    selected = {s["unique_id"]: s["reason"] for s in report["selected"]}
    assert selected["seed.acme_analytics.regions"] == "new"
    assert selected["snapshot.acme_analytics.customers_snapshot"] == "new"
    assert len(report["executed_models"]) == 3 and report["tests"] >= 8
    assert sorted(report["dropped_schemas"]) == [
        "ci_acme_history",
        "ci_acme_mart",
        "ci_acme_ref_data",
        "ci_acme_stg",
    ]
    left = crm.execute("select count(*) from pg_namespace where nspname like 'ci\\_acme%'")
    assert left.fetchone() == (0,)


def test_slim_ci_stops_before_any_ddl_when_a_node_would_leave_its_scope(
    crm: psycopg.Connection, tmp_path: Path
) -> None:
    """The data-loss case: the project routes custom schemas verbatim everywhere, so its seed
    lands in `ref_data`, a schema of dev's own role holding a table. Before, slim CI built there
    and then ran DROP SCHEMA ref_data CASCADE; now it stops before any change."""
    source = acme_copy(tmp_path / "acme")
    macro = source / "analytics" / "macros" / "generate_schema_name.sql"
    macro.write_text(macro.read_text().replace("target.name == 'production'", "true"))
    crm.execute("drop schema if exists ref_data cascade")
    crm.execute("create schema ref_data authorization dataops_dev")
    crm.execute("create table ref_data.sentinel as select 42 as kept")
    crm.execute("alter table ref_data.sentinel owner to dataops_dev")
    try:
        result = run_dataops(
            "ci", "dbt", "--env", "dev", "--project-dir", str(source / "analytics"),
            "--schema", "ci_scope",
        )  # fmt: skip
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert "slim CI stopped before any change" in result.stderr
        assert "seed.acme_analytics.regions in schema 'ref_data'" in result.stderr
        assert crm.execute("select kept from ref_data.sentinel").fetchall() == [(42,)]
        for schema in ("stg", "mart", "history", "ci_scope"):
            row = crm.execute("select count(*) from pg_namespace where nspname = %s", (schema,))
            assert row.fetchone() == (0,), schema
        registered = crm.execute(
            "select count(*) from dataops.ci_schemas where schema_name = 'ci_scope'"
        )
        assert registered.fetchone() == (0,)

        # A registry row that lists a schema outside its scope is refused by the sweep too.
        crm.execute(
            "insert into dataops.ci_schemas (schema_name, created_at, schemas)"
            " values ('ci_stale', now() - interval '3 days', %s)",
            (["ci_stale", "ref_data"],),
        )
        swept = run_dataops("ci", "sweep", "--env", "dev", "--older-than", "1d")
        assert swept.returncode == 1, swept.stdout + swept.stderr
        assert "the registry lists ref_data, which are not ci_stale or ci_stale_*" in swept.stderr
        assert crm.execute("select kept from ref_data.sentinel").fetchall() == [(42,)]
    finally:
        crm.execute("delete from dataops.ci_schemas where schema_name = 'ci_stale'")
        crm.execute("drop schema if exists ref_data cascade")


def run_transform(image: str, secrets: dict[str, str], target: str) -> subprocess.CompletedProcess:
    """The dbt step as the DAG's DockerOperator launches it: the image's task entrypoint with the
    task's arguments (core.pods.task_args), host network, the password as a mounted file."""
    from dataops.core.pipeline import TaskPlan

    task = TaskPlan("dbt", "transform", ("transform", "--select", SELECT), upstream=("load",))
    spec = SimpleNamespace(pipeline="acme")  # all task_args reads of a spec for the dbt step
    with tempfile.TemporaryDirectory() as folder:
        secret = Path(folder) / "secrets.env"
        secret.write_text(f"PGPASSWORD={secrets['DATAOPS_WAREHOUSE_DEV_PASSWORD']}\n")
        secret.chmod(0o444)  # the task runs as uid 10001
        Path(folder).chmod(0o755)
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "host",
             "-v", f"{folder}:/run/dataops:ro",
             "-e", "DATAOPS_SECRETS_FILE=/run/dataops/secrets.env",
             "-e", "PGHOST=127.0.0.1", "-e", "PGPORT=5432", "-e", "PGDATABASE=warehouse_dev",
             "-e", "PGUSER=dataops_dev", "-e", f"DBT_TARGET={target}",
             image, *task_args(spec, task, target)],  # type: ignore[arg-type]
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip


def test_its_image_publishes_through_the_quality_gate_with_seeds_and_snapshot_history(
    crm: psycopg.Connection, platform_up: dict[str, str], tmp_path: Path
) -> None:
    project = stranger(tmp_path, schema="acme", targets={"prod": "production"})
    built = run_dataops(
        "images", "build", "transform", "--json",
        config=project / "dataops.yml", env={"DATAOPS_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    assert "dbt deps: 2 package(s)" in built.stderr
    image = json.loads(built.stdout)["images"][0]["local"]
    try:
        first = run_transform(image, platform_up, "dev")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        # The seed was loaded inside write-audit-publish, and everything was published.
        assert crm.execute("select count(*) from acme_ref_data.regions").fetchone() == (3,)
        revenue = "select region_name, revenue from acme_mart.fct_region_revenue order by 1"
        assert crm.execute(revenue).fetchall()[0][0] == "Mid West"
        assert crm.execute("select count(*) from acme_history.customers_snapshot").fetchone() == (
            3,
        )

        # Ada moves region: the second run's snapshot keeps her old row and adds the new one.
        crm.execute(f"update {CRM}.customers set region_code = 'SW' where id = 1")
        second = run_transform(image, platform_up, "dev")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        history = crm.execute(
            "select region_code, dbt_valid_to is null from acme_history.customers_snapshot"
            " where id = 1 order by dbt_valid_from"
        ).fetchall()
        assert history == [("NE", False), ("SW", True)]

        # A negative order fails the package's generic test: nothing is published, the
        # snapshot's history and the marts stay as they were.
        before = crm.execute(revenue).fetchall()
        crm.execute(f"insert into {CRM}.orders values (13, 2, '2024-02-10', -500)")
        crm.execute(f"update {CRM}.customers set region_code = 'MW' where id = 2")
        third = run_transform(image, platform_up, "dev")
        assert third.returncode == 3, third.stdout[-3000:] + third.stderr[-3000:]
        assert "is_positive" in third.stdout + third.stderr
        assert crm.execute(revenue).fetchall() == before
        assert crm.execute("select count(*) from acme_history.customers_snapshot").fetchone() == (
            4,
        )
        # prod's dbt target is the team's name for it (dbt.targets).
        targets = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "cat", image,
             "/opt/dataops/dbt_project/.dataops-targets.json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(targets.stdout)["prod"] == "production"
    finally:
        drop_published(crm, "acme")
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)
