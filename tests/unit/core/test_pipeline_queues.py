"""Pipeline specs name Celery queues, per pipeline or per task; validation finds a queue no
worker serves (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataops.core.pipeline import PipelineSpec, load_spec, plan, unserved_queues
from tests.conftest import PROJECT


def spec_with(tmp_path: Path, queue: object) -> PipelineSpec:
    document = yaml.safe_load((PROJECT / "dags" / "pipelines" / "airlines.yml").read_text())
    document["queue"] = queue
    path = tmp_path / "airlines.yml"
    path.write_text(yaml.safe_dump(document))
    return load_spec(path)


def test_one_queue_for_every_task(tmp_path: Path) -> None:
    tasks = plan(spec_with(tmp_path, "etl"), "x").tasks
    assert {t.task_id: t.queue for t in tasks} == {"extract": "etl", "load": "etl", "dbt": "etl"}


def test_a_queue_per_task_and_the_default_for_the_rest(tmp_path: Path) -> None:
    pipeline = plan(spec_with(tmp_path, {"load": "heavy"}), "x")
    assert {t.task_id: t.queue for t in pipeline.tasks} == {
        "extract": None,
        "load": "heavy",
        "dbt": None,
    }
    served = {"staging": {"default"}, "qa": {"default", "heavy"}}
    assert unserved_queues(pipeline, served) == [("staging", "load", "heavy")]
    assert unserved_queues(pipeline, {}) == []  # LocalExecutor environments run every queue


@pytest.mark.parametrize("queue", [{"transform": "x"}, "Heavy Queue", {"load": ""}])
def test_a_bad_queue_is_refused_with_its_field(tmp_path: Path, queue: object) -> None:
    with pytest.raises(Exception, match="queue"):
        spec_with(tmp_path, queue)
