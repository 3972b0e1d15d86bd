"""The checks every project passes, as pytest tests the project collects and CI runs.

A project's `tests/project/test_project.py` holds `from dataops.testing.project import *`;
`dataops ci run --stage unit` runs `pytest tests/project`, where the team adds tests of its
own beside it. The project is the one `dataops` finds: `$DATAOPS_CONFIG`, else the nearest
`dataops.yml` at or above the working directory. The tests are parametrised over its pipeline
specs, so a failure names the pipeline:

- every DAG file imports without errors, and parsing makes no connection, variable or
  metadata-DB lookups (in a fresh interpreter, as Airflow's dag-processor would parse it);
- the DAG ids are the specs, and every spec has its `dags/pipeline_<name>.py` stub;
- every pipeline's DAG has an owner, a tag of the team's own and retries >= 2, unless
  `tests/project/policy_exceptions.yml` allows it, with the reason;
- dbt parses the project, and every spec's `dbt.select` matches a model, seed or snapshot;
- every smoke stage of dataops.yml names pipelines of the project;
- the committed Helm values are what dataops.yml renders (when the project has them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataops import __version__
from dataops.core.config import LoadedConfig, find_config, load_config
from dataops.core.helm import HELM_DIR, render
from dataops.core.pipeline import PipelineSpec, load_spec, spec_files
from dataops.errors import ConfigError
from dataops.quality.validation import selection_problems, smoke_problems

__all__ = [
    "dataops_project",
    "dbt_selection_problems",
    "parsed_dags",
    "policy_exceptions",
    "test_dag_file_imports_without_errors",
    "test_dag_follows_the_policy",
    "test_dag_ids_equal_the_specs_and_stubs",
    "test_dbt_selection_matches_a_node",
    "test_helm_values_are_what_dataops_yml_renders",
    "test_other_dag_files_import_without_errors",
    "test_parsing_makes_no_lookups",
    "test_policy_exceptions_name_dags_and_rules",
    "test_smoke_stages_name_pipelines_of_the_project",
]

# The team's exceptions to the policy, relative to the project's root: {dag_id: {rule: reason}}.
POLICY_EXCEPTIONS = Path("tests") / "project" / "policy_exceptions.yml"
POLICY_RULES = ("owner", "tags", "retries")


def parse_dag_folder(folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse a DAG folder in a fresh interpreter (`dataops.testing.parse_dags`); its spec cache
    is a new folder unless `env` names one (DATAOPS_CACHE_DIR)."""
    cache = {"DATAOPS_CACHE_DIR": tempfile.mkdtemp(prefix="dataops-spec-cache-")}
    result = subprocess.run(
        [sys.executable, "-m", "dataops.testing.parse_dags", str(folder)],
        env={**os.environ, **cache, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=folder.parent,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


def _root() -> Path:
    """The project's folder, known at collection (the tests are parametrised over its specs)."""
    explicit = os.environ.get("DATAOPS_CONFIG")
    if explicit:
        return Path(explicit).resolve().parent
    here = Path.cwd().resolve()
    return next((f for f in (here, *here.parents) if (f / "dataops.yml").is_file()), here)


ROOT = _root()
PIPELINES = [path.stem for path in spec_files(ROOT / "dags" / "pipelines")]


def _loads(path: Path) -> PipelineSpec | None:
    try:
        return load_spec(path)
    except ConfigError:
        return None  # the DAG integrity tests name what is wrong with it


# The pipelines with a dbt step (and those whose spec does not load: their test says why).
DBT_PIPELINES = [
    path.stem
    for path in spec_files(ROOT / "dags" / "pipelines")
    if (spec := _loads(path)) is None or spec.dbt is not None
]


@pytest.fixture(scope="session")
def dataops_project() -> LoadedConfig:
    """The project's dataops.yml, loaded and validated."""
    return load_config(find_config(ROOT))


@pytest.fixture(scope="session")
def parsed_dags(dataops_project: LoadedConfig) -> dict[str, Any]:
    """The project's dags/ folder parsed once: ids, import errors, each DAG's settings."""
    return parse_dag_folder(dataops_project.root / "dags")


@pytest.fixture(scope="session")
def policy_exceptions(dataops_project: LoadedConfig) -> dict[str, dict[str, str]]:
    """{dag_id: {rule: reason}} from tests/project/policy_exceptions.yml ({} without one)."""
    path = dataops_project.root / POLICY_EXCEPTIONS
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


@pytest.fixture(scope="session")
def dbt_selection_problems(dataops_project: LoadedConfig) -> list[str]:
    """`dataops validate`'s check of every spec's dbt.select, once: dbt parses the project (no
    warehouse connection) and its own selector lists each selection."""
    folder = dataops_project.root / "dags" / "pipelines"
    specs = [(path, spec) for path in spec_files(folder) if (spec := _loads(path)) is not None]
    skipped: list[str] = []
    problems = selection_problems(dataops_project, specs, lambda _: None, skipped.append)
    if skipped:
        pytest.fail("; ".join(skipped))  # a project test that checked nothing must not pass
    return problems


# -- DAG integrity (the toolkit's) -------------------------------------------------------------


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_dag_file_imports_without_errors(parsed_dags: dict[str, Any], pipeline: str) -> None:
    error = parsed_dags["import_errors"].get(f"pipeline_{pipeline}.py")
    assert error is None, error


def test_other_dag_files_import_without_errors(parsed_dags: dict[str, Any]) -> None:
    stubs = {f"pipeline_{name}.py" for name in PIPELINES}
    others = {f: e for f, e in parsed_dags["import_errors"].items() if f not in stubs}
    assert others == {}


def test_parsing_makes_no_lookups(parsed_dags: dict[str, Any]) -> None:
    # parse_dags points the metadata DB at a closed port: a query is an import error above.
    assert parsed_dags["lookups"] == [], "DAG files must not read connections or variables"


def test_dag_ids_equal_the_specs_and_stubs(
    dataops_project: LoadedConfig, parsed_dags: dict[str, Any]
) -> None:
    dags = dataops_project.root / "dags"
    stubs = {p.stem.removeprefix("pipeline_") for p in dags.glob("pipeline_*.py")}
    assert stubs == set(PIPELINES), "every spec needs its dags/pipeline_<name>.py stub, no more"
    assert set(PIPELINES) <= set(parsed_dags["dag_ids"]), "a spec's DAG is missing"


# -- the policy (the team's, with its exceptions file) ------------------------------------------


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_dag_follows_the_policy(
    parsed_dags: dict[str, Any], policy_exceptions: dict[str, dict[str, str]], pipeline: str
) -> None:
    dag = parsed_dags["dags"].get(pipeline)
    if dag is None:  # the integrity tests above say why
        pytest.skip(f"{pipeline} has no DAG to check")
    broken = {
        "owner": dag["owner"] in ("", "airflow"),
        "tags": len(dag["tags"]) < 2,  # env:<name> is always there; one of the team's own
        "retries": dag["retries"] < 2,
    }
    allowed = policy_exceptions.get(pipeline, {})
    assert [rule for rule, bad in broken.items() if bad and rule not in allowed] == [], (
        f"or allow it in {POLICY_EXCEPTIONS}: {{{pipeline}: {{rule: reason}}}}"
    )


def test_policy_exceptions_name_dags_and_rules(
    parsed_dags: dict[str, Any], policy_exceptions: dict[str, dict[str, str]]
) -> None:
    stale = [
        f"{dag_id}.{rule}"
        for dag_id, rules in policy_exceptions.items()
        for rule, reason in (rules or {}).items()
        if dag_id not in parsed_dags["dag_ids"] or rule not in POLICY_RULES or not reason
    ]
    assert stale == [], f"{POLICY_EXCEPTIONS}: each entry names a DAG, a rule and a reason"


# -- dbt, smoke stages, Helm values -------------------------------------------------------------


@pytest.mark.parametrize("pipeline", DBT_PIPELINES)
def test_dbt_selection_matches_a_node(dbt_selection_problems: list[str], pipeline: str) -> None:
    mine = [p for p in dbt_selection_problems if p.startswith(f"dags/pipelines/{pipeline}.yml")]
    others = [p for p in dbt_selection_problems if not p.startswith("dags/pipelines/")]
    assert mine + others == [], "\n".join(mine + others)


def test_smoke_stages_name_pipelines_of_the_project(dataops_project: LoadedConfig) -> None:
    problems = smoke_problems(dataops_project, set(PIPELINES))
    assert problems == [], "\n".join(problems)


def test_helm_values_are_what_dataops_yml_renders(dataops_project: LoadedConfig) -> None:
    folder = dataops_project.root / HELM_DIR
    if not folder.is_dir():
        pytest.skip(f"the project has no {HELM_DIR}/")
    for env, config in dataops_project.config.environments.items():
        path = folder / env / "values.yaml"
        assert path.is_file() and path.read_text() == render(env, config, __version__), (
            f"{path} is stale: run `dataops helm values` and commit it"
        )
