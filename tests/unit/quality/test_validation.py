"""`dataops validate`'s rules that need no service (quality/validation.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from dataops.clients import dbt
from dataops.core.config import load_config
from dataops.core.pipeline import PipelineSpec, load_spec
from dataops.quality.validation import selection_problems, smoke_problems, validate_project
from tests.conftest import PROJECT
from tests.conftest import ROOT as REPO

ROOT = PROJECT  # the fixture project, not the working tree's
STAGES = "      stages: [[airlines, airports, planes, weather], [flights]]"


def config_with_stages(tmp_path: Path, stages: str) -> Path:
    text = (ROOT / "dataops.yml").read_text()
    assert STAGES in text
    path = tmp_path / "dataops.yml"
    path.write_text(text.replace(STAGES, f"      stages: {stages}"))
    return path


def test_a_smoke_stage_naming_a_missing_pipeline_is_named_with_its_line(tmp_path: Path) -> None:
    path = config_with_stages(tmp_path, "[[customers], [orders_daily, customers]]")
    loaded = load_config(path)
    problems = smoke_problems(loaded, {"customers", "orders"})
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "customers]" in text
    )
    assert problems == [
        f"{path}:{line}:30: environments.staging.smoke.stages: 'orders_daily' is no "
        "pipeline of this project (dags/pipelines/ has: customers, orders); remove it from the "
        "stage or add dags/pipelines/orders_daily.yml"
    ]


def test_smoke_stages_of_existing_pipelines_pass(tmp_path: Path) -> None:
    loaded = load_config(config_with_stages(tmp_path, "[[customers, orders]]"))
    assert smoke_problems(loaded, {"customers", "orders"}) == []
    assert len(smoke_problems(loaded, set())) == 2  # nothing passes vacuously


# -- dbt.select: what each spec selects, by dbt's selector on a parse of the project ----------


def flights_copy(tmp_path: Path, selects: dict[str, str]) -> Path:
    """The reference project's dataops.yml, specs, stubs, migrations and dbt project in
    `tmp_path`, with the `dbt.select` of the specs in `selects` ({pipeline: selection})."""
    for name in ("dbt_project", "migrations", "dags"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dataops.yml", tmp_path / "dataops.yml")
    for pipeline, selection in selects.items():
        spec = tmp_path / "dags" / "pipelines" / f"{pipeline}.yml"
        text, count = re.subn(r'(?m)^  select: ".*"$', f'  select: "{selection}"', spec.read_text())
        assert count == 1
        spec.write_text(text)
    return tmp_path / "dataops.yml"


def validated(config: Path) -> tuple[list[str], list[str], list[str]]:
    """(problems, lines found fine, lines of checks skipped) of `dataops validate`'s rules."""
    found: list[str] = []
    skipped: list[str] = []
    problems = validate_project(load_config(config), found.append, skipped.append)
    return problems, found, skipped


def select_at(config: Path, pipeline: str) -> str:
    spec = config.parent / "dags" / "pipelines" / f"{pipeline}.yml"
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "  select:" in t)
    return f"dags/pipelines/{pipeline}.yml:{line}:11: dbt.select"


def test_a_dbt_select_that_selects_nothing_is_refused_with_its_line(tmp_path: Path) -> None:
    config = flights_copy(
        tmp_path,
        {
            "airlines": "stg_nycflights__airline",  # a typo
            "flights": "stg_nycflights__flights+ tag:nightly",  # one criterion matches nothing
            "planes": "model:stg_nycflights__planes",  # no such selector method
        },
    )
    problems, found, skipped = validated(config)
    listing = "lists what it selects)"
    assert problems == [
        f"{select_at(config, 'airlines')}: 'stg_nycflights__airline' selects no node of dbt "
        "project 'flights' (did you mean stg_nycflights__airlines?); fix the selection "
        f"(`dbt ls --select 'stg_nycflights__airline'` in dbt_project {listing}",
        f"{select_at(config, 'flights')}: 'tag:nightly' of 'stg_nycflights__flights+ "
        "tag:nightly' matches no node of dbt project 'flights'; fix the selection (`dbt ls "
        f"--select 'stg_nycflights__flights+ tag:nightly'` in dbt_project {listing}",
        f"{select_at(config, 'planes')}: dbt refuses 'model:stg_nycflights__planes': Runtime "
        "Error\n  'model' is not a valid method name; write it in dbt's node selection syntax "
        f"(`dbt ls --select 'model:stg_nycflights__planes'` in dbt_project {listing}",
    ]
    assert skipped == []
    assert not any("dbt.select" in line for line in found)


def test_selections_with_graph_operators_methods_and_paths_pass(tmp_path: Path) -> None:
    config = flights_copy(
        tmp_path,
        {
            "airlines": "+fct_flights",
            "airports": "path:models/staging/nycflights/stg_nycflights__airports.sql",
            "flights": "1+int_flights_joined_to_weather+ config.materialized:table",
            "planes": "stg_nycflights__planes,resource_type:model",
            "weather": "@stg_nycflights__weather",
        },
    )
    problems, found, skipped = validated(config)
    assert problems == []
    assert skipped == []
    assert "dags/pipelines/: dbt.select of 5 spec(s) selects nodes of dbt project 'flights'" in (
        found
    )
    assert not (tmp_path / "dbt_project" / "target").exists()  # dbt wrote nothing there
    assert not (tmp_path / "dbt_project" / "logs").exists()


def test_a_dbt_project_that_does_not_parse_is_named(tmp_path: Path) -> None:
    config = flights_copy(tmp_path, {})
    model = tmp_path / "dbt_project" / "models" / "marts" / "flights" / "fct_flights.sql"
    model.write_text(model.read_text() + "\n{{ ref('stg_nycflights__airplanes') }}\n")
    problems, _, _ = validated(config)
    assert len(problems) == 1
    assert problems[0].startswith(
        "dbt_project/models/marts/flights/fct_flights.sql: dbt parse failed, so no spec's "
        "dbt.select could be checked: Compilation Error\n"
    )
    assert (
        "depends on a node named 'stg_nycflights__airplanes' which was not found" in (problems[0])
    )


def acme_spec(tmp_path: Path, selection: str) -> tuple[Path, list[tuple[Path, PipelineSpec]]]:
    """A project whose dbt project is a copy of another team's (tests/fixtures/acme_dbt, two
    local packages, not installed) and one spec selecting `selection` in it."""
    shutil.copytree(REPO / "tests" / "fixtures" / "acme_dbt", tmp_path / "acme")
    config = yaml.safe_load((ROOT / "dataops.yml").read_text())
    config["dbt"] = {"project_dir": "acme/analytics", "packages": "deps"}
    (tmp_path / "dataops.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    spec = tmp_path / "dags" / "pipelines" / "airlines.yml"
    spec.parent.mkdir(parents=True)
    text = (ROOT / "dags" / "pipelines" / "airlines.yml").read_text()
    spec.write_text(re.sub(r'(?m)^  select: ".*"$', f'  select: "{selection}"', text))
    return tmp_path / "dataops.yml", [(spec, load_spec(spec))]


def test_packages_not_installed_skip_the_check_and_say_how_to_enable_it(tmp_path: Path) -> None:
    config, specs = acme_spec(tmp_path, "fct_region_revenue_typo")
    skipped: list[str] = []
    assert selection_problems(load_config(config), specs, print, skipped.append) == []
    assert skipped == [
        "dbt.select of the pipeline specs not checked: acme/analytics/packages.yml's "
        "../packages/acme_utils, ../packages/acme_dates not installed in "
        "acme/analytics/dbt_packages/ (validate downloads nothing); run `dbt deps` in "
        "acme/analytics to check them"
    ]
    assert not (tmp_path / "acme" / "analytics" / "dbt_packages").exists()


def test_installed_packages_let_another_teams_project_be_checked(tmp_path: Path) -> None:
    config, specs = acme_spec(tmp_path, "+fct_region_revenues customers_snapshot")
    project = tmp_path / "acme" / "analytics"
    deps = dbt.run(["deps"], project, dbt.environment(project, tmp_path / "t", tmp_path / "l"))
    assert deps.returncode == 0, deps.stdout + deps.stderr  # local packages: no network
    skipped: list[str] = []
    problems = selection_problems(load_config(config), specs, print, skipped.append)
    assert skipped == []
    assert problems == [
        f"dags/pipelines/airlines.yml:{problems[0].split(':')[1]}:11: dbt.select: "
        "'+fct_region_revenues' of '+fct_region_revenues customers_snapshot' matches no node "
        "of dbt project 'acme_analytics' (did you mean fct_region_revenue?); fix the selection "
        "(`dbt ls --select '+fct_region_revenues customers_snapshot'` in acme/analytics lists "
        "what it selects)"
    ]
