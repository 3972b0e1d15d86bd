"""The project checks (dataops.testing.project) on a copy of the fixture project: they pass on
it, and each planted fault fails its own check, naming the pipeline, and no other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, copy_project


def run_project_tests(project: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`pytest tests/project` in `project`, as the CI unit stage runs it; the failed test ids."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("DATAOPS_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "tests/project"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result, set(
        re.findall(r"^FAILED tests/project/test_project.py::(\S+)", result.stdout, re.M)
    )


def test_the_checks_pass_on_the_fixture_and_each_fault_fails_its_own(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / "tests" / "project").mkdir(parents=True)
    for name in ("test_project.py", "policy_exceptions.yml"):
        (project / "tests" / "project" / name).write_text(
            (ROOT / "tests" / "project" / name).read_text()
        )
    result, failed = run_project_tests(project)
    assert result.returncode == 0 and failed == set(), result.stdout[-4000:]
    assert " passed" in result.stdout and "test_dbt_selection" not in result.stdout

    dags = project / "dags"
    (dags / "pipeline_planes.py").unlink()  # a spec without its stub
    for name, old, new in [
        ("airlines", 'select: "stg_nycflights__airlines"', 'select: "stg_nowhere"'),
        ("weather", "owner: data-platform", "owner: airflow"),  # against the policy...
        ("airports", "retries: 2", "retries: 0"),  # ...allowed below, with the reason
    ]:
        spec = dags / "pipelines" / f"{name}.yml"
        spec.write_text(spec.read_text().replace(old, new))
    (project / "tests" / "project" / "policy_exceptions.yml").write_text(
        "airports: {retries: 'the vendor double-posts on a retry'}\nghost: {owner: 'gone'}\n"
    )
    (dags / "rogue.py").write_text(
        "from airflow.sdk import DAG, Variable\nVariable.get('x')\n"
        "dag = DAG('rogue', schedule=None)\n"
    )
    config = project / "dataops.yml"
    config.write_text(config.read_text().replace("[flights]]", "[flights, flight]]"))

    result, failed = run_project_tests(project)
    assert failed == {
        "test_dag_ids_equal_the_specs_and_stubs",
        "test_dbt_selection_matches_a_node[airlines]",
        "test_dag_follows_the_policy[weather]",
        "test_policy_exceptions_name_dags_and_rules",
        "test_other_dag_files_import_without_errors",
        "test_parsing_makes_no_lookups",
        "test_smoke_stages_name_pipelines_of_the_project",
    }, result.stdout[-6000:]
    assert "'flight' is no pipeline of this project" in result.stdout
    assert "dags/pipelines/airlines.yml:" in result.stdout and "dbt.select" in result.stdout
