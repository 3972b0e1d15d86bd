"""What a task container prints reaches the Airflow task log at the right level (stderr at
WARNING, stdout at INFO, through the Docker provider's own `fetch_logs`), and the dbt step keeps
its per-node results as an XCom behind its "dbt results" link."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.docker.operators.docker import fetch_logs

from dataops.airflow.operators import DbtResultsLink, SplitStreams, TransformContainerOperator


class FakeClient:
    """The parts of docker's APIClient the operator uses: a demultiplexed attach stream."""

    def __init__(self, frames: list[tuple[bytes | None, bytes | None]]) -> None:
        self.frames, self.calls = frames, list[dict[str, Any]]()

    def attach(self, container: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return iter(self.frames) if kwargs.get("demux") else iter([b"merged\n"])

    def wait(self, container: str) -> dict[str, int]:
        return {"StatusCode": 0}


def test_stderr_is_logged_at_warning_and_stdout_at_info(caplog: pytest.LogCaptureFixture) -> None:
    frames = [
        (b"+ dbt build --select flights\n1 of 2 OK", None),
        (None, b"dbt build failed: nothing"),
        (b" created model\n", b" was published\n  fail: test.f.x: Got 3\n"),
        (b'{"step": "transform"}', None),
    ]
    log = logging.getLogger("test.task")
    streams = SplitStreams(FakeClient(frames), log)
    with caplog.at_level(logging.INFO, logger="test.task"):
        lines = fetch_logs(streams.attach("c1", stdout=True, stderr=True, stream=True), log)
    assert lines == [
        "+ dbt build --select flights",
        "1 of 2 OK created model",
        '{"step": "transform"}',
    ]
    assert streams.lines == ["dbt build failed: nothing was published", "  fail: test.f.x: Got 3"]
    levels = {r.getMessage(): r.levelname for r in caplog.records}
    assert levels["dbt build failed: nothing was published"] == "WARNING"
    assert levels["  fail: test.f.x: Got 3"] == "WARNING"
    assert levels["1 of 2 OK created model"] == "INFO"
    assert streams.wait("c1") == {"StatusCode": 0}  # everything else goes to the client


def test_a_non_streamed_attach_is_passed_through() -> None:
    client = FakeClient([])
    streams = SplitStreams(client, logging.getLogger("test.task"))
    assert list(streams.attach("c1", stream=False)) == [b"merged\n"]
    assert client.calls == [{"stream": False}]


def operator() -> TransformContainerOperator:
    return TransformContainerOperator(task_id="dbt", image="x", command=["transform"])


def test_the_dbt_step_keeps_its_results_as_an_xcom() -> None:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    summary = {
        "step": "transform",
        "models": 1,
        "results": [{"unique_id": "model.a", "status": "success"}],
    }
    operator().on_output({"ti": ti}, ["+ dbt build", json.dumps(summary), "trailing noise"])
    assert json.loads(pushed["dbt_results"]) == summary


def test_no_summary_pushes_nothing_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    operator().on_output({"ti": ti}, ["dataops-task transform failed: boom"])
    assert pushed == {}
    assert "no dbt results to show" in capsys.readouterr().out  # Airflow's task logger


def test_the_link_points_at_the_plugins_results_page() -> None:
    key = SimpleNamespace(
        dag_id="flights", run_id="scheduled__2013-06-01", task_id="dbt", map_index=-1
    )
    assert (
        DbtResultsLink().get_link(operator(), ti_key=key)
        == "/dataops/dbt/flights/scheduled__2013-06-01/dbt"
    )
    assert [type(link) for link in operator().operator_extra_links] == [DbtResultsLink]
