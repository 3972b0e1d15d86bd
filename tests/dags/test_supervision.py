"""`dataops.patches.airflow.supervisor`: Airflow's task supervisor stops sleeping a whole
heartbeat interval between its task process's EOF and its exit, and changes nothing else."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from airflow.sdk.execution_time.supervisor import ActivitySubprocess, PsutilTracker

from dataops.patches.airflow import supervisor as supervision


class RecordingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> list[Any]:
        self.timeouts.append(timeout)
        return super().select(timeout)


def supervisor_of(process: subprocess.Popen[bytes]) -> Any:
    """An ActivitySubprocess in the state the race leaves: the task process's sockets all
    closed (read to EOF), its exit code not read yet."""
    sup: Any = object.__new__(ActivitySubprocess)
    sup._exit_code = None
    sup._open_sockets = {}
    sup._process_exit_monotonic = None
    sup.selector = RecordingSelector()
    sup._process = PsutilTracker(psutil.Process(process.pid))  # as Airflow's start() makes it
    return sup


@pytest.fixture
def installed() -> Any:
    assert supervision.install()
    return ActivitySubprocess._service_subprocess


def test_with_every_socket_closed_it_polls_for_the_exit_instead_of_sleeping(installed: Any) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    sup = supervisor_of(child)
    while (code := sup._service_subprocess(max_wait_time=1.0)) is None:
        pass
    assert code == 0 and sup._exit_code == 0  # Airflow's own exit check still reads it
    assert set(sup.selector.timeouts) == {supervision.EXIT_POLL_SECONDS}
    assert len(sup.selector.timeouts) > 3  # it went round while the process still ran


def test_the_fault_it_fixes_is_in_airflows_own_method(installed: Any) -> None:
    # Unwrapped, the same state makes Airflow's loop wait the whole interval in `select`
    # (with nothing registered), however soon the process ends.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    sup = supervisor_of(child)
    child.wait()
    original = installed.__wrapped__
    original(sup, max_wait_time=0.2)  # the exit is found only after the 0.2 s select
    assert sup.selector.timeouts == [0.2]


def test_waits_with_their_own_timeout_and_open_sockets_are_left_alone(installed: Any) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        sup = supervisor_of(child)
        # kill() waits for the signal it sent with a timeout of its own: kept.
        sup._service_subprocess(max_wait_time=0.05, expect_signal=signal.SIGTERM)
        with pytest.raises(psutil.TimeoutExpired):  # a wait that must time out: kept
            sup._service_subprocess(max_wait_time=0.05, raise_on_timeout=True)
        sup._open_sockets = {object(): "requests"}  # a socket still open: Airflow's timing
        sup._service_subprocess(max_wait_time=0.05)
        assert sup.selector.timeouts == [0.05, 0.05, 0.05]
    finally:
        child.kill()
        child.wait()


def test_installing_twice_wraps_once(installed: Any) -> None:
    assert supervision.install()
    assert ActivitySubprocess._service_subprocess is installed


def test_a_supervisor_of_another_shape_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def other(self: Any, timeout: float) -> None:
        return None

    monkeypatch.setattr(ActivitySubprocess, "_service_subprocess", other)
    assert not supervision.install()
    assert ActivitySubprocess._service_subprocess is other


def test_the_deployments_executors_install_it(tmp_path: Path) -> None:
    # In a fresh interpreter, as the scheduler and a Celery worker load them from airflow.cfg.
    code = """
from airflow.executors.executor_loader import ExecutorLoader
from airflow.executors.local_executor import LocalExecutor
from airflow.sdk.execution_time.supervisor import ActivitySubprocess

assert not hasattr(ActivitySubprocess._service_subprocess, "_dataops_exit_poll")
executor = ExecutorLoader.load_executor(None)
assert isinstance(executor, LocalExecutor) and type(executor).__module__ == (
    "dataops.airflow.executors"
), type(executor)
assert ActivitySubprocess._service_subprocess._dataops_exit_poll

from celery import Celery
from dataops.airflow.celery_config import CELERY_CONFIG

ActivitySubprocess._service_subprocess = ActivitySubprocess._service_subprocess.__wrapped__
app = Celery("check", config_source=CELERY_CONFIG)
assert CELERY_CONFIG["task_acks_late"] is not None  # the provider's own config is kept
app.loader.init_worker()  # what a worker does before it starts its pool
assert ActivitySubprocess._service_subprocess._dataops_exit_poll
print("ok")
"""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "dataops.airflow.executors.LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
