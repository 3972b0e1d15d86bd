"""The toolkit's DAG factory on the fixture project: every DAG file loads, parsing does no
lookups, ids = specs, tasks and queues follow the spec, a bad spec breaks only its own DAG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataops.core.pipeline import spec_files
from tests.dags.conftest import DAGS, copy_dags, parse


def test_every_dag_file_imports_without_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}


def test_parsing_makes_no_connection_or_variable_lookups_and_no_db_queries(
    parsed: dict[str, Any],
) -> None:
    # parse_dags.py points the metadata DB at a closed port: a query would be an import error.
    assert parsed["lookups"] == []
    assert parsed["import_errors"] == {}


def test_dag_ids_equal_the_specs(parsed: dict[str, Any]) -> None:
    specs = {p.stem for p in spec_files(DAGS / "pipelines")}
    assert set(parsed["dag_ids"]) == specs
    stubs = {p.stem.removeprefix("pipeline_") for p in (DAGS).glob("pipeline_*.py")}
    assert stubs == specs, "every spec needs its dags/pipeline_<name>.py stub, and no more"


def test_tasks_follow_the_spec(parsed: dict[str, Any]) -> None:
    assert parsed["dags"]["flights"]["tasks"] == ["extract", "load", "dbt"]
    assert parsed["dags"]["airlines"]["tasks"] == ["extract", "load", "dbt"]
    assert all(dag["doc_md"] for dag in parsed["dags"].values())
    # The Docs tab holds the spec the DAG came from (the Code tab shows the stub).
    doc = parsed["dags"]["flights"]["doc_md"]
    assert "## The spec: `dags/pipelines/flights.yml`\n\n```yaml\n# yaml-language-server" in doc
    assert "\n# NYC flights" in doc
    assert "\npipeline: flights\n" in doc and "queue: {load: heavy}" in doc


def test_tasks_go_to_the_queue_their_spec_names(parsed: dict[str, Any]) -> None:
    # flights.yml: queue: {load: heavy}; the rest go to Airflow's default queue.
    assert parsed["dags"]["flights"]["queues"] == {
        "extract": "default",
        "load": "heavy",
        "dbt": "default",
    }
    assert set(parsed["dags"]["airlines"]["queues"].values()) == {"default"}


def test_a_bad_spec_breaks_only_its_own_dag_and_names_file_line_field(tmp_path: Path) -> None:
    dags = copy_dags(tmp_path)
    spec = dags / "pipelines" / "flights.yml"
    text = spec.read_text()
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "mode: replace_partition" in row)
    spec.write_text(text.replace("mode: replace_partition", "mode: upsert"))
    result = parse(dags)
    assert set(result["import_errors"]) == {"pipeline_flights.py"}
    message = result["import_errors"]["pipeline_flights.py"]
    assert f"dags/pipelines/flights.yml:{line}:9: target.mode: 'upsert' is not allowed" in message
    assert set(result["dag_ids"]) == {"airlines", "airports", "planes", "weather"}


def test_the_parse_check_catches_db_queries_and_lookups(tmp_path: Path) -> None:
    # The harness itself: a DAG file that queries the metadata DB or reads a Variable is caught.
    dags = copy_dags(tmp_path)
    (dags / "rogue_db.py").write_text(
        "from airflow.sdk import DAG\nfrom airflow import settings\nfrom sqlalchemy import text\n"
        "settings.Session().execute(text('select 1'))\ndag = DAG('rogue_db', schedule=None)\n"
    )
    (dags / "rogue_variable.py").write_text(
        "from airflow.sdk import DAG, Variable\nVariable.get('x')\n"
        "dag = DAG('rogue_variable', schedule=None)\n"
    )
    result = parse(dags)
    assert {"rogue_db.py", "rogue_variable.py"} <= set(result["import_errors"])
    assert any(lookup.startswith("variable(") for lookup in result["lookups"])
    assert "flights" in result["dag_ids"]
