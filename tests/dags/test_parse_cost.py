"""What the DAG factory does to make each parse cheaper leaves the DAGs exactly as Airflow makes
them: the operators' `_convert_<name> = None` (dataops.patches.airflow.docker_operator) and
Airflow's DAG defaults read once per process (dataops.airflow.factory)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG
from docker.types import Mount

from dataops.airflow import factory, operators
from dataops.airflow.operators import TaskContainerOperator, TransformContainerOperator
from dataops.core.pipeline import load_spec, plan
from tests.dags.conftest import DAGS

FLIGHTS = DAGS / "pipelines" / "flights.yml"
ARGS: dict[str, Any] = {
    "image": "127.0.0.1:5001/dataops/load@sha256:" + "ab" * 32,
    "command": ["dataops-task", "load"],
    "environment": {"PGHOST": "{{ conn.warehouse_dev.host }}"},
    "container_name": "dataops-dev-x-load-{{ ts_nodash }}",
    "network_mode": "host",
    "mounts": [Mount(target="/data", source="/var/lib/dataops/data", type="bind")],
    "mount_tmp_dir": False,
    "auto_remove": "force",
    "retries": "3",  # converted to an int by Airflow's _convert_retries
    "retry_delay": 30,  # to a timedelta by _convert_retry_delay
}


@pytest.fixture
def fresh_defaults() -> Iterator[None]:
    factory._airflow_dag_defaults.cache_clear()
    yield
    factory._airflow_dag_defaults.cache_clear()


def test_every_attribute_set_while_the_factory_makes_a_task_finds_its_converter_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No attribute lookup fails in BaseOperator.__setattr__ (each failure costs ~1 us): every
    name set while a task is made has a `_convert_` entry, a converter or None. A new Airflow that
    sets a new attribute fails here, naming it (add it to NO_CONVERTER_NAMES of
    dataops.patches.airflow.docker_operator)."""
    set_keys: list[tuple[type, str]] = []
    real = TaskContainerOperator.__setattr__

    def spy(self: Any, key: str, value: Any) -> None:
        set_keys.append((type(self), key))
        real(self, key, value)

    monkeypatch.setattr(TaskContainerOperator, "__setattr__", spy)
    dag = factory.build_dag(plan(load_spec(FLIGHTS), str(FLIGHTS)))
    kinds = {type(task) for task in dag.tasks}
    assert kinds == {TaskContainerOperator, TransformContainerOperator}, kinds
    assert len(set_keys) > 250, len(set_keys)  # three tasks, ~110 attributes each
    missing = sorted({key for cls, key in set_keys if not hasattr(cls, f"_convert_{key}")})
    assert missing == [], missing


def test_real_converters_still_convert_and_the_task_is_the_one_airflow_makes() -> None:
    converted = {"_dag", "retries", "retry_delay", "resources", "is_setup", "is_teardown"}
    assert not converted & operators.NO_CONVERTER
    for name in converted:
        assert callable(getattr(TaskContainerOperator, f"_convert_{name}")), name

    def made(cls: type[DockerOperator]) -> dict[str, Any]:
        with DAG(dag_id="parse_cost", schedule=None, start_date=datetime(2013, 1, 1, tzinfo=UTC)):
            task = cls(task_id="load", **ARGS)
        assert task.retries == 3 and task.retry_delay == timedelta(seconds=30)
        made = dict(vars(task))
        init_kwargs = made["_BaseOperator__init_kwargs"] = dict(made["_BaseOperator__init_kwargs"])
        for own in (made.pop("_dag"), made.pop("task_group"), init_kwargs.pop("dag")):
            assert own is not None  # each is its own DAG's (or its root group)
        init_kwargs.pop("task_group", None)
        return made

    ours, stock = made(TaskContainerOperator), made(DockerOperator)
    assert ours.keys() == stock.keys()
    differ = sorted(k for k in ours if ours[k] != stock[k])
    assert differ == [], {k: (ours[k], stock[k]) for k in differ}


def test_dag_defaults_are_airflows_configuration(
    monkeypatch: pytest.MonkeyPatch, fresh_defaults: None
) -> None:
    """The values passed are the ones Airflow's DAG reads when they are left out, including a
    deployment's own settings."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "7")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_CONSECUTIVE_FAILED_DAG_RUNS_PER_DAG", "5")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DISABLE_BUNDLE_VERSIONING", "True")
    ours = factory.build_dag(plan(load_spec(FLIGHTS), str(FLIGHTS)))
    airflows = DAG(dag_id="left_out", schedule=None)
    for name, value in {
        "max_active_tasks": 7,
        "max_consecutive_failed_dag_runs": 5,
        "disable_bundle_versioning": True,
    }.items():
        assert getattr(ours, name) == getattr(airflows, name) == value, name


@pytest.mark.parametrize("name", ["flights", "airlines", "weather", "non_ascii"])
def test_the_task_spec_json_is_the_same_data_and_loads_back(name: str, tmp_path: Any) -> None:
    """DATAOPS_TASK_SPEC is pydantic's own JSON now: what the containers read (json.loads, then
    the model) is the same as the json.dumps of model_dump it replaced."""
    import json

    from dataops.core.pipeline import PipelineSpec
    from dataops.core.pods import task_env

    path = DAGS / "pipelines" / f"{name}.yml"
    if name == "non_ascii":  # another team's text: accents, CJK, quotes, Jinja-like braces
        text = FLIGHTS.read_text().replace("pipeline: flights", "pipeline: non_ascii")
        text = text.replace(
            "description: |\n", "description: |\n  Vols \u2013 Zürich «{{ x }}» 東京\n", 1
        )
        path = tmp_path / "non_ascii.yml"
        path.write_text(text)
    spec = load_spec(path)
    extract = next(t for t in plan(spec, str(path)).tasks if t.image != "transform")
    raw = task_env(spec, extract, "dev")["DATAOPS_TASK_SPEC"]
    body = raw.removeprefix("{% raw %}").removesuffix("{% endraw %}")
    before = json.dumps(spec.model_dump(mode="json", exclude={"queue"}))
    assert json.loads(body) == json.loads(before)
    assert PipelineSpec.model_validate(json.loads(body)) == spec.model_copy(update={"queue": None})
    if name == "non_ascii":
        assert "東京" in spec.description, spec.description
