"""`dataops init`: a new project, its layout, its pins, and what it refuses (scaffold/)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dataops import __version__
from dataops.core.config import load_config
from dataops.errors import ConfigError, DataOpsError
from dataops.quality.validation import validate_project
from dataops.scaffold import project as scaffold
from dataops.scaffold.project import find_wheel, init_project, manifest, shift_ports

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toolkit's wheel, built once from this checkout (as `dataops init` does)."""
    return find_wheel(None, lambda _: None, out=tmp_path_factory.mktemp("wheel"))


def dataops(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataops.cli.main", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(project), *args], capture_output=True, text=True, check=True
    ).stdout


def test_every_shared_project_file_exists_in_the_checkout() -> None:
    for path in manifest("common"):
        assert (ROOT / path).exists(), f"files.txt [common] names {path}, which is gone"


def test_every_file_of_the_flights_example_exists_in_the_checkout() -> None:
    for path in manifest("flights"):
        assert (ROOT / path).exists(), f"files.txt [flights] names {path}, which is gone"


def test_the_wheel_carries_the_version_and_the_project_files(wheel: Path) -> None:
    assert wheel.name == f"dataops-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in manifest("common"):
        assert f"dataops/scaffold/files/{path}" in names
    assert "dataops/scaffold/minimal/dbt_project/dot-sqlfluff" in names
    shipped = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "src/dataops"], capture_output=True, text=True
    ).stdout.split()
    data = [p for p in shipped if not p.endswith((".py", "README.md"))]
    missing = [p for p in data if f"dataops/{p.removeprefix('src/dataops/')}" not in names]
    assert missing == [], "package data the wheel lacks (pyproject's package-data)"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert f"Version: {__version__}\n" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_a_new_project_is_a_repository_that_validates_and_lints(
    tmp_path: Path, wheel: Path
) -> None:
    created = init_project(tmp_path / "Acme Analytics", wheel=wheel)
    root = created.root
    assert created.project == "acme-analytics"
    for path in (
        "dags/pipelines/customers.yml",
        "dags/pipeline_customers.py",
        "dbt_project/.sqlfluff",
        "migrations/V1__dataops_schema.sql",
        "Makefile",
        ".ci/run",
        ".github/workflows/ci.yml",
        "infra/bootstrap.sh",
        "infra/apt-packages.txt",
        "infra/helm/prod/values.yaml",
        "tests/project/test_project.py",
        "tests/project/policy_exceptions.yml",
        f"vendor/{wheel.name}",
    ):
        assert (root / path).is_file(), path
    assert not (root / "src").exists(), "a project carries no toolkit source"
    leftovers = [
        str(p)
        for p in root.rglob("*")
        if p.is_file()
        and "/.git/" not in str(p)
        and p.suffix != ".whl"
        and re.search(r"@[A-Z_]+@", p.read_text(errors="replace"))
    ]
    assert leftovers == []
    assert f"dataops=={__version__}\n" in (root / "requirements.lock").read_text()
    assert "demo: up\n\t$(DATAOPS) migrate apply --env dev" in (root / "Makefile").read_text()
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "ls-files", "vendor").split() == [f"vendor/{wheel.name}"]
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert (
        git(root, "log", "--format=%s").strip()
        == f"Start acme-analytics with dataops {__version__}"
    )
    loaded = load_config(root / "dataops.yml")
    assert loaded.config.project == "acme-analytics"
    assert validate_project(loaded, lambda _: None, lambda _: None) == []
    linted = dataops(root, "lint", "--all")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "ok: 0 finding(s)" in linted.stderr


def test_the_flights_example_is_the_reference_project(tmp_path: Path, wheel: Path) -> None:
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "dataops/scaffold/files/dbt_project/models/marts/flights/fct_flights.sql" in shipped
    root = init_project(tmp_path / "flights", example="flights", wheel=wheel).root
    for path in ("dags/pipelines/flights.yml", "dbt_project/models/marts/flights/fct_flights.sql"):
        assert (root / path).read_bytes() == (ROOT / path).read_bytes()
    makefile = (root / "Makefile").read_text()
    assert "$(VENV)/bin/python scripts/nycflights13.py .dataops/nycflights13\n" in makefile
    assert "$(DATAOPS) data put .dataops/nycflights13\n" in makefile
    # The example's data script comes with it, and its tests pass in the new project.
    script_test = "tests/project/test_nycflights13_script.py"
    for path in ("scripts/nycflights13.py", script_test):
        assert (root / path).read_bytes() == (ROOT / path).read_bytes()
    script_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", script_test],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert script_tests.returncode == 0, script_tests.stdout[-3000:] + script_tests.stderr[-2000:]
    assert validate_project(load_config(root / "dataops.yml"), lambda _: None, lambda _: None) == []


def test_a_port_offset_moves_every_local_port(tmp_path: Path, wheel: Path) -> None:
    root = init_project(tmp_path / "second", wheel=wheel, port_offset=100).root
    config = load_config(root / "dataops.yml").config
    assert config.platform.postgres.port == 5532
    assert [e.registry.address for e in config.environments.values()] == [
        "127.0.0.1:5101",
        "127.0.0.1:5102",
        "127.0.0.1:5103",
    ]
    assert [e.airflow.url for e in config.environments.values()] == [
        "http://127.0.0.1:8180",
        "http://127.0.0.1:8181",
        "http://127.0.0.1:8182",
    ]
    assert "env_var('PGPORT', '5532')" in (root / "dbt_project/profiles.yml").read_text()
    assert shift_ports("    broker_port: 6381\n", 7) == "    broker_port: 6388\n"


def test_init_refuses_a_folder_with_anything_in_it_and_touches_nothing(
    tmp_path: Path, wheel: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        init_project(mine, wheel=wheel)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_interrupted_init_leaves_no_half_project(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    real = scaffold._git

    def failing(root: Path, *args: str) -> str:
        calls.append(args)
        if args[0] == "commit":
            raise DataOpsError("git commit failed: injected")
        return real(root, *args)

    monkeypatch.setattr(scaffold, "_git", failing)
    with pytest.raises(DataOpsError, match="injected"):
        init_project(tmp_path / "half", wheel=wheel)
    assert ("add", "--all") in calls, "the fault struck after the files were written"
    assert list(tmp_path.iterdir()) == []
    # and the next run makes the project
    monkeypatch.setattr(scaffold, "_git", real)
    assert init_project(tmp_path / "half", wheel=wheel).files > 30


def test_a_wheel_of_another_version_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "dataops-9.9.9-py3-none-any.whl"
    other.write_bytes(b"PK")
    with pytest.raises(ConfigError, match=f"not a wheel of dataops {__version__}"):
        find_wheel(other, lambda _: None, out=tmp_path)


ORDERS_SPEC = """\
pipeline: orders
description: Daily order lines from the shop, one file per day.
owner: shop-analytics
tags: [shop]
schedule: "@daily"
retries: 2
start_date: 2024-03-01
source:
  path: "orders/{interval_start:%Y%m%d}.csv"
target:
  table: raw.order_lines
  mode: append
  columns:
    order_id: bigint
    line_no: integer
    sku: text
    amount: numeric
    ordered_at: timestamptz
dbt:
  select: "int_order_revenue"
"""


def test_another_teams_pipeline_and_model_join_the_new_project(tmp_path: Path, wheel: Path) -> None:
    """A team adds a pipeline of another shape (daily appends, bigint ids) and a model of its
    own: validate accepts it; a spec selecting a model that does not exist is refused."""
    root = init_project(tmp_path / "shop", wheel=wheel).root
    (root / "dags/pipelines/orders.yml").write_text(ORDERS_SPEC)
    (root / "dags/pipeline_orders.py").write_text(
        (root / "dags/pipeline_customers.py").read_text().replace("customers", "orders")
    )
    (root / "migrations/V3__raw_order_lines.sql").write_text(
        "create table raw.order_lines (\n    order_id bigint,\n    line_no integer,\n"
        "    sku text,\n    amount numeric,\n    ordered_at timestamptz,\n"
        "    _dataops_batch text not null,\n    _dataops_interval_start timestamptz not null\n"
        ");\n"
    )
    models = root / "dbt_project/models/intermediate/shop"
    models.mkdir(parents=True)
    (root / "dbt_project/models/staging/crm/_crm__sources.yml").write_text(
        (root / "dbt_project/models/staging/crm/_crm__sources.yml").read_text()
        + "      - name: order_lines\n        description: One row per order line.\n"
    )
    (models / "int_order_revenue.sql").write_text(
        "select\n    order_id,\n    sum(amount) as revenue\n"
        "from {{ source('crm', 'order_lines') }}\ngroup by order_id\n"
    )
    loaded = load_config(root / "dataops.yml")
    assert validate_project(loaded, lambda _: None, lambda _: None) == []
    linted = dataops(root, "lint", "--all")
    assert linted.returncode == 0, linted.stdout + linted.stderr

    # The project's own tests (what its CI unit stage runs) cover the new pipeline.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "tests/project"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "PASSED tests/project/test_project.py::test_dbt_selection_matches_a_node[orders]" in (
        tests.stdout
    )
    assert " skipped" not in tests.stdout

    spec = root / "dags/pipelines/orders.yml"
    spec.write_text(ORDERS_SPEC.replace("int_order_revenue", "int_order_revenu"))
    problems = validate_project(load_config(root / "dataops.yml"), lambda _: None, lambda _: None)
    assert len(problems) == 1
    line = ORDERS_SPEC.splitlines().index('  select: "int_order_revenue"') + 1
    assert problems[0].startswith(f"dags/pipelines/orders.yml:{line}:11: dbt.select:"), problems
    assert "int_order_revenue" in problems[0]


def test_a_project_made_from_the_source_checkout_commits_the_wheel_it_built(
    tmp_path: Path,
) -> None:
    """Without --wheel the toolkit builds its wheel from this checkout, and the project's first
    commit holds it (and no build leftovers)."""
    root = init_project(tmp_path / "built").root
    assert git(root, "ls-files", "vendor").split() == [
        f"vendor/dataops-{__version__}-py3-none-any.whl"
    ]
    assert sorted(p.name for p in (root / "vendor").iterdir()) == [
        f"dataops-{__version__}-py3-none-any.whl"
    ]
