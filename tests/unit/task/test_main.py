"""`dataops-task`: the step comes from the command line, else from the image (DATAOPS_TASK)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataops.task.main import main


def test_without_a_step_or_dataops_task_it_says_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATAOPS_TASK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "name the step (extract, load or transform), or set DATAOPS_TASK" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("step", ["extract", "load"])
def test_the_images_step_runs_when_none_is_given(
    step: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shared task.Dockerfile sets DATAOPS_TASK=<folder>; with no spec the step itself
    # reports what is missing, which proves it was the one that ran.
    monkeypatch.setenv("DATAOPS_TASK", step)
    monkeypatch.delenv("DATAOPS_TASK_SPEC", raising=False)
    assert main([]) == 1
    assert f"dataops-task {step} failed: environment variable DATAOPS_TASK_SPEC is not set" in (
        capsys.readouterr().err
    )


def test_a_step_given_on_the_command_line_wins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATAOPS_TASK", "extract")
    monkeypatch.delenv("DATAOPS_TASK_SPEC", raising=False)
    assert main(["load"]) == 1
    assert "dataops-task load failed" in capsys.readouterr().err


def test_an_unknown_dataops_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAOPS_TASK", "publish")
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_the_container_entry_point_flushes_its_output_and_keeps_the_exit_code(
    tmp_path: Path,
) -> None:
    # `python -m dataops.task.main` ends with os._exit (no interpreter teardown): what the step
    # printed, on both streams and through a pipe, still arrives, and its exit code is kept.
    env = {**os.environ, "DATAOPS_TASK": "load", "DATAOPS_TASK_SPEC": "{not json"}
    result = subprocess.run(
        [sys.executable, "-m", "dataops.task.main"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("dataops-task load failed: DATAOPS_TASK_SPEC is not a valid")


def test_exit_now_ends_without_running_exit_handlers(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').close())\n"
        "from dataops.task.main import exit_now\n"
        "print('result line', end='')\n"  # no newline: still buffered when exit_now runs
        "exit_now(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (3, "result line")
    assert not marker.exists()  # the teardown was skipped, which is the point
